"""Modality Performed Procedure Step SCP: the flow, every failure status, storage, CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from helpers.archive_data import Study, write_study
from helpers.clients import associate
from helpers.mpps import DELETE, completion, create_ds, series_item
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from printscp.app.cli import mpps as mpps_cli
from printscp.archive.archive import Archive
from printscp.mpps.report import dose_of, format_duration, list_steps, usage
from printscp.mpps.steps import MppsStore, parse_datetime
from printscp.services.mpps import (
    NO_LONGER_UPDATABLE,
    StatusListeners,
    event_handlers,
    is_mpps_request,
    worklist_marker,
)

MPPS = ModalityPerformedProcedureStep


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture
def hook_calls() -> list[tuple[str, str]]:
    """(SOP Instance UID, status) per call of the worklist hook, in order."""
    return []


@pytest.fixture
def mpps_server(make_node, hook_calls: list[tuple[str, str]]) -> tuple[int, MppsStore]:
    """printscp serve's MPPS SCP on a free loopback port, its steps in ``tmp_path/data``;
    every status hook call is recorded."""
    lock = threading.Lock()

    def record(step: Dataset, status: str) -> None:
        with lock:
            hook_calls.append((str(step.SOPInstanceUID), status))

    node = make_node(start=False)
    node.mpps_hooks.listeners.append(record)
    node.start()
    return node.port, node.mpps_store


class Scu:
    """One association to the SCP; keeps the Affected SOP Instance UID of each response."""

    def __init__(self, port: int) -> None:
        self.response_uids: list[str | None] = []
        self.assoc = associate(port, MPPS, calling="MODALITY1", called="MPPSSCP",
                               evt_handlers=[(evt.EVT_DIMSE_RECV, self._received)])
        assert self.assoc.is_established

    def _received(self, event: evt.Event) -> None:
        uid = event.message.command_set.get("AffectedSOPInstanceUID")
        self.response_uids.append(str(uid) if uid else None)

    def create(self, ds: Dataset, uid: str | None) -> Dataset:
        status, _ = self.assoc.send_n_create(ds, MPPS, uid)
        return status

    def set(self, ds: Dataset, uid: str) -> Dataset:
        status, _ = self.assoc.send_n_set(ds, MPPS, uid)
        return status

    def close(self) -> None:
        self.assoc.release()


@pytest.fixture
def scu(mpps_server: tuple[int, MppsStore]) -> Iterator[Scu]:
    client = Scu(mpps_server[0])
    yield client
    client.close()


# -- the flow ---------------------------------------------------------------------------
@pytest.mark.slow
def test_full_flow_create_progress_complete(mpps_server, scu, hook_calls) -> None:
    _, store = mpps_server
    uid = generate_uid()
    assert scu.create(create_ds(), uid).Status == 0x0000
    assert scu.response_uids[-1] == uid
    step = store.get(uid)
    assert step is not None and step.status == "IN PROGRESS"
    assert (step.station_ae, step.modality, step.accession_number, step.sps_id,
            step.study_uid, step.pps_id) == ("CT1", "CT", "ACC1", "SPS1", "1.2.3.4", "PPS1")
    assert step.patient_name == "Müller^Jürgen"  # decoded from Latin-1, stored as Unicode

    progress = Dataset()
    progress.PerformedSeriesSequence = [series_item("1.2.3.4.1", ["1.2.3.4.1.1"])]
    progress.TotalTimeOfFluoroscopy = 12
    progress.CommentsOnThePerformedProcedureStep = "contrast given"
    assert scu.set(progress, uid).Status == 0x0000
    step = store.get(uid)
    assert step.status == "IN PROGRESS" and store.completeness(step) == (0, 1)

    dose = Dataset()
    dose.CTDIvol = 7.5
    final = completion([series_item("1.2.3.4.1", ["1.2.3.4.1.1", "1.2.3.4.1.2"])])
    final.CTExposureSequence = [dose]
    final.TotalNumberOfExposures = 3
    assert scu.set(final, uid).Status == 0x0000
    step = store.get(uid)
    assert step.status == "COMPLETED"
    assert step.duration == 30 * 60
    assert step.dataset.CommentsOnThePerformedProcedureStep == "contrast given"
    assert store.completeness(step) == (0, 2)
    assert dose_of(step.dataset) == {"fluoro_s": 12.0, "exposures": 3.0, "ctdivol_mGy": 7.5}
    assert hook_calls == [(uid, "IN PROGRESS"), (uid, "COMPLETED")]


@pytest.mark.slow
def test_server_assigns_uid_and_returns_it(mpps_server, scu, hook_calls) -> None:
    _, store = mpps_server
    assert scu.create(create_ds(), None).Status == 0x0000
    uid = scu.response_uids[-1]
    assert uid, "N-CREATE-RSP must carry the assigned Affected SOP Instance UID"
    step = store.get(uid)
    assert step is not None and step.dataset.SOPInstanceUID == uid
    assert scu.set(completion([series_item("1.2.9", [])]), uid).Status == 0x0000
    assert hook_calls == [(uid, "IN PROGRESS"), (uid, "COMPLETED")]


@pytest.mark.slow
def test_discontinued_is_final_and_may_have_no_series(mpps_server, scu, hook_calls) -> None:
    _, store = mpps_server
    uid = generate_uid()
    assert scu.create(create_ds(), uid).Status == 0
    stop = completion([], "DISCONTINUED")
    assert scu.set(stop, uid).Status == 0
    assert store.get(uid).status == "DISCONTINUED"
    assert hook_calls[-1] == (uid, "DISCONTINUED")


# -- failures ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("final", ["COMPLETED", "DISCONTINUED"])
def test_final_step_is_immutable(mpps_server, scu, hook_calls, final) -> None:
    _, store = mpps_server
    uid = generate_uid()
    scu.create(create_ds(), uid)
    assert scu.set(completion([series_item("1.2.9", [])], final), uid).Status == 0
    before = store.get(uid)
    late = Dataset()
    late.CommentsOnThePerformedProcedureStep = "too late"
    status = scu.set(late, uid)
    assert status.Status == 0x0110
    assert status.ErrorComment == NO_LONGER_UPDATABLE
    assert status.ErrorID == 0xA710
    again = completion([series_item("1.2.9", [])], "IN PROGRESS")
    assert scu.set(again, uid).Status == 0x0110
    assert store.get(uid).attrs == before.attrs
    assert len(hook_calls) == 2


@pytest.mark.slow
def test_duplicate_uid_on_create(mpps_server, scu) -> None:
    uid = generate_uid()
    assert scu.create(create_ds(), uid).Status == 0
    status = scu.create(create_ds(accession="OTHER"), uid)
    assert status.Status == 0x0111
    assert uid[:40] in status.ErrorComment
    assert mpps_server[1].get(uid).accession_number == "ACC1"


@pytest.mark.slow
def test_unknown_uid_on_set(scu) -> None:
    status = scu.set(completion([]), "1.2.3.999")
    assert status.Status == 0x0112
    assert "1.2.3.999" in status.ErrorComment


@pytest.mark.slow
@pytest.mark.parametrize("value", ["COMPLETED", "DISCONTINUED", "SCHEDULED"])
def test_create_with_other_status_refused(mpps_server, scu, hook_calls, value) -> None:
    uid = generate_uid()
    status = scu.create(create_ds(PerformedProcedureStepStatus=value), uid)
    assert status.Status == 0x0106
    assert "PerformedProcedureStepStatus" in status.ErrorComment
    assert mpps_server[1].get(uid) is None and hook_calls == []


@pytest.mark.slow
@pytest.mark.parametrize("keyword,tag", [
    ("ScheduledStepAttributesSequence", "(0040,0270)"),
    ("PerformedStationAETitle", "(0040,0241)"),
    ("PerformedProcedureStepStartDate", "(0040,0244)"),
    ("PerformedProcedureStepStartTime", "(0040,0245)"),
    ("PerformedProcedureStepID", "(0040,0253)"),
    ("Modality", "(0008,0060)"),
    ("PerformedProcedureStepStatus", "(0040,0252)"),
])
def test_create_missing_type1_refused(mpps_server, scu, keyword, tag) -> None:
    uid = generate_uid()
    status = scu.create(create_ds(**{keyword: DELETE}), uid)
    assert status.Status == 0x0120
    assert keyword in status.ErrorComment and tag in status.ErrorComment
    assert mpps_server[1].get(uid) is None


@pytest.mark.slow
def test_create_empty_type1_and_item_type1(mpps_server, scu) -> None:
    status = scu.create(create_ds(Modality=""), generate_uid())
    assert status.Status == 0x0121 and "Modality" in status.ErrorComment
    status = scu.create(create_ds(ScheduledStepAttributesSequence=[]), generate_uid())
    assert status.Status == 0x0121
    assert "ScheduledStepAttributesSequence" in status.ErrorComment
    item = Dataset()
    item.AccessionNumber = "A"
    status = scu.create(create_ds(ScheduledStepAttributesSequence=[item]), generate_uid())
    assert status.Status == 0x0120
    assert "ScheduledStepAttributesSequence[1].StudyInstanceUID" in status.ErrorComment


@pytest.mark.slow
@pytest.mark.parametrize("keyword,value,tag", [
    ("Modality", "MR", 0x00080060),
    ("PatientName", "OTHER^NAME", 0x00100010),
    ("PatientID", "P2", 0x00100020),
    ("PerformedProcedureStepStartDate", "20240502", 0x00400244),
    ("PerformedProcedureStepStartTime", "120000", 0x00400245),
    ("PerformedStationAETitle", "CT2", 0x00400241),
    ("ScheduledStepAttributesSequence", [], 0x00400270),
])
def test_set_not_allowed_attributes_refused(mpps_server, scu, keyword, value, tag) -> None:
    _, store = mpps_server
    uid = generate_uid()
    scu.create(create_ds(), uid)
    before = store.get(uid).attrs
    change = Dataset()
    change.CommentsOnThePerformedProcedureStep = "ok"
    setattr(change, keyword, value)
    status = scu.set(change, uid)
    assert status.Status == 0x0105
    assert keyword in status.ErrorComment
    assert int(status.AttributeIdentifierList) == tag
    assert store.get(uid).attrs == before  # nothing of the request was applied


@pytest.mark.slow
def test_set_invalid_status_value(mpps_server, scu) -> None:
    uid = generate_uid()
    scu.create(create_ds(), uid)
    change = Dataset()
    change.PerformedProcedureStepStatus = "DONE"
    status = scu.set(change, uid)
    assert status.Status == 0x0106
    assert int(status.AttributeIdentifierList) == 0x00400252


@pytest.mark.slow
@pytest.mark.parametrize("drop,named", [
    ("PerformedProcedureStepEndDate", "(0040,0250)"),
    ("PerformedProcedureStepEndTime", "(0040,0251)"),
    ("PerformedSeriesSequence", "(0040,0340)"),
])
def test_completed_without_final_attributes(mpps_server, scu, hook_calls, drop, named) -> None:
    _, store = mpps_server
    uid = generate_uid()
    scu.create(create_ds(), uid)  # End Date/Time empty, Performed Series Sequence empty
    final = completion([series_item("1.2.9", ["1.2.9.1"])])
    delattr(final, drop)
    status = scu.set(final, uid)
    assert status.Status == 0x0110
    assert named in status.ErrorComment and "COMPLETED" in status.ErrorComment
    assert store.get(uid).status == "IN PROGRESS"
    assert hook_calls == [(uid, "IN PROGRESS")]
    # the same step completes once the modality sends what was missing
    assert scu.set(completion([series_item("1.2.9", ["1.2.9.1"])]), uid).Status == 0
    assert store.get(uid).status == "COMPLETED"


@pytest.mark.slow
def test_completed_series_item_needs_series_uid(mpps_server, scu) -> None:
    uid = generate_uid()
    scu.create(create_ds(), uid)
    item = series_item("1.2.9", [])
    del item.SeriesInstanceUID
    status = scu.set(completion([item]), uid)
    assert status.Status == 0x0110
    assert "PerformedSeriesSequence[1].SeriesInstanceUID" in status.ErrorComment


def test_hook_failure_does_not_fail_the_step(tmp_path) -> None:
    store = MppsStore(tmp_path)

    def broken(step: Dataset, status: str) -> None:
        raise RuntimeError("worklist down")

    ae = AE(ae_title="MPPSSCP")
    ae.add_supported_context(MPPS)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=event_handlers(store, StatusListeners([broken])))
    try:
        client = Scu(server.server_address[1])
        uid = generate_uid()
        assert client.create(create_ds(), uid).Status == 0
        assert client.set(completion([series_item("1.2", [])]), uid).Status == 0
        client.close()
    finally:
        server.shutdown()
    assert store.get(uid).status == "COMPLETED"


# -- storage, listing, report -------------------------------------------------------------
def test_parse_datetime_forms() -> None:
    assert str(parse_datetime("20240501", "1015")) == "2024-05-01 10:15:00"
    assert str(parse_datetime("20240501", "101530.250")) == "2024-05-01 10:15:30.250000"
    assert str(parse_datetime("2024.05.01", "10:15:30")) == "2024-05-01 10:15:30"
    assert parse_datetime("", "1015") is None
    assert format_duration(3725) == "1:02:05"


@pytest.mark.slow
def test_list_shows_completeness_after_archive_receives(mpps_server, scu, tmp_path,
                                                         capsys) -> None:
    _, store = mpps_server
    data = tmp_path / "data"
    study = Study("P1", "Müller^Jürgen", "20240501", "ACC1", images=3)
    files = write_study(study, tmp_path / "study")
    archive = Archive(data)
    first = archive.import_file(files[0])
    assert first.status == 0
    import pydicom

    sops = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    uid = generate_uid()
    scu.create(create_ds(study_uid=study.study_uid), uid)
    final = completion([series_item(study.series_uids[0], sops)])
    final.TotalTimeOfFluoroscopy = 30
    final.EntranceDoseInmGy = 1.5
    assert scu.set(final, uid).Status == 0

    step = store.get(uid)
    assert store.completeness(step) == (1, 3)
    assert set(store.missing(step)) == set(sops[1:])
    assert mpps_cli.main(["mpps", "list", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "1/3 missing" in out and "0:30:00" in out and "fluoro 30 s" in out
    assert "ED 1.5 mGy" in out and "ACC1" in out and uid in out

    for path in files[1:]:
        archive.import_file(path)
    assert mpps_cli.main(["mpps", "list", "--data-dir", str(data), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["instances_arrived"] == rows[0]["instances_expected"] == 3
    assert rows[0]["duration_s"] == 1800 and rows[0]["accession_number"] == "ACC1"
    assert mpps_cli.main(["mpps", "list", "--data-dir", str(data), "--incomplete"]) == 0
    assert "no performed procedure steps" in capsys.readouterr().out


def test_completeness_without_archive(tmp_path) -> None:
    store = MppsStore(tmp_path)
    ds = create_ds()
    ds.PerformedSeriesSequence = [series_item("1.2", ["1.2.1", "1.2.2"])]
    ds.SOPInstanceUID = "1.2.3"
    step = store.create("1.2.3", ds)
    assert store.completeness(step) == (0, 2)


def _step(store: MppsStore, station: str, modality: str, day: str, start: str,
          end: str | None, status: str) -> None:
    ds = create_ds(PerformedStationAETitle=station, Modality=modality,
                   PerformedProcedureStepStartDate=day, PerformedProcedureStepStartTime=start)
    uid = generate_uid()
    store.create(uid, ds)
    if end is not None:
        def finish(step: Dataset) -> Dataset:
            step.PerformedProcedureStepStatus = status
            step.PerformedProcedureStepEndDate = day
            step.PerformedProcedureStepEndTime = end
            return step
        store.update(uid, finish)


def test_usage_report_per_station_and_modality(tmp_path, capsys) -> None:
    store = MppsStore(tmp_path)
    _step(store, "CT1", "CT", "20240501", "080000", "081000", "COMPLETED")  # 10 min
    _step(store, "CT1", "CT", "20240502", "090000", "093000", "COMPLETED")  # 30 min
    _step(store, "CT1", "CT", "20240502", "100000", "100500", "DISCONTINUED")  # 5 min
    _step(store, "CT1", "CT", "20240503", "100000", None, "")  # still in progress
    _step(store, "DX1", "DX", "20240502", "110000", "110200", "COMPLETED")  # 2 min
    _step(store, "DX1", "DX", "20240601", "110000", "110200", "COMPLETED")  # outside
    from datetime import date

    rows = {(r.station_ae, r.modality): r
            for r in usage(store, date(2024, 5, 1), date(2024, 5, 31))}
    ct = rows[("CT1", "CT")]
    assert (ct.procedures, ct.completed, ct.discontinued, ct.in_progress) == (4, 2, 1, 1)
    assert ct.total_seconds == 45 * 60 and ct.mean_seconds == 15 * 60
    assert rows[("DX1", "DX")].procedures == 1
    assert len(list_steps(store, date(2024, 5, 2), date(2024, 5, 2))) == 3

    assert mpps_cli.main(["mpps", "report", "--data-dir", str(tmp_path),
                          "--from", "2024-05-01", "--to", "20240531"]) == 0
    out = capsys.readouterr().out
    assert "MPPS usage 2024-05-01 .. 2024-05-31" in out
    ct_line = next(line for line in out.splitlines() if line.startswith("CT1"))
    assert ct_line.split() == ["CT1", "CT", "4", "2", "1", "1", "0:45:00", "0:15:00"]
    all_line = next(line for line in out.splitlines() if line.startswith("all"))
    assert all_line.split()[1:3] == ["5", "3"]
    assert mpps_cli.main(["mpps", "report", "--data-dir", str(tmp_path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 2


def test_cli_without_database(tmp_path, capsys) -> None:
    assert mpps_cli.main(["mpps", "list", "--data-dir", str(tmp_path / "none")]) == 2
    assert "no database" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mpps_cli.main(["mpps", "report", "--from", "May"])


@pytest.mark.slow
def test_concurrent_final_sets_only_one_wins(mpps_server) -> None:
    """Two associations completing the same step: exactly one gets 0x0000."""
    port, store = mpps_server
    uid = generate_uid()
    first = Scu(port)
    first.create(create_ds(), uid)
    clients = [Scu(port) for _ in range(4)]
    results: list[int] = []
    barrier = threading.Barrier(len(clients))

    def complete(client: Scu) -> None:
        barrier.wait()
        results.append(int(client.set(completion([series_item("1.2", [])]), uid).Status))

    threads = [threading.Thread(target=complete, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in [first, *clients]:
        c.close()
    assert sorted(results) == [0x0000] + [0x0110] * 3
    assert store.get(uid).status == "COMPLETED"


def test_worklist_marker_marks_each_scheduled_step() -> None:
    calls: list[dict[str, str]] = []

    def mark(**keys: str) -> int:
        calls.append(keys)
        return 1

    step = create_ds()
    second = Dataset()
    second.StudyInstanceUID = "1.2.3.4"
    second.AccessionNumber = ""
    second.ScheduledProcedureStepID = "SPS2"
    unscheduled = Dataset()
    unscheduled.StudyInstanceUID = "9.9"
    unscheduled.ScheduledProcedureStepID = ""
    step.ScheduledStepAttributesSequence += [second, unscheduled]
    worklist_marker(mark)(step, "COMPLETED")
    assert calls == [
        {"status": "COMPLETED", "sps_id": "SPS1", "study_uid": "1.2.3.4", "accession": "ACC1",
         "requested_procedure_id": "RP1"},
        {"status": "COMPLETED", "sps_id": "SPS2", "study_uid": "1.2.3.4"},
    ]


def test_is_mpps_request() -> None:
    class Req:
        AffectedSOPClassUID = MPPS

    class Event:
        request = Req()

    assert is_mpps_request(Event())
    Req.AffectedSOPClassUID = "1.2.840.10008.5.1.1.1"
    assert not is_mpps_request(Event())

