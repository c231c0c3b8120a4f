"""Modality Worklist: store, imports, CLI, and the C-FIND SCP against DCMTK findscu -W.

Network tests run against a small pynetdicom AE serving only the worklist
(:func:`worklist_server`), with the handlers the node will bind; switching them to the
real node is a change of that fixture only.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from helpers.clients import associate
from helpers.dcmtk import tool
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind

from printscp.app.cli.worklist import add_worklist_parser
from printscp.services.worklist import event_handlers, response
from printscp.worklist.importing import build_item, import_files
from printscp.worklist.items import ItemRejected, WorklistConfig, WorklistStore

WLISTDB = Path("/usr/share/doc/dcmtk/examples/wlistdb/OFFIS")

ORDERS = [
    dict(patient_name="DOE^JANE", patient_id="P1", accession="ACC1", modality="CT",
         station_ae="CT1", start_date="20261101", start_time="083000",
         procedure_description="CT CHEST", referring_physician="WELBY^MARCUS",
         birth_date="19700101", sex="F"),
    dict(patient_name="DOE^JOHN", patient_id="P2", accession="ACC2", modality="MR",
         station_ae="MR1", start_date="20261101", start_time="223000",
         procedure_description="MR KNEE", referring_physician="HOUSE^GREGORY"),
    dict(patient_name="SMITH^ANNA", patient_id="P3", accession="ACC3", modality="CT",
         station_ae="CT1", start_date="20261102", start_time="050000",
         procedure_description="CT HEAD", referring_physician="HOUSE^GREGORY",
         protocol_code="P1^99LOCAL^Head routine", sps_description="HEAD NATIVE"),
    dict(patient_name="SMYTHE^BOB", patient_id="P4", accession="ACC4", modality="CT",
         station_ae="CT2", start_date="20261103", start_time="120000",
         procedure_description="CT ABDOMEN", procedure_id="RP-ABD"),
    dict(patient_name="LEE^KIM", patient_id="P5", accession="ACC5", modality="US",
         station_ae="US1\\US2", start_date="20261105", start_time="100000",
         procedure_description="US LIVER", priority="HIGH"),
]


def _items() -> list[Dataset]:
    return [build_item(order) for order in ORDERS]


@contextlib.contextmanager
def serve(store: WorklistStore, config: Any) -> Iterator[int]:
    """A pynetdicom AE offering the worklist on a free loopback port."""
    ae = AE(ae_title="PRINTSCP")
    ae.add_supported_context(ModalityWorklistInformationFind)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=event_handlers(store, config))
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


@pytest.fixture
def worklist_server(node) -> tuple[int, WorklistStore]:
    """(port, store) of printscp serve's worklist, database ``tmp_path/data/index.sqlite``."""
    return node.port, node.worklist


@pytest.fixture
def scheduled(worklist_server):
    port, store = worklist_server
    store.add_many(_items())
    return port, store


def findscu(port: int, out: Path, *keys: str) -> list[Dataset]:
    """DCMTK findscu -W; the responses as data sets."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    args = [tool("findscu"), "-W", "-aec", "PRINTSCP", "-X", "-od", str(out)]
    for k in keys:
        args += ["-k", k]
    res = subprocess.run([*args, "127.0.0.1", str(port)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def accessions(rsps: list[Dataset]) -> list[str]:
    return sorted(str(r.AccessionNumber) for r in rsps)


SPS = "ScheduledProcedureStepSequence[0]."


# -- C-FIND with DCMTK ----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.dcmtk("findscu")
@pytest.mark.parametrize(("keys", "expected"), [
    ([f"{SPS}ScheduledStationAETitle=CT1"], ["ACC1", "ACC3"]),
    ([f"{SPS}ScheduledStationAETitle=US2"], ["ACC5"]),  # one of several stored values
    ([f"{SPS}ScheduledStationAETitle=CT*"], ["ACC1", "ACC3", "ACC4"]),
    ([f"{SPS}Modality=MR"], ["ACC2"]),
    ([f"{SPS}ScheduledProcedureStepStartDate=20261101"], ["ACC1", "ACC2"]),
    ([f"{SPS}ScheduledProcedureStepStartDate=20261101-20261102"], ["ACC1", "ACC2", "ACC3"]),
    ([f"{SPS}ScheduledProcedureStepStartDate=-20261101"], ["ACC1", "ACC2"]),
    ([f"{SPS}ScheduledProcedureStepStartDate=20261103-"], ["ACC4", "ACC5"]),
    ([f"{SPS}ScheduledProcedureStepStartTime=0800-1200"], ["ACC1", "ACC4", "ACC5"]),
    # combined date-time range: 1 November 22:00 to 2 November 06:00
    ([f"{SPS}ScheduledProcedureStepStartDate=20261101-20261102",
      f"{SPS}ScheduledProcedureStepStartTime=2200-0600"], ["ACC2", "ACC3"]),
    ([f"{SPS}ScheduledProcedureStepStartDate=20261101",
      f"{SPS}ScheduledProcedureStepStartTime=0800-0900"], ["ACC1"]),
    (["PatientName=DOE*"], ["ACC1", "ACC2"]),
    (["PatientName=doe^j?hn"], ["ACC2"]),  # case-insensitive, ? wildcard
    (["PatientName=SM?TH*"], ["ACC3", "ACC4"]),
    (["PatientID=P3"], ["ACC3"]),
    (["AccessionNumber=ACC4"], ["ACC4"]),
    (["AccessionNumber=ACC?"], ["ACC1", "ACC2", "ACC3", "ACC4", "ACC5"]),
    (["RequestedProcedureID=RP-ABD"], ["ACC4"]),
    (["RequestedProcedureID=ACC2"], ["ACC2"]),  # defaults to the accession
    (["ReferringPhysicianName=HOUSE*"], ["ACC2", "ACC3"]),
    # sequence matching: every key of the item must match the same step
    ([f"{SPS}ScheduledStationAETitle=CT1", f"{SPS}Modality=CT"], ["ACC1", "ACC3"]),
    ([f"{SPS}ScheduledStationAETitle=CT1", f"{SPS}Modality=MR"], []),
    ([f"{SPS}ScheduledStationAETitle=CT1", "PatientName=SMITH*"], ["ACC3"]),
    (["PatientID=NOBODY"], []),
    ([f"{SPS}ScheduledProcedureStepStartDate=20270101-20271231"], []),
])
def test_findscu_matching(scheduled, tmp_path, keys, expected):
    port, _ = scheduled
    rsps = findscu(port, tmp_path / "rsp", "AccessionNumber", *keys)
    assert accessions(rsps) == expected


@pytest.mark.slow
@pytest.mark.dcmtk("findscu")
def test_findscu_return_keys(scheduled, tmp_path):
    port, _ = scheduled
    rsps = findscu(port, tmp_path / "rsp", "AccessionNumber=ACC3", "PatientName",
                   "PatientBirthDate", "PatientWeight", "StudyInstanceUID",
                   "RequestedProcedureDescription", "RequestedProcedureID",
                   f"{SPS}ScheduledStationAETitle", f"{SPS}ScheduledProcedureStepID",
                   f"{SPS}ScheduledProcedureStepStatus", f"{SPS}ScheduledStationName",
                   f"{SPS}ScheduledProtocolCodeSequence",
                   f"{SPS}ScheduledProcedureStepDescription")
    [rsp] = rsps
    assert str(rsp.PatientName) == "SMITH^ANNA"
    assert rsp.RequestedProcedureDescription == "CT HEAD"
    assert rsp.RequestedProcedureID == "ACC3"
    assert rsp.StudyInstanceUID.startswith("1.2.826.0.1.3680043.8.498.")
    for keyword in ("PatientBirthDate", "PatientWeight"):  # unknown: zero-length
        assert keyword in rsp and rsp[keyword].value in (None, "")
    step = rsp.ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == "CT1"
    assert step.ScheduledProcedureStepID == "ACC3"
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"
    assert step.ScheduledProcedureStepDescription == "HEAD NATIVE"
    assert "ScheduledStationName" in step and not step.ScheduledStationName
    [code] = step.ScheduledProtocolCodeSequence
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == \
        ("P1", "99LOCAL", "Head routine")
    assert "Modality" not in step  # only what was asked for


@pytest.mark.slow
@pytest.mark.dcmtk("findscu", "dump2dcm")
@pytest.mark.skipif(not WLISTDB.is_dir(), reason=f"needs DCMTK's wlistdb examples in {WLISTDB}")
def test_import_dcmtk_wl_files_and_query(worklist_server, tmp_path):
    port, store = worklist_server
    wl = tmp_path / "wlistdb"
    wl.mkdir()
    dumps = sorted(WLISTDB.glob("*.dump"))
    for i, dump in enumerate(dumps):
        # half with File Meta Information, half as bare data sets, as wlmscpfs reads both
        flag = ["+F"] if i % 2 else ["-F"]
        subprocess.run([tool("dump2dcm"), "-q", *flag, str(dump), str(wl / f"{dump.stem}.wl")],
                       check=True)
    (wl / "lockfile").write_text("")  # wlmscpfs's, not an item: skipped in directories
    results = import_files(store, [wl])
    assert [r.problems for r in results] == [[]] * len(dumps)
    assert store.count() == len(dumps)
    rsps = findscu(port, tmp_path / "rsp", "AccessionNumber", "PatientName",
                   f"{SPS}ScheduledStationAETitle=AA32")
    assert accessions(rsps) == ["00000", "00004"]  # wklist1 (AA32\AA33), wklist4
    rsps = findscu(port, tmp_path / "rsp", "AccessionNumber", "PatientName=VIVALDI*",
                   f"{SPS}Modality=CT")
    assert accessions(rsps) == ["00002"]
    rsps = findscu(port, tmp_path / "rsp", "AccessionNumber",
                   f"{SPS}ScheduledProcedureStepStartDate=19960101-19960430")
    assert accessions(rsps) == ["00002", "00003", "00004", "00008"]
    # Latin-1 items keep their character set
    rsps = findscu(port, tmp_path / "rsp", "AccessionNumber=00000", "PatientName")
    assert rsps[0].SpecificCharacterSet == "ISO_IR 100"


# -- statuses and C-CANCEL with pynetdicom ----------------------------------------------

def _find(port: int, identifier: Dataset, *, explicit_only: bool = False
          ) -> list[tuple[int, Dataset | None]]:
    model = ModalityWorklistInformationFind
    assoc = associate(port, (model, [ExplicitVRLittleEndian]) if explicit_only else model,
                      calling="FINDSCU")
    assert assoc.is_established
    try:
        return [(int(st.Status), ident) for st, ident in
                assoc.send_c_find(identifier, ModalityWorklistInformationFind)]
    finally:
        assoc.release()


def _sps_key(**keys: str) -> Dataset:
    ident = Dataset()
    ident.AccessionNumber = ""
    step = Dataset()
    for k, v in keys.items():
        setattr(step, k, v)
    ident.ScheduledProcedureStepSequence = [step]
    return ident


@pytest.mark.slow
def test_statuses_pending_and_success(scheduled):
    port, _ = scheduled
    result = _find(port, _sps_key(Modality="CT"))
    assert [s for s, _ in result] == [0xFF00] * 3 + [0x0000]


@pytest.mark.slow
def test_multi_item_sequence_key_is_c000(scheduled):
    port, _ = scheduled
    ident = _sps_key(Modality="CT")
    second = Dataset()
    second.Modality = "MR"
    ident.ScheduledProcedureStepSequence.append(second)
    [(status, _)] = _find(port, ident)
    assert status == 0xC000


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_invalid_date_key_is_c000_naming_the_key(scheduled, client):
    port, _ = scheduled
    ident = _sps_key(ScheduledProcedureStepStartDate="20261341")
    assoc = client(port, ModalityWorklistInformationFind, calling="FINDSCU")
    [(st, _)] = list(assoc.send_c_find(ident, ModalityWorklistInformationFind))
    assert st.Status == 0xC000
    assert "ScheduledProcedureStepStartDate" in st.ErrorComment


@pytest.mark.slow
def test_key_with_wrong_vr_is_a900(scheduled):
    port, _ = scheduled
    ident = Dataset()
    ident.AccessionNumber = ""
    ident.add_new(0x00400100, "LO", "CT1")  # the SPS Sequence as text
    [(status, _)] = _find(port, ident, explicit_only=True)
    assert status == 0xA900


@pytest.mark.slow
def test_c_cancel_stops_the_query(worklist_server, client):
    port, store = worklist_server
    store.add_many([build_item(dict(ORDERS[0], accession=f"A{i:04d}", patient_id=f"Q{i}"))
                    for i in range(400)])
    assoc = client(port, ModalityWorklistInformationFind, calling="FINDSCU")
    statuses = []
    try:
        for st, _ in assoc.send_c_find(_sps_key(ScheduledStationAETitle="CT1"),
                                       ModalityWorklistInformationFind, msg_id=9):
            statuses.append(int(st.Status))
            if len(statuses) == 1:
                assoc.send_c_cancel(9, None, ModalityWorklistInformationFind)
    finally:
        assoc.release()
    assert statuses[-1] == 0xFE00
    assert len(statuses) < 401


# -- status API (for MPPS) and the completed policy ----------------------------------

@pytest.mark.slow
def test_mark_and_find_item(worklist_server, tmp_path):
    port, store = worklist_server
    ids = store.add_many(_items())
    uid = str(store.get(ids[0]).StudyInstanceUID)
    assert store.find_item(study_uid=uid, sps_id="ACC1") == ids[0]
    assert store.find_item(accession="ACC1") == ids[0]
    assert store.find_item(accession="NOPE") is None
    assert store.find_item() is None
    assert store.mark(study_uid=uid, sps_id="ACC1", status="IN PROGRESS") == 1
    step = store.get(ids[0]).ScheduledProcedureStepSequence[0]
    assert step.ScheduledProcedureStepStatus == "STARTED"
    started = _find(port, _sps_key(ScheduledProcedureStepStatus="STARTED"))
    assert [str(r.AccessionNumber) for s, r in started if s == 0xFF00] == ["ACC1"]

    assert store.mark(accession="ACC1", status="COMPLETED") == 1
    store.mark(ids[1], status="DISCONTINUED")
    ident = _sps_key(Modality="")
    ident.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus = ""
    hidden = _find(port, ident)
    assert sorted(str(r.AccessionNumber) for s, r in hidden if s == 0xFF00) == \
        ["ACC3", "ACC4", "ACC5"]
    with serve(store, WorklistConfig(completed="mark")) as marking:
        shown = {str(r.AccessionNumber): r.ScheduledProcedureStepSequence[0]
                 .ScheduledProcedureStepStatus for s, r in _find(marking, ident) if s == 0xFF00}
    assert shown == {"ACC1": "COMPLETED", "ACC2": "DISCONTINUED", "ACC3": "SCHEDULED",
                     "ACC4": "SCHEDULED", "ACC5": "SCHEDULED"}
    # a re-import of the same order does not resurrect a completed step
    store.add(_items()[0])
    assert store.get(ids[0]).ScheduledProcedureStepSequence[0] \
        .ScheduledProcedureStepStatus == "COMPLETED"
    with pytest.raises(ValueError):
        store.mark(ids[0], status="FINISHED")


def test_several_steps_become_several_items(tmp_path):
    store = WorklistStore.for_data_dir(tmp_path)
    item = _items()[0]
    second = copy.deepcopy(item.ScheduledProcedureStepSequence[0])
    second.ScheduledProcedureStepID = "ACC1-2"
    second.ScheduledProcedureStepStartTime = "093000"
    item.ScheduledProcedureStepSequence.append(second)
    ids = store.add_many([item])
    assert len(ids) == 2
    assert {str(store.get(i).ScheduledProcedureStepSequence[0].ScheduledProcedureStepID)
            for i in ids} == {"ACC1", "ACC1-2"}


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_validation_reasons(tmp_path):
    ds = build_item(dict(patient_name="X^Y", patient_id="P", modality="CT",
                         station_ae="A" * 17, start_date="20261399", start_time="0900",
                         priority="SOON"))
    del ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID
    with pytest.raises(ItemRejected) as err:
        WorklistStore.for_data_dir(tmp_path).add(ds)
    text = str(err.value)
    for fragment in ("ScheduledProcedureStepID", "RequestedProcedureDescription",
                     "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
                     "RequestedProcedurePriority"):
        assert fragment in text
    no_steps = build_item(ORDERS[0])
    del no_steps.ScheduledProcedureStepSequence
    with pytest.raises(ItemRejected, match="ScheduledProcedureStepSequence"):
        WorklistStore.for_data_dir(tmp_path).add(no_steps)


def test_response_returns_whole_sequence_for_an_empty_key():
    item = _items()[2]
    ident = Dataset()
    ident.ScheduledProcedureStepSequence = []
    ident.PatientName = ""
    rsp = response(ident, item)
    step = rsp.ScheduledProcedureStepSequence[0]
    assert step.Modality == "CT" and step.ScheduledStationAETitle == "CT1"


# -- imports and the CLI -----------------------------------------------------------

def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="printscp")
    add_worklist_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["worklist", *argv])
    return int(args.func(args))


CSV_HEADER = ("patient_name,patient_id,accession,modality,station_ae,start_date,start_time,"
              "procedure_description,procedure_code,priority\n")


def test_csv_import_with_a_bad_row_rejects_the_file(tmp_path, capsys):
    data = tmp_path / "data"
    good = tmp_path / "good.csv"
    good.write_text(CSV_HEADER +
                    "DOE^JANE,P1,C1,CT,CT1,2026-11-01,08:30,CT CHEST,CT1^99L^Chest,ROUTINE\n"
                    "\n"
                    "MÜLLER^ÄNNE,P2,C2,MR,MR1,20261101,0930,MR KNEE,,\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV_HEADER +
                   "ROE^RICHARD,P3,C3,CT,CT1,20261102,1000,CT HEAD,,\n"
                   "ROE^RITA,P4,C4,CT,CT1,20261345,1000,CT HEAD,,\n"
                   "ROE^ROB,P5,C5,CT,CT1,20261102,1000,,,SOON\n"
                   "ROE^RON,P6,C6,CT,CT1,20261102,1000,CT HEAD,BADCODE,\n", encoding="utf-8")
    assert _cli("import", "--data-dir", str(data), str(good), str(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}: line 3: " in err and "20261345" in err
    assert f"{bad}: line 4: " in err and "RequestedProcedureDescription" in err
    assert "SOON" in err
    assert f"{bad}: line 5: procedure_code" in err
    store = WorklistStore.for_data_dir(data)
    items = store.items()
    assert [i.accession_number for i in items] == ["C1", "C2"]  # nothing of bad.csv
    first = store.get(items[0].id)
    assert first.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == "083000"
    assert first.RequestedProcedureCodeSequence[0].CodeMeaning == "Chest"
    second = store.get(items[1].id)
    assert second.SpecificCharacterSet == "ISO_IR 100"
    # importing again updates the same items
    assert _cli("import", "--data-dir", str(data), str(good)) == 0
    assert store.count() == 2


def test_csv_unknown_column_rejects_the_file(tmp_path, capsys):
    path = tmp_path / "typo.csv"
    path.write_text("patient_name;patient_id;modalty\nA^B;P;CT\n")
    assert _cli("import", "--data-dir", str(tmp_path / "d"), str(path)) == 2
    assert "unknown column modalty" in capsys.readouterr().err


def test_json_import_with_a_bad_item(tmp_path, capsys):
    data = tmp_path / "data"
    items = _items()
    good = tmp_path / "good.json"
    good.write_text(json.dumps([i.to_json_dict() for i in items[:2]]))
    broken = items[2]
    del broken.ScheduledProcedureStepSequence
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([items[3].to_json_dict(), broken.to_json_dict()]))
    assert _cli("import", "--data-dir", str(data), str(good), str(bad)) == 1
    err = capsys.readouterr().err
    assert f"{bad}: item 2: ScheduledProcedureStepSequence (0040,0100) is missing" in err
    assert sorted(i.accession_number for i in WorklistStore.for_data_dir(data).items()) == \
        ["ACC1", "ACC2"]


def test_cli_add_list_remove(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert _cli("add", "--data-dir", data, "--patient-name", "DOE^JANE", "--patient-id",
                "P1", "--accession", "A1", "--modality", "ct", "--station-ae", "CT1",
                "--procedure-description", "CT CHEST", "--start-date", "2026-11-01",
                "--start-time", "08:30", "--age", "45", "--weight", "70.5",
                "--protocol-code", "X1^99L^Chest", "--priority", "stat") == 0
    assert _cli("add", "--data-dir", data, "--patient-name", "ROE^RICK", "--patient-id",
                "P2", "--modality", "MR", "--station-ae", "MR1",
                "--procedure-description", "MR", "--sps-id", "S2") == 0
    assert _cli("add", "--data-dir", data, "--patient-name", "X", "--patient-id", "P3",
                "--modality", "MR", "--station-ae", "MR1") == 2
    assert "RequestedProcedureDescription" in capsys.readouterr().err
    assert _cli("list", "--data-dir", data, "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [i["sps_id"] for i in listed] == ["A1", "S2"]
    assert listed[0]["start_date"] == "20261101" and listed[0]["status"] == "SCHEDULED"
    store = WorklistStore.for_data_dir(data)
    item = store.get(listed[0]["id"])
    assert item.PatientAge == "045Y" and float(item.PatientWeight) == 70.5
    assert item.RequestedProcedurePriority == "STAT"
    assert _cli("list", "--data-dir", data) == 0
    assert "DOE^JANE" in capsys.readouterr().out
    assert _cli("remove", "--data-dir", data, "S2", "NOPE") == 1
    assert _cli("remove", "--data-dir", data, "--accession", "A1") == 0
    assert store.count() == 0
