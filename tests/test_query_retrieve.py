"""Query/Retrieve SCP against DCMTK findscu, movescu and getscu, and pynetdicom SCUs."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from helpers.archive_data import Study, instance, write_study
from helpers.clients import associate
from helpers.dcmtk import tool
from helpers.net import free_port
from helpers.nodes import QR_CLIENTS, known_clients, make_node
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from printscp.app.node import Node
from printscp.core.remote import RemoteAE

pytestmark = pytest.mark.slow  # every test runs a node

STUDIES = [
    Study("P1", "DOE^JANE", "20261101", "ACC001", modality="CT", series=2, images=2,
          description="CHEST", study_time="083000"),
    Study("P1", "DOE^JANE", "20261115", "ACC002", modality="MR", series=1, images=3,
          description="KNEE LEFT", study_time="141500"),
    Study("P2", "SMITH^JOHN", "20261020", "ACC003", modality="CT", series=1, images=1,
          description="HEAD", birth_date="19500505", sex="M", study_time="230000"),
    Study("P3", "SMYTHE^ANNA", "20251231", "ACC004", modality="MR", series=1, images=1,
          description="SPINE", study_time="120000"),
]


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A node with four studies of three patients, and a free port for a move target."""
    tmp = tmp_path_factory.mktemp("qr")
    move_port = free_port()
    clients = known_clients(*(t for t in QR_CLIENTS if t != "MOVESCU"))
    node = make_node(tmp, remote=(RemoteAE("MOVESCU", "127.0.0.1", move_port), *clients))
    files = [p for i, s in enumerate(STUDIES) for p in write_study(s, tmp / f"s{i}")]
    assoc = associate(node.port, *{pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID
                                   for f in files}, calling="LOADER")
    for f in files:
        assert assoc.send_c_store(pydicom.dcmread(f)).Status == 0
    assoc.release()
    yield node, tmp, move_port
    node.stop()


@pytest.fixture
def node(make_node):
    """A node whose AE table knows the tests' query and retrieve clients."""
    return make_node(remote=known_clients())


def findscu(node: Node, tmp: Path, *keys: str, model: str = "-S") -> list[Dataset]:
    out = tmp / f"find-{abs(hash(keys))}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    args = [tool("findscu"), model, "-aec", "PRINTSCP", "-X", "-od", str(out)]
    for k in keys:
        args += ["-k", k]
    res = subprocess.run([*args, "127.0.0.1", str(node.port)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def accessions(rsps: list[Dataset]) -> list[str]:
    return sorted(str(r.AccessionNumber) for r in rsps)


@pytest.mark.dcmtk("findscu")
@pytest.mark.parametrize(("keys", "expected"), [
    (["PatientID=P1"], ["ACC001", "ACC002"]),  # single value
    (["PatientName=SM*"], ["ACC003", "ACC004"]),  # wildcard
    (["PatientName=SM?TH*"], ["ACC003", "ACC004"]),  # ? wildcard: SMITH, SMYTHE
    (["PatientName=SMI?H"], []),  # no trailing *: SMITH^JOHN is longer
    (["PatientName=smith*"], ["ACC003"]),  # PN matched case-insensitively
    (["StudyDate=20261101-20261120"], ["ACC001", "ACC002"]),  # closed range
    (["StudyDate=-20261031"], ["ACC003", "ACC004"]),  # open start
    (["StudyDate=20261115-"], ["ACC002"]),  # open end
    (["StudyDate=20261020"], ["ACC003"]),  # single date
    (["StudyTime=0800-1200"], ["ACC001", "ACC004"]),  # time range
    (["AccessionNumber=ACC00?"], ["ACC001", "ACC002", "ACC003", "ACC004"]),
    (["ModalitiesInStudy=MR"], ["ACC002", "ACC004"]),  # multi-valued derived key
    (["StudyDescription=*KNEE*"], ["ACC002"]),
    (["PatientID=NOBODY"], []),  # no match
])
def test_study_level_matching(populated, keys, expected):
    node, tmp, _ = populated
    rsps = findscu(node, tmp, "QueryRetrieveLevel=STUDY", "AccessionNumber", *keys)
    assert accessions(rsps) == expected


@pytest.mark.dcmtk("findscu")
def test_uid_list_and_return_keys(populated):
    node, tmp, _ = populated
    uids = f"{STUDIES[0].study_uid}\\{STUDIES[2].study_uid}"
    rsps = findscu(node, tmp, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={uids}",
                   "AccessionNumber", "PatientName", "NumberOfStudyRelatedSeries",
                   "NumberOfStudyRelatedInstances", "ModalitiesInStudy", "SOPClassesInStudy",
                   "PatientBirthDate", "InstitutionName")
    by_acc = {str(r.AccessionNumber): r for r in rsps}
    assert sorted(by_acc) == ["ACC001", "ACC003"]
    first = by_acc["ACC001"]
    assert first.NumberOfStudyRelatedSeries == 2 and first.NumberOfStudyRelatedInstances == 4
    assert first.ModalitiesInStudy == "CT" and str(first.PatientName) == "DOE^JANE"
    assert "InstitutionName" in first and first.InstitutionName in ("", None)  # unknown: empty
    assert by_acc["ACC003"].PatientBirthDate == "19500505"


@pytest.mark.dcmtk("findscu")
def test_patient_root_levels(populated):
    node, tmp, _ = populated
    patients = findscu(node, tmp, "QueryRetrieveLevel=PATIENT", "PatientID",
                       "PatientName=D*", "NumberOfPatientRelatedStudies",
                       "NumberOfPatientRelatedInstances", model="-P")
    assert [(p.PatientID, p.NumberOfPatientRelatedStudies, p.NumberOfPatientRelatedInstances)
            for p in patients] == [("P1", 2, 7)]
    studies = findscu(node, tmp, "QueryRetrieveLevel=STUDY", "PatientID=P1",
                      "StudyInstanceUID", model="-P")
    assert len(studies) == 2


@pytest.mark.dcmtk("findscu")
def test_series_and_image_levels(populated):
    node, tmp, _ = populated
    study = STUDIES[0]
    series = findscu(node, tmp, "QueryRetrieveLevel=SERIES",
                     f"StudyInstanceUID={study.study_uid}", "SeriesInstanceUID",
                     "Modality=CT", "SeriesNumber", "NumberOfSeriesRelatedInstances")
    assert sorted(int(s.SeriesNumber) for s in series) == [1, 2]
    assert all(s.NumberOfSeriesRelatedInstances == 2 for s in series)
    images = findscu(node, tmp, "QueryRetrieveLevel=IMAGE",
                     f"StudyInstanceUID={study.study_uid}",
                     f"SeriesInstanceUID={study.series_uids[1]}", "SOPInstanceUID",
                     "InstanceNumber=2", "Rows")
    assert len(images) == 1 and images[0].Rows == 16


def _find(node: Node, identifier: Dataset, model=StudyRootQueryRetrieveInformationModelFind):
    """(status, Error Comment, identifier) of every response."""
    assoc = associate(node.port, model, calling="FINDSCU")
    try:
        return [(int(st.Status), str(st.get("ErrorComment", "")), ds)
                for st, ds in assoc.send_c_find(identifier, model)]
    finally:
        assoc.release()


def test_specific_character_set_only_when_a_value_needs_it(node, client):
    """PS3.4 C.4.1.1.3.2: a response holding a Latin-1 name carries the record's
    Specific Character Set (and the name decodes); one of UIDs and ASCII does not."""
    study = Study("P7", "MÜLLER^RENÉ", "20261101", "ACC7", images=1)
    ds = instance(study, 0, 1)
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    loader = client(node.port, CTImageStorage, calling="LOADER")
    assert loader.send_c_store(ds).Status == 0
    loader.release()
    named = Dataset()
    named.QueryRetrieveLevel = "STUDY"
    named.PatientID = "P7"
    named.PatientName = ""
    [(code, _, match), (final, _, _)] = _find(node, named)
    assert (code, final) == (0xFF00, 0x0000)
    assert match.SpecificCharacterSet == "ISO_IR 100"
    assert str(match.PatientName) == "MÜLLER^RENÉ"
    plain = Dataset()
    plain.QueryRetrieveLevel = "IMAGE"
    plain.StudyInstanceUID = study.study_uid
    plain.SeriesInstanceUID = study.series_uids[0]
    plain.SOPInstanceUID = ""
    plain.InstanceNumber = ""
    [(code, _, match), _] = _find(node, plain)
    assert code == 0xFF00 and "SpecificCharacterSet" not in match
    assert match.SOPInstanceUID == ds.SOPInstanceUID


def test_sequence_matching(populated):
    node, _, _ = populated
    ident = Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.StudyInstanceUID = STUDIES[0].study_uid
    ident.SeriesInstanceUID = STUDIES[0].series_uids[0]
    ident.SOPInstanceUID = ""
    ident.ImageType = "ORIGINAL\\PRIMARY\\AXIAL"
    results = _find(node, ident)
    assert [s for s, _, _ in results] == [0xFF00, 0xFF00, 0x0000]


@pytest.mark.parametrize(("level", "comment"), [
    ("SERIES", "StudyInstanceUID is required"),
    ("PATIENT", "Patient Root"),
    ("", "QueryRetrieveLevel"),
    ("BOGUS", "QueryRetrieveLevel"),
])
def test_bad_identifiers_fail_naming_the_key(populated, level, comment):
    node, _, _ = populated
    ident = Dataset()
    if level:
        ident.QueryRetrieveLevel = level
    ident.SeriesInstanceUID = ""
    [(status, error, _)] = _find(node, ident)
    assert status == 0xA900 and comment in error


def test_c_cancel_stops_the_query(populated, client):
    node, _, _ = populated
    assoc = client(node.port, PatientRootQueryRetrieveInformationModelFind, calling="FINDSCU")
    ident = Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.PatientID = "P1"
    ident.StudyInstanceUID = STUDIES[0].study_uid
    ident.SeriesInstanceUID = STUDIES[0].series_uids[0]
    ident.SOPInstanceUID = ""
    try:
        statuses = _find_and_cancel(assoc, ident, PatientRootQueryRetrieveInformationModelFind)
    finally:
        assoc.release()
    assert statuses[-1] in (0xFE00, 0x0000) and len(statuses) <= 3


def _find_and_cancel(assoc, ident: Dataset, model: str, msg_id: int = 7) -> list[int]:
    """The statuses of a C-FIND cancelled (C-CANCEL) once its first response is in."""
    statuses = []
    for st, _ in assoc.send_c_find(ident, model, msg_id=msg_id):
        statuses.append(int(st.Status))
        if len(statuses) == 1:
            assoc.send_c_cancel(msg_id, None, model)
    return statuses


def _slow_series(node: Node, monkeypatch, images: int = 30) -> tuple[Dataset, list[int]]:
    """A series of ``images`` stored in ``node``, queried at a large archive's pace
    (20 ms a match); the image-level identifier, and a list that counts the matches
    the index has produced."""
    study = Study("P9", "LONG^ANSWER", "20261101", "ACC9", images=images)
    loader = associate(node.port, CTImageStorage, calling="LOADER")
    for i in range(1, study.images + 1):
        assert loader.send_c_store(instance(study, 0, i)).Status == 0
    loader.release()
    index = node.archive.index
    query = index.query
    produced: list[int] = []

    def slow_query(*args, **kwargs):
        for match in query(*args, **kwargs):
            time.sleep(0.02)
            produced.append(1)
            yield match

    monkeypatch.setattr(index, "query", slow_query)
    ident = Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.StudyInstanceUID = study.study_uid
    ident.SeriesInstanceUID = study.series_uids[0]
    ident.SOPInstanceUID = ""
    return ident, produced


def test_c_cancel_is_seen_while_the_matches_go_out(node, client, monkeypatch):
    """A C-CANCEL arriving mid-way through a long answer ends it with 0xFE00 (the
    query is served on the DUL thread, which reads the cancel between matches)."""
    ident, _ = _slow_series(node, monkeypatch)
    assoc = client(node.port, StudyRootQueryRetrieveInformationModelFind, "1.2.840.10008.1.1",
                   calling="FINDSCU")
    try:
        statuses = _find_and_cancel(assoc, ident, StudyRootQueryRetrieveInformationModelFind)
        assert assoc.send_c_echo().Status == 0x0000  # the association goes on
    finally:
        assoc.release()
    assert statuses[-1] == 0xFE00
    assert 1 <= statuses.count(0xFF00) < 10


@pytest.mark.dcmtk("findscu")
def test_findscu_cancel_is_seen_while_the_matches_go_out(node, monkeypatch, tmp_path):
    """DCMTK findscu --cancel 1 sends C-CANCEL after the first match; the answer ends
    with the Cancel status and findscu exits cleanly."""
    ident, produced = _slow_series(node, monkeypatch)
    res = subprocess.run([tool("findscu"), "-S", "-v", "-aec", "PRINTSCP", "--cancel", "1",
                          "-k", "QueryRetrieveLevel=IMAGE",
                          "-k", f"StudyInstanceUID={ident.StudyInstanceUID}",
                          "-k", f"SeriesInstanceUID={ident.SeriesInstanceUID}",
                          "-k", "SOPInstanceUID", "127.0.0.1", str(node.port)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Cancel" in res.stderr
    assert 1 <= res.stderr.count("Find Response:") < 10 and len(produced) < 10


def test_a_query_stops_when_its_requester_aborts(node, client, monkeypatch):
    """A requester that aborts mid-way through a long answer is not answered further:
    the query stops at the next match instead of writing the rest to nobody, and the
    node keeps serving."""
    ident, produced = _slow_series(node, monkeypatch)
    assoc = client(node.port, StudyRootQueryRetrieveInformationModelFind, calling="FINDSCU")
    for st, _ in assoc.send_c_find(ident, StudyRootQueryRetrieveInformationModelFind):
        assert st.Status == 0xFF00
        assoc.abort()
        break
    time.sleep(1.0)  # 30 matches at 20 ms: all produced by now, had it gone on
    assert 1 <= len(produced) < 10
    other = client(node.port, "1.2.840.10008.1.1", calling="ECHOSCU")
    assert other.send_c_echo().Status == 0x0000


@pytest.mark.dcmtk("movescu")
def test_movescu_moves_a_study_with_counts(populated, tmp_path):
    node, _, move_port = populated
    study = STUDIES[0]
    res = subprocess.run([tool("movescu"), "-S", "-d", "-aec", "PRINTSCP", "-aet", "MOVESCU",
                          "-aem", "MOVESCU", "+P", str(move_port), "-od", str(tmp_path),
                          "-k", "QueryRetrieveLevel=STUDY",
                          "-k", f"StudyInstanceUID={study.study_uid}",
                          "127.0.0.1", str(node.port)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    received = [pydicom.dcmread(p) for p in tmp_path.iterdir()]
    assert len(received) == 4
    assert {str(d.StudyInstanceUID) for d in received} == {study.study_uid}
    archive = node.archive
    originals = {r.sop_uid: archive.read(r) for r in archive.instances()}
    for d in received:
        assert d.PixelData == originals[d.SOPInstanceUID].PixelData
    # movescu -d: the first C-MOVE-RSP, Pending with all four remaining and none done,
    # comes before the first C-STORE-RQ (movescu waits for it to look for the
    # sub-association); the last is Success.
    log = res.stderr
    first_rsp, first_store = log.index(": C-MOVE RSP"), log.index(": C-STORE RQ")
    assert first_rsp < first_store
    block = log[first_rsp:first_store]
    assert re.search(r"Remaining Suboperations\s+: 4\b", block)
    assert re.search(r"Completed Suboperations\s+: 0\b", block)
    assert "0xff00: Pending" in block
    assert "0x0000: Success" in log[log.rindex(": C-MOVE RSP"):]


def _move_to_pynetdicom(populated, study: Study, on_store) -> tuple[list, float]:
    """C-MOVE ``study`` to a pynetdicom storage SCP (the node's MOVESCU) whose C-STORE
    handler is ``on_store``: the (status, identifier) responses and the seconds taken."""
    node, _, move_port = populated
    destination = AE(ae_title="MOVESCU")
    destination.add_supported_context(CTImageStorage)
    server = destination.start_server(("127.0.0.1", move_port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        assoc = associate(node.port, StudyRootQueryRetrieveInformationModelMove,
                          calling="MOVER")
        ident = Dataset()
        ident.QueryRetrieveLevel = "STUDY"
        ident.StudyInstanceUID = study.study_uid
        started = time.monotonic()
        try:
            responses = list(assoc.send_c_move(
                ident, "MOVESCU", StudyRootQueryRetrieveInformationModelMove))
        finally:
            assoc.release()
        return responses, time.monotonic() - started
    finally:
        server.shutdown()


def test_move_announces_its_sub_operations_before_the_first_store(populated):
    """The first C-MOVE-RSP is Pending with every sub-operation remaining and none done,
    sent before the first C-STORE (DCMTK's move SCU waits for it to look for the
    sub-association); the destination then receives every instance."""
    study = STUDIES[0]
    received: list[str] = []

    def on_store(event):
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    moved, _ = _move_to_pynetdicom(populated, study, on_store)
    responses = [(int(st.Status), int(st.get("NumberOfRemainingSuboperations", -1)),
                  int(st.get("NumberOfCompletedSuboperations", -1))) for st, _ in moved]
    images = study.series * study.images
    assert responses[0] == (0xFF00, images, 0)
    assert responses[-1][0] == 0x0000 and responses[-1][2] == images
    assert [r for r in responses if r[0] == 0xFF00 and r[2] == 0] == [responses[0]]
    assert len(received) == images


def test_move_to_a_destination_that_aborts_part_way_fails_the_rest_at_once(populated):
    """A viewer closed during a move: the sub-operations left fail at once and the final
    response counts them, instead of each waiting for a reactor or a response that
    will not come."""
    study = STUDIES[0]
    received: list[str] = []

    def on_store(event):
        received.append(str(event.request.AffectedSOPInstanceUID))
        if len(received) == 2:
            event.assoc.abort()
        return 0x0000

    responses, elapsed = _move_to_pynetdicom(populated, study, on_store)
    images = study.series * study.images
    final, identifier = responses[-1]
    assert int(final.Status) == 0xB000
    assert int(final.NumberOfCompletedSuboperations) == 1
    assert int(final.NumberOfFailedSuboperations) == images - 1
    assert identifier is not None and len(identifier.FailedSOPInstanceUIDList) == images - 1
    assert len(received) == 2
    assert elapsed < 10  # the DIMSE timeout is 30 s


def test_move_to_an_unknown_destination_is_a801(populated, client):
    node, _, _ = populated
    assoc = client(node.port, StudyRootQueryRetrieveInformationModelMove, calling="MOVER")
    ident = Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.StudyInstanceUID = STUDIES[2].study_uid
    statuses = [int(st.Status) for st, _ in assoc.send_c_move(
        ident, "NOWHERE", StudyRootQueryRetrieveInformationModelMove)]
    assert statuses == [0xA801]


def test_move_with_no_match_is_success_with_zero_suboperations(populated, client):
    node, _, _ = populated
    assoc = client(node.port, StudyRootQueryRetrieveInformationModelMove, calling="MOVER")
    ident = Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.StudyInstanceUID = "1.2.3.4.5.6.7"
    [(st, _)] = list(assoc.send_c_move(ident, "MOVESCU",
                                       StudyRootQueryRetrieveInformationModelMove))
    assert st.Status == 0x0000 and st.NumberOfCompletedSuboperations == 0


@pytest.mark.dcmtk("getscu")
def test_getscu_gets_a_series(populated, tmp_path):
    node, _, _ = populated
    study = STUDIES[1]
    res = subprocess.run([tool("getscu"), "-S", "-v", "-aec", "PRINTSCP", "-od", str(tmp_path),
                          "-k", "QueryRetrieveLevel=SERIES",
                          "-k", f"StudyInstanceUID={study.study_uid}",
                          "-k", f"SeriesInstanceUID={study.series_uids[0]}",
                          "127.0.0.1", str(node.port)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    received = sorted(tmp_path.iterdir())
    assert len(received) == 3
    assert {str(pydicom.dcmread(p).SeriesInstanceUID) for p in received} == {
        study.series_uids[0]}


def test_get_converts_when_the_stored_syntax_was_not_proposed(populated, client, tmp_path):
    """An instance stored RLE-compressed is sent uncompressed to a requester that
    proposed only Explicit VR Little Endian for its class."""
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless

    node, _, _ = populated
    study = Study("P5", "RLE^PAT", "20260101", "ACC005", images=1)
    [path] = write_study(study, tmp_path / "rle")
    ds = pydicom.dcmread(path)
    plain = ds.PixelData
    ds.compress(RLELossless)
    assoc = client(node.port, (ds.SOPClassUID, RLELossless), calling="LOADER")
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    got: list[Dataset] = []

    def on_store(event):
        got.append(event.dataset)
        got[-1].file_meta = event.file_meta
        return 0x0000

    assoc = client(node.port, StudyRootQueryRetrieveInformationModelGet,
                   (ds.SOPClassUID, ExplicitVRLittleEndian), calling="GETTER",
                   ext_neg=[build_role(ds.SOPClassUID, scp_role=True)],
                   evt_handlers=[(evt.EVT_C_STORE, on_store)])
    ident = Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.StudyInstanceUID = study.study_uid
    final = list(assoc.send_c_get(ident, StudyRootQueryRetrieveInformationModelGet))[-1][0]
    assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 1
    assert got[0].file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert got[0].PixelData == plain


def _getter(node: Node, on_store, sop_class: str = CTImageStorage):
    return associate(node.port, StudyRootQueryRetrieveInformationModelGet, sop_class,
                     calling="GETTER", ext_neg=[build_role(sop_class, scp_role=True)],
                     evt_handlers=[(evt.EVT_C_STORE, on_store)])


def _get_study(assoc, study_uid: str) -> list[tuple[Dataset, Dataset | None]]:
    ident = Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.StudyInstanceUID = study_uid
    try:
        return list(assoc.send_c_get(ident, StudyRootQueryRetrieveInformationModelGet))
    finally:
        assoc.release()


@pytest.mark.parametrize(("refuse", "final_status", "failed"), [
    (set(), 0x0000, 0), ({0}, 0xB000, 1), ({0, 1, 2, 3}, 0xA702, 4)])
def test_get_counts_and_final_status(populated, refuse, final_status, failed):
    """Pending responses count down; sub-operations the requester refuses (0xA700) are
    failures, listed in the final response (B000 some, A702 all)."""
    node, _, _ = populated
    study = STUDIES[0]  # 2 series x 2 CT images
    seen: list[str] = []

    def on_store(event):
        seen.append(str(event.request.AffectedSOPInstanceUID))
        return 0xA700 if len(seen) - 1 in refuse else 0x0000

    responses = _get_study(_getter(node, on_store), study.study_uid)
    pending = [st for st, _ in responses[:-1]]
    assert [int(st.Status) for st in pending] == [0xFF00] * 4
    assert [int(st.NumberOfRemainingSuboperations) for st in pending] == [3, 2, 1, 0]
    final, identifier = responses[-1]
    assert int(final.Status) == final_status
    assert int(final.NumberOfFailedSuboperations) == failed
    assert int(final.NumberOfCompletedSuboperations) == 4 - failed
    if failed:
        listed = identifier.FailedSOPInstanceUIDList
        listed = [listed] if isinstance(listed, str) else list(listed)
        assert sorted(map(str, listed)) == sorted(seen[i] for i in refuse)
    assert len(seen) == 4


def test_get_refuses_a_bad_identifier(populated):
    node, _, _ = populated
    assoc = _getter(node, lambda event: 0x0000)
    ident = Dataset()
    ident.QueryRetrieveLevel = "IMAGE"
    ident.StudyInstanceUID = STUDIES[0].study_uid
    try:
        [(st, _)] = list(assoc.send_c_get(ident, StudyRootQueryRetrieveInformationModelGet))
    finally:
        assoc.release()
    assert int(st.Status) == 0xA900
    assert "SeriesInstanceUID" in st.ErrorComment


def test_get_cancel_stops_the_sub_operations(populated):
    """C-CANCEL during a C-GET: the final response is 0xFE00 with the counts so far."""
    node, _, _ = populated
    study = STUDIES[1]  # 3 MR images
    box: dict[str, object] = {}

    def on_store(event):
        if "cancelled" not in box:  # cancel after the first sub-operation
            box["cancelled"] = True
            event.assoc.send_c_cancel(box["msg_id"],
                                      query_model=StudyRootQueryRetrieveInformationModelGet)
        return 0x0000

    from pydicom.uid import MRImageStorage

    assoc = _getter(node, on_store, MRImageStorage)
    ident = Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.StudyInstanceUID = study.study_uid
    box["msg_id"] = 1
    try:
        responses = list(assoc.send_c_get(ident, StudyRootQueryRetrieveInformationModelGet,
                                          msg_id=1))
    finally:
        assoc.release()
    final = responses[-1][0]
    assert int(final.Status) == 0xFE00
    assert int(final.NumberOfCompletedSuboperations) == 1
    assert int(final.NumberOfRemainingSuboperations) == 2


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"],
                         ids=["implicit", "explicit"])
@pytest.mark.parametrize("level", ["STUDY", "SERIES", "IMAGE"])
def test_hand_encoded_find_responses_equal_pydicom(populated, syntax, level):
    """C-FIND responses encoded straight from the index's records are the bytes pydicom
    writes for the same response data set (with a binary key, pydicom writes it all)."""
    from types import SimpleNamespace

    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    from printscp.archive.index import Level
    from printscp.net import pdata
    from printscp.services.query_retrieve import _encoded_response, _ReturnKeys

    node, _, _ = populated
    ident = Dataset()
    ident.QueryRetrieveLevel = level
    ident.PatientName = ""
    ident.PatientID = ""
    ident.StudyInstanceUID = STUDIES[0].study_uid if level != "STUDY" else ""
    ident.StudyDate = ""
    ident.ModalitiesInStudy = ""
    ident.NumberOfStudyRelatedInstances = None
    if level in ("SERIES", "IMAGE"):
        ident.SeriesInstanceUID = STUDIES[0].series_uids[0] if level == "IMAGE" else ""
        ident.Modality = ""
        ident.SeriesNumber = None
    if level == "IMAGE":
        ident.SOPInstanceUID = ""
        ident.InstanceNumber = None
        ident.Rows = None  # binary: pydicom encodes that response
    ident.InstanceAvailability = ""
    ts = UID(syntax)
    context = SimpleNamespace(transfer_syntax=[ts])
    records = [r for r, _ in node.archive.index.query(Level(level), ident)]
    assert records
    for record in records:
        keys = _ReturnKeys(ident, Level(level), "PRINTSCP")
        elements = keys.elements(record)
        expected_ds = Dataset()
        for elem in elements:
            expected_ds.add(elem)
        expected = encode(expected_ds, ts.is_implicit_VR, True)
        by_hand = pdata.encode_elements(elements, ts.is_implicit_VR)
        assert (by_hand is None) == (level == "IMAGE")
        assert _encoded_response(keys, record, context) == expected
        assert expected_ds.RetrieveAETitle == "PRINTSCP"
        assert expected_ds.QueryRetrieveLevel == level
        assert expected_ds.InstanceAvailability == "ONLINE"
