"""What a third-party Python SCU sees: printscp driven by a stock pynetdicom 3.0 client.

The other tests' clients run in the test process, where printscp has patched pynetdicom
(its reactor loop, the requestor's race workarounds).  Here every operation goes
through ``stock_client.py`` in a subprocess that never imports printscp: C-ECHO,
C-STORE, C-FIND, C-GET and C-MOVE over Patient and Study Root, and a grayscale print
with the Print Job's N-EVENT-REPORTs and N-GETs.  The node is in-process (as in
``tests/conftest.py``).  To keep the module fast, one client process stores the
studies, then runs every query and retrieve (each on its own association); each print
case runs its own.

The client replaces one thing of pynetdicom's, its requestor's reactor checkpoint
(``stock_client.ReactorCheckpoint``), and nothing that goes on the wire.  Stock
pynetdicom 3.0.4 lets its reactor thread read the DIMSE queue while a ``send_*()``
waits on it: a sender reads the ``_is_paused`` the reactor left before it was woken
by the previous request's ``set()`` (``association.py`` 723-731 against 2800-2808), or
the one pynetdicom's N-EVENT-REPORT thread sets (``dimse.py`` 289-298,
``association.py`` 3552-3554).  The reactor then took the response ("Received
unexpected N-DELETE service message", ``association.py`` 3507-3510) and the client
waited its 20 s DIMSE timeout: the Film Box N-DELETE in about 1 of 34 CI runs, and
in 5 of 21 runs of the print cases here beside three busy loops, at any of the
session's requests, in ``12bit-meta-only`` too, where no event is sent.  Delaying
the woken reactor by 5 ms made it happen in each of 5 runs, also to C-STORE and
N-GET.  The server had answered every time: the client logged the answer it dropped
(the client's stderr, with pynetdicom's warnings, shows when an operation fails).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from helpers.archive_data import CT_IMAGE, MR_IMAGE, Study, write_study
from helpers.net import free_port
from helpers.nodes import make_node
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID

from printscp.app.node import Node

pytestmark = pytest.mark.slow

CLIENT = Path(__file__).resolve().parent / "stock_client.py"
DESTINATION = "STOCKDEST"
GRAYSCALE_IMAGE_BOX = "1.2.840.10008.5.1.1.4"
PRINT_JOB = "1.2.840.10008.5.1.1.14"
PENDING, SUCCESS = 0xFF00, 0x0000

STUDIES = [
    Study("STK1", "DOE^JANE", "20260301", "STKACC1", modality="CT", series=2, images=2,
          description="CHEST", study_time="090000"),
    Study("STK1", "DOE^JANE", "20260415", "STKACC2", modality="MR", series=1, images=2,
          description="KNEE", study_time="150000"),
    Study("STK2", "ROE^RICHARD", "20251120", "STKACC3", modality="CT", series=1, images=1,
          description="HEAD", birth_date="19600606", sex="M", study_time="070000"),
]


def run_client(port: int, *operations: dict[str, Any], timeout: float = 60) -> list[dict]:
    """Run the stock client on ``operations``; their results, in order."""
    job = {"host": "127.0.0.1", "port": port, "called_ae": "PRINTSCP",
           "calling_ae": "STOCKSCU", "dimse_timeout": 20, "operations": list(operations)}
    proc = subprocess.run([sys.executable, str(CLIENT)], input=json.dumps(job),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    assert out["patched"] is False and out["pynetdicom"].startswith("3.0")
    for result in out["results"]:
        assert "error" not in result, f"{result['op']}: {result['traceback']}\n" + \
            proc.stderr[-4000:]
    return out["results"]


# -- The node and one client session: C-ECHO, C-STORE, then every query and retrieve -----

class Archive:
    """The node, the files the stock client stored into it, and the results of that
    client's operations by name (``echo``, ``store``, ``find-<case>``, ``get-<model>``,
    ``move-<model>``)."""

    def __init__(self, node: Node, files: list[Path], move_port: int) -> None:
        self.node, self.files, self.move_port = node, files, move_port
        self.originals = {str(ds.SOPInstanceUID): ds
                          for ds in (pydicom.dcmread(f) for f in files)}
        self.results: dict[str, dict] = {}

    def uids(self, **match: str) -> set[str]:
        """SOP Instance UIDs of the stored files whose attributes equal ``match``."""
        return {uid for uid, ds in self.originals.items()
                if all(str(ds.get(k, "")) == v for k, v in match.items())}

    def operations(self) -> dict[str, dict[str, Any]]:
        ops: dict[str, dict[str, Any]] = {
            "echo": {"op": "echo"},
            "store": {"op": "store", "files": [str(f) for f in self.files]},
        }
        for case, model, identifier, _, _ in _find_cases():
            ops[f"find-{case}"] = {"op": "find", "model": model, "identifier": identifier}
        for case, (model, identifier, _) in _retrieve_cases().items():
            op = {"op": case.split("-")[0], "model": model, "identifier": identifier,
                  "sop_classes": [CT_IMAGE, MR_IMAGE]}
            if op["op"] == "move":
                op["destination"] = {"ae_title": DESTINATION, "port": self.move_port}
            ops[case] = op
        return ops


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    """A node whose AE table (``[[remote]]``) names the stock client's move destination,
    and the client itself (only known AEs may query and retrieve); one stock client
    process stores the studies, then queries and retrieves them."""
    tmp = tmp_path_factory.mktemp("stock")
    move_port = free_port()
    node = make_node(tmp, f'[[remote]]\nae_title = "{DESTINATION}"\nhost = "127.0.0.1"\n'
                          f"port = {move_port}\n"
                          '[[remote]]\nae_title = "STOCKSCU"\nhost = "127.0.0.1"\nport = 11113\n')
    try:
        files = [p for i, s in enumerate(STUDIES) for p in write_study(s, tmp / f"s{i}")]
        session = Archive(node, files, move_port)
        ops = session.operations()
        session.results = dict(zip(ops, run_client(node.port, *ops.values()), strict=True))
        yield session
    finally:
        node.stop()


def test_echo_and_store(archive):
    assert archive.results["echo"]["status"] == {"Status": SUCCESS}
    assert archive.results["store"]["statuses"] == [{"Status": SUCCESS}] * len(archive.files)
    stored = {r.sop_uid for r in archive.node.archive.instances()}
    assert stored == set(archive.originals)


# -- C-FIND ---------------------------------------------------------------------------

def _find_cases() -> list[tuple[str, str, dict[str, Any], str, set[str] | dict[str, str]]]:
    """(id, model, identifier, key to collect, its expected values: a set, or the
    attributes of the stored instances whose SOP Instance UIDs are expected)."""
    chest, knee, head = STUDIES
    return [
        ("patient-PATIENT", "patient",
         {"QueryRetrieveLevel": "PATIENT", "PatientName": "*O*", "PatientID": "",
          "PatientBirthDate": "", "NumberOfPatientRelatedStudies": ""},
         "PatientID", {"STK1", "STK2"}),
        ("patient-STUDY", "patient",
         {"QueryRetrieveLevel": "STUDY", "PatientID": "STK1", "StudyInstanceUID": "",
          "AccessionNumber": "", "StudyDate": "", "StudyDescription": ""},
         "AccessionNumber", {"STKACC1", "STKACC2"}),
        ("patient-SERIES", "patient",
         {"QueryRetrieveLevel": "SERIES", "PatientID": "STK1",
          "StudyInstanceUID": chest.study_uid, "SeriesInstanceUID": "", "Modality": "",
          "SeriesNumber": ""},
         "SeriesInstanceUID", set(chest.series_uids)),
        ("patient-IMAGE", "patient",
         {"QueryRetrieveLevel": "IMAGE", "PatientID": "STK2",
          "StudyInstanceUID": head.study_uid, "SeriesInstanceUID": head.series_uids[0],
          "SOPInstanceUID": "", "InstanceNumber": ""},
         "SOPInstanceUID", {"SeriesInstanceUID": head.series_uids[0]}),
        ("study-STUDY", "study",
         {"QueryRetrieveLevel": "STUDY", "StudyDate": "20260101-20261231",
          "StudyInstanceUID": "", "AccessionNumber": "", "PatientName": "",
          "ModalitiesInStudy": ""},
         "AccessionNumber", {"STKACC1", "STKACC2"}),
        ("study-SERIES", "study",
         {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": knee.study_uid,
          "SeriesInstanceUID": "", "Modality": "MR", "NumberOfSeriesRelatedInstances": ""},
         "SeriesInstanceUID", set(knee.series_uids)),
        ("study-IMAGE", "study",
         {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": chest.study_uid,
          "SeriesInstanceUID": chest.series_uids[1], "SOPInstanceUID": "",
          "SOPClassUID": ""},
         "SOPInstanceUID", {"SeriesInstanceUID": chest.series_uids[1]}),
    ]


FIND_IDS = [case[0] for case in _find_cases()]


@pytest.mark.parametrize("case", FIND_IDS)
def test_c_find(archive, case):
    _, _, identifier, key, expected = next(c for c in _find_cases() if c[0] == case)
    if isinstance(expected, dict):
        expected = archive.uids(**expected)
    result = archive.results[f"find-{case}"]
    statuses = [s["Status"] for s in result["statuses"]]
    assert statuses == [PENDING] * len(expected) + [SUCCESS]
    idents = result["identifiers"]
    assert {i[key] for i in idents} == expected
    for ident in idents:
        # Every requested key comes back, with the level; nothing unasked but the
        # Retrieve AE Title and the Specific Character Set.
        assert ident["QueryRetrieveLevel"] == identifier["QueryRetrieveLevel"]
        assert set(identifier) <= set(ident)
        assert set(ident) - set(identifier) <= {"RetrieveAETitle", "SpecificCharacterSet"}
    if case == "patient-PATIENT":
        by_id = {i["PatientID"]: i for i in idents}
        assert by_id["STK1"]["PatientName"] == "DOE^JANE"
        assert by_id["STK1"]["NumberOfPatientRelatedStudies"] == "2"
        assert by_id["STK2"]["PatientBirthDate"] == "19600606"
    elif case == "study-STUDY":
        by_acc = {i["AccessionNumber"]: i for i in idents}
        assert by_acc["STKACC1"]["ModalitiesInStudy"] in ("CT", ["CT"])
        assert by_acc["STKACC2"]["StudyInstanceUID"] == STUDIES[1].study_uid
    elif case == "study-SERIES":
        [ident] = idents
        assert ident["Modality"] == "MR" and ident["NumberOfSeriesRelatedInstances"] == "2"
    elif case == "study-IMAGE":
        assert {i["SOPClassUID"] for i in idents} == {CT_IMAGE}


# -- C-GET and C-MOVE -----------------------------------------------------------------

def _retrieve_cases() -> dict[str, tuple[str, dict[str, str], dict[str, str]]]:
    """By id: (model, identifier, the stored attributes the retrieved instances match)."""
    chest, knee, head = STUDIES
    return {
        # Patient Root: a whole patient (C-MOVE) or one study of it (C-GET).
        "get-patient": ("patient", {"QueryRetrieveLevel": "STUDY", "PatientID": "STK1",
                                    "StudyInstanceUID": knee.study_uid},
                        {"StudyInstanceUID": knee.study_uid}),
        "move-patient": ("patient", {"QueryRetrieveLevel": "PATIENT", "PatientID": "STK1"},
                         {"PatientID": "STK1"}),
        # Study Root: one series (C-GET) or one study (C-MOVE).
        "get-study": ("study", {"QueryRetrieveLevel": "SERIES",
                                "StudyInstanceUID": chest.study_uid,
                                "SeriesInstanceUID": chest.series_uids[0]},
                      {"SeriesInstanceUID": chest.series_uids[0]}),
        "move-study": ("study", {"QueryRetrieveLevel": "STUDY",
                                 "StudyInstanceUID": head.study_uid},
                       {"StudyInstanceUID": head.study_uid}),
    }


def _encoded_sha256(ds: pydicom.Dataset, syntax: str) -> str:
    """SHA-256 of ``ds`` (no file meta) encoded in transfer syntax ``syntax``."""
    uid = UID(syntax)
    buffer = DicomBytesIO()
    buffer.is_little_endian = uid.is_little_endian
    buffer.is_implicit_VR = uid.is_implicit_VR
    write_dataset(buffer, ds)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.mark.parametrize("model", ["patient", "study"])
@pytest.mark.parametrize("operation", ["get", "move"])
def test_retrieve_brings_byte_identical_instances(archive, operation, model):
    case = f"{operation}-{model}"
    _, _, match = _retrieve_cases()[case]
    expected = archive.uids(**match)
    assert expected
    result = archive.results[case]
    responses = result["responses"]
    final = responses[-1]
    assert [r["Status"] for r in responses[:-1]] == [PENDING] * len(responses[:-1])
    assert final["Status"] == SUCCESS
    assert final.get("NumberOfCompletedSuboperations") == len(expected)
    assert final.get("NumberOfFailedSuboperations", 0) == 0
    assert final.get("NumberOfWarningSuboperations", 0) == 0
    # Every pending response counts every sub-operation, none done twice.
    counts = ("Remaining", "Completed", "Failed", "Warning")
    for pending in responses[:-1]:
        assert sum(pending[f"NumberOf{c}Suboperations"] for c in counts) == len(expected)
    completed = [r["NumberOfCompletedSuboperations"] for r in responses]
    assert completed == sorted(completed)
    if operation == "move":  # announced before the first store (movescu relies on it)
        assert responses[0]["NumberOfRemainingSuboperations"] == len(expected)
    instances = result["instances"]
    assert sorted(i["sop_instance"] for i in instances) == sorted(expected)
    for got in instances:
        original = archive.originals[got["sop_instance"]]
        assert got["sop_class"] == original.SOPClassUID
        assert got["pixel_sha256"] == hashlib.sha256(original.PixelData).hexdigest()
        assert got["dataset_sha256"] == _encoded_sha256(original, got["transfer_syntax"]), \
            f"{got['sop_instance']} differs from the file stored ({got['transfer_syntax']})"
    if operation == "move":
        assert set(result["store_callers"]) == {"PRINTSCP"}


# -- Print Management -----------------------------------------------------------------

PRINT_CASES = {
    # The SCP chooses the UIDs (as DCMTK lets it); the client N-GETs the Print Job.
    "12bit-scp-uids-n-get": {"bits": 12, "uids": "scp", "poll": True, "wait_events": 10},
    # The client chooses them, as pynetdicom's print example does; events only.
    "8bit-client-uids-events": {"bits": 8, "uids": "client", "poll": False,
                                "wait_events": 10},
    # Only the Meta SOP Class, as pynetdicom's example: no Print Job, so no events.
    "12bit-meta-only": {"bits": 12, "uids": "client", "poll": False, "wait_events": 0,
                        "print_job_context": False},
}


@pytest.mark.parametrize("case", list(PRINT_CASES))
def test_grayscale_print_with_print_job_events(archive, case):
    node = archive.node
    label = f"STOCK {case.upper()}"
    [result] = run_client(node.port, {"op": "print", "size": 64, "label": label,
                                      **PRINT_CASES[case]})
    steps = result["steps"]
    assert list(steps) == ["printer_n_get", "film_session_n_create", "film_box_n_create",
                           "image_box_n_set", "film_box_n_action", "film_box_n_delete",
                           "film_session_n_delete"]
    assert {name: s["Status"] for name, s in steps.items()} == dict.fromkeys(steps, SUCCESS)
    assert steps["printer_n_get"]["attributes"]["PrinterStatus"] == "NORMAL"
    # N-CREATE responses carry the new instance's UID in the command set: the one the
    # client chose, or the SCP's.
    session_uid = steps["film_session_n_create"]["affected_uid"]
    box_uid = steps["film_box_n_create"]["affected_uid"]
    assert session_uid and box_uid and session_uid != box_uid
    assert (result["film_session_uid"], result["film_box_uid"]) == (session_uid, box_uid)
    film_box = steps["film_box_n_create"]["attributes"]
    assert film_box["ImageDisplayFormat"] == "STANDARD\\1,1"
    assert film_box["ReferencedFilmSessionSequence"][0]["ReferencedSOPInstanceUID"] == \
        session_uid
    [image_box] = film_box["ReferencedImageBoxSequence"]
    assert image_box["ReferencedSOPClassUID"] == GRAYSCALE_IMAGE_BOX
    assert result["released"] is True
    # The N-ACTION reply references the Print Job (2100,0500) when the client
    # negotiated the Print Job SOP Class.
    reply = steps["film_box_n_action"]["attributes"]
    job_uid = result["print_job_uid"]
    if not PRINT_CASES[case].get("print_job_context", True):
        assert job_uid is None and not reply
    else:
        [job_ref] = reply["ReferencedPrintJobSequencePullStoredPrint"]
        assert job_ref["ReferencedSOPClassUID"] == PRINT_JOB
        assert job_uid == job_ref["ReferencedSOPInstanceUID"]

    # The Print Job's N-EVENT-REPORTs: PENDING (queued), PRINTING, DONE; none to a
    # client that did not negotiate the Print Job SOP Class.
    events = result["events"]
    if job_uid is not None:
        assert [e["event_type"] for e in events] == [1, 2, 3]
        assert {(e["sop_class"], e["sop_instance"]) for e in events} == {
            (PRINT_JOB, job_uid)}
        assert [e["info"]["ExecutionStatusInfo"] for e in events] == [
            "QUEUED", "NORMAL", "NORMAL"]
        assert events[-1]["info"]["FilmSessionLabel"] == label
    else:
        assert events == []
    if PRINT_CASES[case]["poll"]:
        polls = result["polls"]
        assert polls and all(p["Status"] == SUCCESS for p in polls)
        assert polls[-1]["attributes"]["ExecutionStatus"] == "DONE"
        assert polls[-1]["attributes"]["ExecutionStatusInfo"] == "NORMAL"
        assert {p["attributes"]["ExecutionStatus"] for p in polls} <= {
            "PENDING", "PRINTING", "DONE"}

    # The film: a PDF in the data directory, recorded DONE (for this Print Job).
    node.spool.wait_idle()
    films = node.config.data_path / "films"
    [sidecar] = [s for s in (json.loads(p.read_text()) for p in films.glob("*.json"))
                 if s["session"].get("film_session_label") == label]
    assert sidecar["status"] == "DONE" and sidecar["calling_ae"] == "STOCKSCU"
    assert job_uid is None or sidecar["print_job_uid"] == job_uid
    assert sidecar["film_count"] == 1 and sidecar["pages"] == 1
    output = Path(sidecar["output"])
    assert output.suffix == ".pdf" and output.read_bytes().startswith(b"%PDF")
