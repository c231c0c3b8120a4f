"""STOW-RS (PS3.18 10.5): ``POST /studies`` and ``POST /studies/{study}``.

The request is ``multipart/related; type="application/dicom"``, each part one Part 10
file.  Each is stored through :meth:`printscp.archive.archive.Archive.receive`, the call
a C-STORE makes, so the checks, the durability (the file fsynced and indexed before the
response) and the status of each instance are those of a C-STORE; a status other than
Success becomes the Failure Reason (0008,1197) of the instance in the Failed SOP
Sequence (0008,1198), a Warning status its Warning Reason (0008,1196).

The body is read as a stream: one part is held while it is read and at most one more
while the previous is stored (a thread stores part N while part N+1 arrives), never the
whole request.  A part larger than ``[limits] max_dataset_mb`` is read through without
being kept and fails with 0xA700 (Refused: Out of Resources), as the DIMSE side
answers a C-STORE over the limit.

HTTP status (PS3.18 Table 10.5.3-1): 200 every instance stored, 202 some stored (others
failed or carry warnings), 409 none stored, 400 a body that is not a multipart of the
announced boundary, 415 a media type other than ``multipart/related`` of
``application/dicom`` parts (the JSON/XML metadata + bulk data form is not supported),
406 an Accept header that excludes ``application/dicom+json``.

Auth and audit are the console's and the C-STORE's: storing needs an admin (a route
that acts), and the instances one request stored are audited as the DIMSE side audits
an association's: one DICOM Instances Transferred line per study (PS3.15 A.5.3.5), the
user as the source.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import struct
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from printscp.archive import part10
from printscp.archive.archive import Archive, Outcome
from printscp.core import audit
from printscp.core.limits import DataSetLimits
from printscp.core.status import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, SUCCESS
from printscp.http.auth import User, admin
from printscp.http.errors import ApiError

LOGGER = logging.getLogger("printscp.dicomweb")

router = APIRouter(tags=["dicomweb"])

#: The response's media type (PS3.18 10.5.3; XML is not offered).
DICOM_JSON = "application/dicom+json"
#: The only part media type accepted (PS3.18 10.5.1.2: the binary form).
DICOM = "application/dicom"
#: 0xA900: what a data set gets whose Study Instance UID is not the target study's
#: (PS3.18 10.5.2: the instances must belong to the study in the URL; the C-STORE
#: status for a data set not matching what the request says).
STUDY_MISMATCH = 0xA900
#: Room for the preamble, File Meta Information and part headers beyond the data set's
#: own limit (max_dataset_mb measures the data set).
PART_OVERHEAD = 64 << 10
#: Parts of one request being stored at once, and the most bytes they may hold (one
#: part larger than that is stored alone).
PIPELINE = 4
PIPELINE_BYTES = 64 << 20

_RETRIEVE_URL, _REFERENCED, _FAILED = "00081190", "00081199", "00081198"
_SOP_CLASS, _SOP_INSTANCE = "00081150", "00081155"
_WARNING, _FAILURE = "00081196", "00081197"


class BadRequest(Exception):
    """The body is not the multipart it says it is: 400."""


@dataclass
class Part:
    """One body part: its bytes (None when it was over the limit and not kept)."""

    data: bytes | None
    size: int
    content_type: str = ""
    sha256: str | None = None  #: of ``data``, taken while it was read


@dataclass
class Stored:
    """What became of one part."""

    sop_class: str
    sop_instance: str
    outcome: Outcome
    series: str = ""


def content_type_params(value: str) -> tuple[str, dict[str, str]]:
    """``multipart/related; type="application/dicom"; boundary=x`` as
    ``("multipart/related", {"type": "application/dicom", "boundary": "x"})``: names
    lower-cased, quotes removed (RFC 9110 8.3.1; a quoted boundary may hold ``;``)."""
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            i += 1
            params[name] = "".join(out)
        else:
            end = rest.find(";", i)
            end = n if end < 0 else end
            params[name] = rest[i:end].strip()
            i = end
    return media.strip().lower(), params


async def parts(stream: AsyncIterator[bytes], boundary: str, limit: int
                ) -> AsyncIterator[Part]:
    """The parts of a multipart body read from ``stream`` (RFC 2046 5.1.1), one at a
    time; a part longer than ``limit`` bytes is read through but not kept."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    buffer = bytearray(b"\r\n")  # the first delimiter may open the body
    chunks = stream.__aiter__()
    ended = False

    async def more() -> bool:
        nonlocal ended
        if ended:
            return False
        try:
            buffer.extend(await chunks.__anext__())
        except StopAsyncIteration:
            ended = True
            return False
        return True

    # The preamble, up to the first delimiter.
    while (at := buffer.find(delimiter)) < 0:
        del buffer[:max(0, len(buffer) - len(delimiter))]
        if not await more():
            raise BadRequest(f"no part opens with the boundary {boundary!r}")
    del buffer[:at + len(delimiter)]
    while True:
        # After a delimiter: "--" closes the body, else padding to the end of the line.
        while len(buffer) < 2 and await more():
            pass
        if buffer[:2] == b"--":
            return
        while (eol := buffer.find(b"\r\n")) < 0:
            if not await more():
                raise BadRequest("the body ends inside a boundary line")
        del buffer[:eol + 2]
        while (end := buffer.find(b"\r\n\r\n")) < 0 and not buffer.startswith(b"\r\n"):
            if len(buffer) > 16 << 10:
                raise BadRequest("a part's headers are over 16 KiB")
            if not await more():
                raise BadRequest("the body ends inside a part's headers")
        if buffer.startswith(b"\r\n"):
            headers, end = b"", -2
        else:
            headers = bytes(buffer[:end])
        del buffer[:end + 4]
        content_type = ""
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-type":
                content_type = value.strip().decode("latin-1")
        # The body of the part: up to the next delimiter, hashed as it comes (as the
        # DIMSE side hashes a C-STORE's PDVs), so storing it need not read it again.
        size, kept, hasher = 0, [], hashlib.sha256()
        while (at := buffer.find(delimiter)) < 0:
            safe = max(0, len(buffer) - len(delimiter) + 1)
            size += safe
            if size <= limit:
                piece = bytes(buffer[:safe])
                kept.append(piece)
                hasher.update(piece)
            else:
                kept.clear()
            del buffer[:safe]
            if not await more():
                raise BadRequest("the body ends inside a part (no closing boundary)")
        size += at
        data: bytes | None = None
        if size <= limit:
            piece = bytes(buffer[:at])
            kept.append(piece)
            hasher.update(piece)
            data = b"".join(kept)
        del buffer[:at + len(delimiter)]
        yield Part(data, size, content_type, hasher.hexdigest() if data is not None else None)


def meta_uids(data: bytes) -> tuple[str, str] | None:
    """Media Storage SOP Class and Instance UIDs (0002,0002), (0002,0003) of a Part 10
    file, read from its File Meta Information alone; None if it is not Part 10."""
    if len(data) < 144 or data[128:132] != b"DICM" or data[132:138] != b"\x02\x00\x00\x00UL":
        return None
    end = 144 + struct.unpack_from("<L", data, 140)[0]
    pos, found = 144, {}
    try:
        while pos + 8 <= min(end, len(data)):
            group, element, vr = struct.unpack_from("<HH2s", data, pos)
            if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
                length, header = struct.unpack_from("<L", data, pos + 8)[0], 12
            else:
                length, header = struct.unpack_from("<H", data, pos + 6)[0], 8
            if group == 2 and element in (2, 3):
                found[element] = data[pos + header:pos + header + length].rstrip(
                    b"\0 ").decode("ascii", "replace")
            pos += header + length
    except struct.error:
        return None
    if 2 not in found or 3 not in found:
        return None
    return found[2], found[3]


def with_preamble(data: bytes) -> bytes:
    """``data`` as a Part 10 file: a part that starts with its File Meta Information
    (group 0002, explicit VR little endian) but lacks the 128-byte preamble, ``DICM``
    or the group length (0002,0000) gets them: pydicom's ``dcmwrite`` writes a data set
    that was never read from a file so, and dicomweb-client sends what it writes.
    Stored as the file it means to be; anything else is left as it is."""
    if data[128:132] == b"DICM" or data[:2] != b"\x02\x00":
        return data
    pos = 0
    try:
        while pos + 8 <= len(data) and data[pos:pos + 2] == b"\x02\x00":
            element, vr = struct.unpack_from("<H2s", data, pos + 2)
            if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
                length, header = struct.unpack_from("<L", data, pos + 8)[0], 12
            else:
                length, header = struct.unpack_from("<H", data, pos + 6)[0], 8
            if element == 0:  # a group length there already: only the preamble lacks
                return bytes(128) + b"DICM" + data
            pos += header + length
    except struct.error:
        return data
    if pos > len(data):
        return data
    group_length = b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<L", pos)
    return bytes(128) + b"DICM" + group_length + data


def stow_archive(request: Request) -> Archive:
    """The archive as the console opens it, with the node's ``[limits]`` (those of a
    C-STORE: data set size, declared pixel size, sequence nesting); 503 when the
    archive is off."""
    state = request.app.state
    found = getattr(state, "printscp_stow_archive", None)
    if found is not None:
        return found
    console = state.console
    archive = console.archive
    if archive is None:
        raise ApiError(503, "the archive is not enabled ([archive] enabled = false)")
    limits = console.config.limits
    archive = copy.copy(archive)  # shares its files and index; only the limits differ
    archive.limits = DataSetLimits(max_bytes=limits.max_dataset_mb << 20,
                                   max_pixel_bytes=limits.max_pixel_mb << 20,
                                   max_depth=limits.max_sequence_depth)
    state.printscp_stow_archive = archive
    return archive


def _store_one(archive: Archive, part: Part, study: str | None, source: str) -> Stored:
    """Store one part as a C-STORE would (runs on a worker thread)."""
    if part.data is None:
        max_mb = archive.limits.max_bytes >> 20
        return Stored("", "", Outcome(OUT_OF_RESOURCES,
                                      f"part of {part.size} bytes over the {max_mb} MiB "
                                      "accepted"))
    data = with_preamble(part.data)
    uids = meta_uids(data)
    if uids is None:
        return Stored("", "", Outcome(CANNOT_UNDERSTAND,
                                      "not a DICOM Part 10 file (no File Meta Information)"))
    sop_class, sop_instance = uids
    if study is not None:
        try:
            found = str(part10.uid_value(part10.read(data, 1024), 0x0020000D) or "")
        except Exception as exc:
            return Stored(sop_class, sop_instance, Outcome(
                CANNOT_UNDERSTAND, f"cannot decode the data set: {exc}"[:64]))
        if found != study:
            return Stored(sop_class, sop_instance, Outcome(
                STUDY_MISMATCH, f"StudyInstanceUID {found or '(missing)'} is not the URL's",
                offending=(0x0020000D,)))
    outcome = archive.receive(data, sop_class, sop_instance, source,
                              sha256=part.sha256 if data is part.data else None)
    series = ""
    if outcome.status == SUCCESS:
        record = archive.index.instance(sop_instance)
        series = record.series_uid if record is not None else ""
    return Stored(sop_class, sop_instance, outcome, series)


class _Request:
    """The key the audit trail counts one STOW-RS request's instances under (as it
    counts an association's)."""


def _accepts_json(accept: str) -> bool:
    if not accept.strip():
        return True
    for item in accept.split(","):
        media = item.partition(";")[0].strip().lower()
        if media in (DICOM_JSON, "application/json", "*/*", "application/*"):
            return True
    return False


def _element(vr: str, value: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


def _base(request: Request) -> str:
    """The DICOMweb service's URL (this router's mount point) as the client reached it."""
    path = request.url.path
    root = path[:path.rfind("/studies")]
    return str(request.url.replace(path=root, query=None, fragment=None)).rstrip("/")


async def _stow(request: Request, user: User, study: str | None) -> Response:
    if not _accepts_json(request.headers.get("accept", "")):
        raise ApiError(406, f"STOW-RS answers in {DICOM_JSON} only")
    media, params = content_type_params(request.headers.get("content-type", ""))
    part_type = params.get("type", DICOM).strip().lower()
    if media != "multipart/related" or part_type != DICOM:
        raise ApiError(415, 'STOW-RS takes multipart/related; type="application/dicom" '
                       f"(each part a DICOM file), not {request.headers.get('content-type')!r}")
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise ApiError(400, "the multipart/related media type has no boundary parameter")
    archive = stow_archive(request)
    source = user.name
    results: list[asyncio.Future[Stored]] = []
    pending: deque[tuple[asyncio.Future[Stored], int]] = deque()
    held = 0  # bytes of the parts being stored
    limit = (archive.limits.max_bytes + PART_OVERHEAD) if archive.limits.max_bytes else 1 << 62
    try:
        async for part in parts(request.stream(), boundary, limit):
            # Stored by worker threads while the next parts arrive: their fsyncs overlap
            # (as those of parallel associations do), within a memory budget.
            while pending and (len(pending) >= PIPELINE or held + part.size > PIPELINE_BYTES):
                done, size = pending.popleft()
                await done
                held -= size
            if part.content_type and content_type_params(part.content_type)[0] != DICOM:
                refused = asyncio.get_running_loop().create_future()
                refused.set_result(Stored("", "", Outcome(
                    CANNOT_UNDERSTAND, f"a part of type {part.content_type!r}, not {DICOM}")))
                results.append(refused)
                continue
            task = asyncio.ensure_future(run_in_threadpool(
                _store_one, archive, part, study, source))
            results.append(task)
            pending.append((task, part.size))
            held += part.size
    except BadRequest as exc:
        await asyncio.gather(*results, return_exceptions=True)
        if not any(_outcome_of(r).outcome.status == SUCCESS for r in results):
            raise ApiError(400, str(exc)) from None
        LOGGER.warning("STOW-RS from %s: %s (after %d parts)", source, exc, len(results))
    finally:  # even for a client gone mid-body: what was stored is audited
        await asyncio.gather(*results, return_exceptions=True)
        stored = [_outcome_of(r) for r in results]
        _audit(request, user, stored)
    return _response(request, stored, study)


def _outcome_of(task: asyncio.Future[Stored]) -> Stored:
    """What a store task gave; an unexpected error is the C-STORE handler's 0xC211
    (logged, as the DIMSE side logs it)."""
    if not task.cancelled() and task.exception() is None:
        return task.result()
    error = None if task.cancelled() else task.exception()
    LOGGER.error("STOW-RS: unexpected error storing a part", exc_info=error)
    return Stored("", "", Outcome(0xC211, "unexpected error"))


def _audit(request: Request, user: User, results: list[Stored]) -> None:
    """One DICOM Instances Transferred line per study, as for an association."""
    if not audit.enabled():
        return
    key = _Request()
    for r in results:
        o = r.outcome
        audit.received(key, o.patient, o.study, r.sop_class,
                       o.result.value if o.result is not None else "refused", o.comment)
    host = request.client.host if request.client else ""
    audit.emit_lines(audit.transfers(key, ae=user.name, host=host), wait=False)


def _response(request: Request, results: list[Stored], study: str | None) -> Response:
    base = _base(request)
    referenced, failed, studies = [], [], set()
    warned = False
    for r in results:
        item: dict[str, Any] = {}
        if r.sop_class:
            item[_SOP_CLASS] = _element("UI", r.sop_class)
        if r.sop_instance:
            item[_SOP_INSTANCE] = _element("UI", r.sop_instance)
        status = r.outcome.status
        if status == SUCCESS or 0xB000 <= status <= 0xBFFF or status == 0x0107:
            studies.add(r.outcome.study)
            item[_RETRIEVE_URL] = _element(
                "UR", f"{base}/studies/{r.outcome.study}/series/{r.series}"
                      f"/instances/{r.sop_instance}")
            if status != SUCCESS:
                item[_WARNING] = _element("US", status)
                warned = True
            referenced.append(dict(sorted(item.items())))
        else:
            item[_FAILURE] = _element("US", status)
            failed.append(dict(sorted(item.items())))
            LOGGER.warning("STOW-RS %s refused (0x%04X): %s", r.sop_instance or "(part)",
                           status, r.outcome.comment)
    body: dict[str, Any] = {}
    target = study or (next(iter(studies)) if len(studies) == 1 else None)
    if target:
        body[_RETRIEVE_URL] = _element("UR", f"{base}/studies/{target}")
    if failed:
        body[_FAILED] = {"vr": "SQ", "Value": failed}
    if referenced:
        body[_REFERENCED] = {"vr": "SQ", "Value": referenced}
    if not results:
        raise ApiError(400, "the request holds no part")
    code = 409 if not referenced else 202 if (failed or warned) else 200
    return JSONResponse(dict(sorted(body.items())), status_code=code, media_type=DICOM_JSON)


Admin = Annotated[User, Depends(admin)]


@router.post("/studies", summary="STOW-RS: store instances (PS3.18 10.5)",
             responses={200: {"content": {DICOM_JSON: {}}}})
async def store_instances(request: Request, user: Admin) -> Response:
    return await _stow(request, user, None)


@router.post("/studies/{study}", summary="STOW-RS: store instances of one study",
             responses={200: {"content": {DICOM_JSON: {}}}})
async def store_study_instances(request: Request, study: str, user: Admin) -> Response:
    return await _stow(request, user, study)
