"""A third-party Python SCU: stock pynetdicom 3.0 and pydicom, nothing of printscp.

printscp patches pynetdicom's classes in its own process (event-driven reactor loops,
race workarounds), so its in-process test clients are not what a user's script is.
This script is: it never imports ``printscp`` and uses pynetdicom's public API, with one
exception, :class:`ReactorCheckpoint`: a workaround for pynetdicom 3.0's requestor race
that otherwise loses a response now and then on a busy machine (pynetdicom #875).

Usage::

    python stock_client.py JOB_JSON        # or the job on stdin

A job is ``{"host", "port", "called_ae", "calling_ae"?, "dimse_timeout"?,
"operations": [...]}`` (or one operation with ``"op"`` at the top level).  Each
operation opens its own association; the script prints ``{"pynetdicom": version,
"results": [...]}`` as JSON, one result per operation, in order.  An operation that
raises reports ``{"error": ...}`` instead of ending the others.

Operations (keys besides ``op``):

* ``echo``: C-ECHO.  Result: ``status``.
* ``store`` ``files``: C-STORE of each Part 10 file.  Result: ``statuses``.
* ``find`` ``model`` (``patient``/``study``) ``identifier`` (keyword -> value, "" for a
  return key, a list for several values): C-FIND.  Result: ``statuses`` and
  ``identifiers`` (keyword -> str or list; sequences as lists of such dicts).
* ``get`` ``model`` ``identifier`` ``sop_classes``: C-GET, the instances kept in memory.
  Result: ``responses`` (status and sub-operation counts) and ``instances``.
* ``move`` ``model`` ``identifier`` ``sop_classes`` ``destination`` (``ae_title``,
  ``port``): C-MOVE to a stock Storage SCP this script starts on 127.0.0.1:port.
  Result as for ``get``.
* ``print`` ``bits`` (8 or 12) ``size`` ``format`` ``uids`` (``client``: the client
  chooses the Film Session and Film Box UIDs, as pynetdicom's print example does;
  ``scp``: the SCP does, read from the response) ``poll`` (N-GET the Print Job until
  DONE) ``wait_events`` (seconds to wait for the DONE N-EVENT-REPORT)
  ``print_job_context`` (propose the Print Job SOP Class, default true): N-GET Printer,
  Film Session and Film Box N-CREATE, Image Box N-SET, Film Box N-ACTION, the Print
  Job's events and N-GETs, Film Box and Film Session N-DELETE, release.

Every instance received (``instances``) is reported as ``sop_class``, ``sop_instance``,
``transfer_syntax``, ``pixel_sha256`` (of the Pixel Data value) and ``dataset_sha256``
(of the data set as received on the wire, in ``transfer_syntax``).
"""

from __future__ import annotations

import sys

assert "printscp" not in sys.modules, "the stock client must not load printscp"

import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

import pydicom  # noqa: E402
import pynetdicom  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.multival import MultiValue  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402
from pynetdicom import AE, build_role, evt  # noqa: E402
from pynetdicom.sop_class import (  # noqa: E402
    BasicFilmBox,
    BasicFilmSession,
    BasicGrayscalePrintManagementMeta,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    Printer,
    PrinterInstance,
    PrintJob,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

MODELS = {
    "patient": {"find": PatientRootQueryRetrieveInformationModelFind,
                "get": PatientRootQueryRetrieveInformationModelGet,
                "move": PatientRootQueryRetrieveInformationModelMove},
    "study": {"find": StudyRootQueryRetrieveInformationModelFind,
              "get": StudyRootQueryRetrieveInformationModelGet,
              "move": StudyRootQueryRetrieveInformationModelMove},
}
META = BasicGrayscalePrintManagementMeta
#: Print Job attributes read by N-GET: Execution Status, Execution Status Info.
PRINT_JOB_STATUS = [0x21000020, 0x21000030]


class Failed(Exception):
    """An operation went wrong as a user would see it (refused, aborted...)."""


# -- helpers --------------------------------------------------------------------------

def _ae(job: dict[str, Any]) -> AE:
    ae = AE(ae_title=job.get("calling_ae", "STOCKSCU"))
    ae.acse_timeout = ae.network_timeout = 30
    ae.dimse_timeout = job.get("dimse_timeout", 30)
    return ae


def _associate(ae: AE, job: dict[str, Any], **kwargs: Any) -> Any:
    assoc = ae.associate(job["host"], job["port"], ae_title=job["called_ae"], **kwargs)
    if not assoc.is_established:
        raise Failed("association rejected, aborted or never connected")
    assoc._reactor_checkpoint = ReactorCheckpoint(assoc)
    return assoc


class ReactorCheckpoint:
    """``Association._reactor_checkpoint`` that a sender closes only once the reactor has
    stopped at it: the one thing of pynetdicom's this client replaces.

    pynetdicom 3.0.4 parks its reactor thread while a ``send_*()`` waits for the answer:
    the sender clears the checkpoint, waits for ``_is_paused`` and reads the next
    message off the DIMSE queue (``association.py`` 2800-2808 in ``send_n_delete``, the
    same in every ``send_*()`` and in ``release()``, 610-612); the reactor sets
    ``_is_paused = True``, waits at the checkpoint, sets it False and takes a message
    off the same queue (``_run_reactor``, 723-731).  Two ways let both threads read
    the queue at once, and the reactor then takes the response, logs "Received
    unexpected N-DELETE service message" and drops it (``_serve_request``, 3507-3510);
    the sender gets nothing until its DIMSE timeout and aborts (``_handle_no_response``):

    * a sender that follows another: the first one's ``set()`` wakes the reactor, but
      ``threading.Event.wait`` returns True even if the flag is cleared again before the
      woken thread runs, and until it runs ``_is_paused`` is still True.  On a busy
      machine the next ``send_*()`` goes through before it does, and a fast server's
      answer is back before the reactor reads the queue;
    * an N-EVENT-REPORT: pynetdicom serves it on a thread of its own
      (``dimse.py`` 289-298) running ``_serve_request``, which sets ``_is_paused``
      True, then False (``association.py`` 3552-3554), whatever the reactor is doing:
      a sender may go ahead while the reactor runs (the response taken, as above), or
      wait for ever for a reactor that is parked but now reads as not paused
      (pynetdicom #820; #875 is the first race).

    Here the reactor leaves the checkpoint only while it is open, marks itself paused
    again while it waits (the N-EVENT-REPORT thread may have reset that), and a
    sender's ``clear()`` returns only once the reactor is stopped, so the queue has
    one reader at a time.  Nothing on the wire changes; the reactor's own sends (a
    handler calling ``send_*()``) close it without waiting, as pynetdicom does.
    """

    TICK = 0.005

    def __init__(self, assoc: Any) -> None:
        self._assoc = assoc
        self._cond = threading.Condition()
        self._open = True
        self._parked = False  # the reactor waits in wait(), the checkpoint closed

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def clear(self) -> None:
        """Close; from any thread but the reactor's, return once the reactor has
        stopped here (or ended)."""
        with self._cond:
            self._open = False
            if threading.current_thread() is self._assoc:
                return
            while not self._parked and self._assoc.is_alive():
                self._cond.wait(self.TICK)

    def wait(self, timeout: float | None = None) -> bool:
        """The reactor's stop (``association.py`` 724, 769): left only while open."""
        with self._cond:
            while not self._open:
                if not self._parked:
                    self._parked = True
                    self._cond.notify_all()
                self._assoc._is_paused = True
                self._cond.wait(self.TICK)
            self._parked = False
        return True


def _value(value: Any) -> Any:
    if isinstance(value, Sequence):
        return [_plain(item) for item in value]
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return "" if value is None else str(value)


def _plain(ds: Dataset | None) -> dict[str, Any] | None:
    """``ds`` as keyword -> value (str, list of str, or list of dicts)."""
    if ds is None:
        return None
    return {elem.keyword or str(elem.tag): _value(elem.value) for elem in ds}


def _identifier(keys: dict[str, Any]) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def _status(st: Dataset) -> dict[str, Any]:
    """A response's status elements (empty: no valid response)."""
    out: dict[str, Any] = {}
    for elem in st:
        out[elem.keyword] = int(elem.value) if isinstance(elem.value, int) else str(elem.value)
    return out


def _received(event: Any) -> dict[str, Any]:
    """What a C-STORE sub-operation brought: identity and hashes."""
    raw = event.request.DataSet.getvalue()
    ds = event.dataset
    pixels = ds.get("PixelData")
    return {
        "sop_class": str(event.request.AffectedSOPClassUID),
        "sop_instance": str(event.request.AffectedSOPInstanceUID),
        "transfer_syntax": str(event.context.transfer_syntax),
        "dataset_sha256": hashlib.sha256(raw).hexdigest(),
        "pixel_sha256": hashlib.sha256(pixels).hexdigest() if pixels is not None else None,
        "study_uid": str(ds.get("StudyInstanceUID", "")),
    }


# -- operations -----------------------------------------------------------------------

def echo(job: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    ae = _ae(job)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, job)
    try:
        return {"status": _status(assoc.send_c_echo())}
    finally:
        assoc.release()


def store(job: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    datasets = [pydicom.dcmread(f) for f in op["files"]]
    ae = _ae(job)
    for sop_class, syntax in sorted({(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID))
                                     for d in datasets}):
        ae.add_requested_context(sop_class, syntax)
    assoc = _associate(ae, job)
    try:
        return {"statuses": [_status(assoc.send_c_store(ds)) for ds in datasets]}
    finally:
        assoc.release()


def find(job: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    model = MODELS[op["model"]]["find"]
    ae = _ae(job)
    ae.add_requested_context(model)
    assoc = _associate(ae, job)
    statuses, identifiers = [], []
    try:
        for st, ident in assoc.send_c_find(_identifier(op["identifier"]), model):
            statuses.append(_status(st))
            if st and st.Status in (0xFF00, 0xFF01):
                identifiers.append(_plain(ident))
    finally:
        assoc.release()
    return {"statuses": statuses, "identifiers": identifiers}


def _responses(pairs: Any) -> list[dict[str, Any]]:
    return [{**_status(st), "identifier": _plain(ident)} for st, ident in pairs]


def get(job: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    model = MODELS[op["model"]]["get"]
    received: list[dict[str, Any]] = []

    def on_store(event: Any) -> int:
        received.append(_received(event))
        return 0x0000

    ae = _ae(job)
    ae.add_requested_context(model)
    roles = []
    for sop_class in op["sop_classes"]:
        ae.add_requested_context(sop_class)
        roles.append(build_role(sop_class, scp_role=True))
    assoc = _associate(ae, job, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        responses = _responses(assoc.send_c_get(_identifier(op["identifier"]), model))
    finally:
        assoc.release()
    return {"responses": responses, "instances": received}


def move(job: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    model = MODELS[op["model"]]["move"]
    dest = op["destination"]
    received: list[dict[str, Any]] = []
    associations: list[str] = []

    def on_store(event: Any) -> int:
        received.append(_received(event))
        return 0x0000

    def on_open(event: Any) -> None:
        associations.append(str(event.assoc.requestor.ae_title))

    scp = AE(ae_title=dest["ae_title"])
    for sop_class in op["sop_classes"]:
        scp.add_supported_context(sop_class)
    server = scp.start_server(("127.0.0.1", dest["port"]), block=False,
                              evt_handlers=[(evt.EVT_C_STORE, on_store),
                                            (evt.EVT_ACCEPTED, on_open)])
    try:
        ae = _ae(job)
        ae.add_requested_context(model)
        assoc = _associate(ae, job)
        try:
            responses = _responses(assoc.send_c_move(_identifier(op["identifier"]),
                                                     dest["ae_title"], model))
        finally:
            assoc.release()
    finally:
        server.shutdown()
    return {"responses": responses, "instances": received, "store_callers": associations}


def _image(bits: int, size: int) -> Dataset:
    """An Image Box N-SET attribute list: a horizontal wedge of ``bits`` bits."""
    top = (1 << bits) - 1
    row = [round(i * top / (size - 1)) for i in range(size)]
    item = Dataset()
    item.SamplesPerPixel = 1
    item.PhotometricInterpretation = "MONOCHROME2"
    item.Rows = item.Columns = size
    item.BitsAllocated = 8 if bits == 8 else 16
    item.BitsStored = bits
    item.HighBit = bits - 1
    item.PixelRepresentation = 0
    if bits == 8:
        item.PixelData = bytes(row) * size
    else:
        item.PixelData = b"".join(v.to_bytes(2, "little") for v in row) * size
    ds = Dataset()
    ds.ImageBoxPosition = 1
    ds.BasicGrayscaleImageSequence = Sequence([item])
    return ds


def _reference(sop_class: str, sop_instance: str) -> Sequence:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return Sequence([item])


def print_film(job: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    done = threading.Event()
    # The command sets received: pynetdicom's send_n_create does not return the
    # response's Affected SOP Instance UID, a client that lets the SCP choose the UIDs
    # reads it here (public EVT_DIMSE_RECV).
    commands: list[Dataset] = []

    def on_event(event: Any) -> tuple[int, None]:
        info = event.event_information
        events.append({
            "event_type": int(event.request.EventTypeID),
            "sop_class": str(event.request.AffectedSOPClassUID),
            "sop_instance": str(event.request.AffectedSOPInstanceUID),
            "info": _plain(info),
        })
        if event.request.EventTypeID in (3, 4):  # DONE, FAILURE
            done.set()
        return 0x0000, None

    def on_recv(event: Any) -> None:
        command = event.message.command_set
        if "MessageIDBeingRespondedTo" in command:
            commands.append(command)  # responses to our requests only

    ae = _ae(job)
    ae.add_requested_context(META)
    if op.get("print_job_context", True):
        ae.add_requested_context(PrintJob)
    assoc = _associate(ae, job, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_event),
                                              (evt.EVT_DIMSE_RECV, on_recv)])
    out: dict[str, Any] = {"steps": {}, "events": events, "polls": []}
    steps = out["steps"]

    def step(name: str, st: Dataset, ds: Dataset | None = None) -> None:
        """Record a request's outcome (and the UID its response's command names)."""
        uid = str(commands[-1].get("AffectedSOPInstanceUID", "")) if commands else ""
        commands.clear()
        steps[name] = {**_status(st), "attributes": _plain(ds), "affected_uid": uid}
        if not st or not (st.Status == 0x0000 or 0xB000 <= st.Status <= 0xBFFF):
            raise Failed(f"{name}: status {_status(st)}")

    def created_uid(name: str, ours: str | None) -> str:
        """The new instance's UID: ours, or the one the N-CREATE response gave."""
        uid = ours or steps[name]["affected_uid"]
        if not uid:
            raise Failed(f"{name}: no Affected SOP Instance UID in the N-CREATE response")
        return uid

    try:
        st, ds = assoc.send_n_get([0x21100010, 0x21100020], Printer, PrinterInstance,
                                  meta_uid=META)
        step("printer_n_get", st, ds)

        session = Dataset()
        session.NumberOfCopies = 1
        session.FilmSessionLabel = op.get("label", "STOCK PYNETDICOM")
        ours = generate_uid() if op.get("uids") == "client" else None
        st, ds = assoc.send_n_create(session, BasicFilmSession, ours, meta_uid=META)
        step("film_session_n_create", st, ds)
        session_uid = out["film_session_uid"] = created_uid("film_session_n_create", ours)

        box = Dataset()
        box.ImageDisplayFormat = op.get("format", "STANDARD\\1,1")
        box.FilmOrientation = "PORTRAIT"
        box.FilmSizeID = op.get("film_size", "8INX10IN")
        box.ReferencedFilmSessionSequence = _reference(BasicFilmSession, session_uid)
        ours = generate_uid() if op.get("uids") == "client" else None
        st, film_box = assoc.send_n_create(box, BasicFilmBox, ours, meta_uid=META)
        step("film_box_n_create", st, film_box)
        box_uid = out["film_box_uid"] = created_uid("film_box_n_create", ours)

        image_box = film_box.ReferencedImageBoxSequence[0]
        st, ds = assoc.send_n_set(_image(op.get("bits", 12), op.get("size", 64)),
                                  image_box.ReferencedSOPClassUID,
                                  image_box.ReferencedSOPInstanceUID, meta_uid=META)
        step("image_box_n_set", st, ds)

        st, reply = assoc.send_n_action(None, 1, BasicFilmBox, box_uid, meta_uid=META)
        step("film_box_n_action", st, reply)
        # (2100,0500) Referenced Print Job Sequence, which pydicom's dictionary names
        # ReferencedPrintJobSequencePullStoredPrint.
        job_uid = None
        if reply is not None and 0x21000500 in reply:
            job_uid = str(reply[0x21000500].value[0].ReferencedSOPInstanceUID)
        out["print_job_uid"] = job_uid

        deadline = time.monotonic() + op.get("poll_timeout", 15)
        while op.get("poll") and job_uid and time.monotonic() < deadline:
            st, ds = assoc.send_n_get(PRINT_JOB_STATUS, PrintJob, job_uid)
            out["polls"].append({**_status(st), "attributes": _plain(ds)})
            if not st or st.Status != 0 or ds is None or ds.ExecutionStatus in ("DONE",
                                                                                 "FAILURE"):
                break
            time.sleep(0.05)
        done.wait(op.get("wait_events", 0))

        st = assoc.send_n_delete(BasicFilmBox, box_uid, meta_uid=META)
        step("film_box_n_delete", st)
        st = assoc.send_n_delete(BasicFilmSession, session_uid, meta_uid=META)
        step("film_session_n_delete", st)
    finally:
        if assoc.is_established:
            assoc.release()
        out["released"] = assoc.is_released
    return out


OPERATIONS = {"echo": echo, "store": store, "find": find, "get": get, "move": move,
              "print": print_film}


def run(job: dict[str, Any]) -> dict[str, Any]:
    operations = job.get("operations") or [job]
    results = []
    for op in operations:
        started = time.monotonic()
        try:
            result = OPERATIONS[op["op"]](job, op)
        except Exception as exc:  # reported, so the other operations still run
            result = {"error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()}
        result["op"] = op["op"]
        result["seconds"] = round(time.monotonic() - started, 3)
        results.append(result)
    return {"pynetdicom": pynetdicom.__version__,
            "patched": "printscp" in sys.modules, "results": results}


def main(argv: list[str]) -> int:
    # pynetdicom's warnings and errors ("Received unexpected ... service message", "DIMSE
    # timeout reached") on stderr, which the tests show when an operation fails.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(threadName)s %(name)s %(levelname)s "
                               "%(message)s")
    job = json.loads(argv[1] if len(argv) > 1 else sys.stdin.read())
    json.dump(run(job), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
