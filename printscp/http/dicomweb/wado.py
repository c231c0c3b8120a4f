"""WADO-RS (PS3.18 10.4): studies, series and instances, their metadata, bulk data
and frames, from the archive.

- **Instances** go out as ``multipart/related; type="application/dicom"``, each part the
  stored file byte for byte in its stored Transfer Syntax (named by the part's
  ``transfer-syntax`` parameter).  An Accept naming a Transfer Syntax other than the
  stored one (and not ``*``) gets 406: the node does not transcode, but for Implicit VR
  Little Endian files asked for in Explicit VR Little Endian (the header re-encoded).
- **Metadata** is DICOM JSON (PS3.18 F.2) of every attribute but the File Meta group;
  Pixel Data and binary values longer than :data:`BULK_THRESHOLD` bytes are given as a
  BulkDataURI (``.../bulkdata/{tag}``) instead of their value.
- **Frames** of native pixel data are ``application/octet-stream`` (Explicit VR Little
  Endian byte order); of an encapsulated Transfer Syntax, the stored compressed frame
  with its media type (``image/jpeg``, ``image/jls``, ``image/jp2``...), or decompressed
  to ``application/octet-stream`` when that is asked for and pydicom can decode it; else
  406.

Each retrieval is audited as the DIMSE side audits a C-GET: Begin Transferring DICOM
Instances (PS3.15 A.5.3.3), one line per study, word ``dicomweb.wado``.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.tag import BaseTag

from printscp.archive.archive import BIG_ENDIAN
from printscp.archive.index import InstanceRecord, Level
from printscp.core import audit
from printscp.core.audit import AuditEvent, EventActionCode, Outcome, RoleIDCode
from printscp.http.api.archive import archive_of
from printscp.http.dicomweb import multipart as mp
from printscp.http.dicomweb.qido import base_url, parse_tag, who
from printscp.http.errors import ApiError

router = APIRouter()

#: Bytes read at a time from a file being sent.
CHUNK = 1 << 20
#: Binary values longer than this are bulk data in metadata (a BulkDataURI).
BULK_THRESHOLD = 1024
BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
PIXEL_DATA = BaseTag(0x7FE00010)


# -- finding instances -------------------------------------------------------------
def records_for(request: Request, study: str, series: str | None = None,
                instance: str | None = None) -> list[InstanceRecord]:
    """The archive's instances under the resource the path names; 404 when none."""
    archive = archive_of(request)
    identifier = Dataset()
    identifier.StudyInstanceUID = study
    level = Level.STUDY
    if series is not None:
        identifier.SeriesInstanceUID = series
        level = Level.SERIES
    if instance is not None:
        identifier.SOPInstanceUID = instance
        level = Level.IMAGE
    records = archive.index.instances_for(level, identifier)
    if not records:
        what = ("instance " + instance if instance else "series " + series if series
                else "study " + study)
        raise ApiError(404, f"no {what} in the archive")
    return records


def instance_file(request: Request, study: str, series: str, instance: str
                  ) -> tuple[InstanceRecord, Path]:
    """The record and file of one instance; 404 when unknown or its file is missing."""
    [record] = records_for(request, study, series, instance)
    path = archive_of(request).path_of(record)
    if not path.exists():
        raise ApiError(404, f"the file of instance {instance} is missing (run printscp "
                       "archive verify)")
    return record, path


def read_instance(path: Path, *, pixels: bool = True) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except Exception as exc:
        raise ApiError(500, f"cannot read {path.name}: {exc}") from None


# -- audit -------------------------------------------------------------------------
def audit_retrieve(request: Request, records: list[InstanceRecord], what: str) -> None:
    """Begin Transferring DICOM Instances, one line per study, as C-GET writes it (the
    requestor is the destination)."""
    if not audit.enabled():
        return
    user, host = who(request)
    by_study: dict[str, dict[str, int]] = {}
    for record in records:
        classes = by_study.setdefault(record.study_uid, {})
        classes[record.sop_class_uid] = classes.get(record.sop_class_uid, 0) + 1

    def lines() -> list[dict[str, Any]]:
        return [audit.build(
            AuditEvent.BEGIN_TRANSFERRING, Outcome.SUCCESS, action=EventActionCode.EXECUTE,
            user=user, host=host, role=RoleIDCode.DESTINATION, local_role=RoleIDCode.SOURCE,
            objects=[audit.study_object(study, ParticipantObjectDescription=[
                {"SOPClass": uid, "NumberOfInstances": n} for uid, n in sorted(c.items())])],
            target=study, word="dicomweb.wado", resource=what,
            instances=sum(c.values())) for study, c in by_study.items()]

    audit.later(lines)


# -- instances ---------------------------------------------------------------------
#: Transfer Syntaxes the node re-encodes a stored file from, and to: Implicit VR Little
#: Endian (what storescu and many modalities send) to Explicit VR Little Endian (the
#: default of application/dicom, PS3.18 Table 8.7.3-2) changes the encoding of the
#: header only, never the pixel data.  Nothing else is transcoded.
TRANSCODABLE = {(mp.IMPLICIT_LE, mp.EXPLICIT_LE)}


def _given_syntax(r: mp.MediaRange, stored: str) -> str | None:
    """The Transfer Syntax range ``r`` gets a file stored in ``stored`` in, or None."""
    if r.takes_syntax(stored):
        return stored
    wanted = r.transfer_syntax
    return wanted if (stored, wanted) in TRANSCODABLE else None


def _dicom_syntaxes(ranges: list[mp.MediaRange], records: list[InstanceRecord],
                    header: str | None) -> list[str]:
    """The Transfer Syntax each record goes out in: the first acceptable range that
    takes every one of them (as stored or re-encoded); 406 when none does."""
    for r in ranges:
        dicom = r.media_type in ("*/*", "multipart/*") or (
            r.media_type == mp.MULTIPART_RELATED
            and r.related_type in (None, mp.DICOM, "*/*", "application/*"))
        if not dicom:
            continue
        given = [_given_syntax(r, record.transfer_syntax) for record in records]
        if all(given):
            return given  # type: ignore[return-value]
    raise mp.not_acceptable(
        'multipart/related; type="application/dicom" in the stored Transfer Syntax ('
        + ", ".join(sorted({r.transfer_syntax for r in records})) + ")", header)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _reencoded(path: Path, syntax: str) -> Iterator[bytes]:
    """The file at ``path`` written again in ``syntax`` (see :data:`TRANSCODABLE`)."""
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    yield out.getvalue()


def _retrieve(request: Request, records: list[InstanceRecord], what: str
              ) -> StreamingResponse:
    header = request.headers.get("accept")
    syntaxes = _dicom_syntaxes(mp.parse_accept(header), records, header)
    archive = archive_of(request)
    paths = [archive.path_of(r) for r in records]
    sizes = []
    for record, path in zip(records, paths, strict=True):
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            raise ApiError(404, f"the file of instance {record.sop_uid} is missing (run "
                           "printscp archive verify)") from None
    audit_retrieve(request, records, what)
    boundary = mp.new_boundary()
    base = base_url(request)
    headers = [mp.part_header(f"{mp.DICOM}; transfer-syntax={ts}",
                              Content_Location=f"{base}/studies/{r.study_uid}"
                              f"/series/{r.series_uid}/instances/{r.sop_uid}")
               for r, ts in zip(records, syntaxes, strict=True)]
    media_type = mp.related_content_type(mp.DICOM, boundary)
    if all(ts == r.transfer_syntax for r, ts in zip(records, syntaxes, strict=True)):
        return _stored_files(headers, paths, sizes, boundary, media_type)
    parts = ((header, _file_chunks(p) if ts == r.transfer_syntax else _reencoded(p, ts))
             for header, r, p, ts in zip(headers, records, paths, syntaxes, strict=True))
    return StreamingResponse(mp.related(parts, boundary), media_type=media_type)


def _stored_files(headers: list[bytes], paths: list[Path], sizes: list[int], boundary: str,
                  media_type: str) -> StreamingResponse:
    """The files as stored, each read whole on a worker thread while the previous one is
    being sent, with a Content-Length so that the server writes the parts as they are
    instead of framing them as chunks.  Each file goes out as the ``bytes`` it was read
    into: the HTTP layer's join of a single ``bytes`` is that object, where a memoryview
    or a concatenation with the part header would be copied.  A 100-instance CT study
    (512x512, 1,000 instances stored) went from 799 to 972 instances/s, 0.70 to 0.90 of
    Orthanc's DICOMweb plugin in the same run (a synchronous generator had four thread
    hand-offs and two copies of every file)."""
    sep = f"--{boundary}\r\n".encode("ascii")
    closing = f"\r\n--{boundary}--\r\n".encode("ascii") if paths else \
        f"--{boundary}--\r\n".encode("ascii")
    heads = [(b"\r\n" if i else b"") + sep + h for i, h in enumerate(headers)]
    total = sum(map(len, heads)) + sum(sizes) + len(closing)

    def read(i: int) -> bytes:
        with open(paths[i], "rb", buffering=0) as f:
            data = f.read()
        if len(data) != sizes[i]:
            raise OSError(f"{paths[i]} changed size while the response was sent")
        return data

    async def body() -> Any:
        loop = asyncio.get_running_loop()
        pending = loop.run_in_executor(None, read, 0) if paths else None
        for i in range(len(paths)):
            assert pending is not None
            data = await pending
            pending = loop.run_in_executor(None, read, i + 1) if i + 1 < len(paths) else None
            yield heads[i]
            yield data
        yield closing

    return StreamingResponse(body(), media_type=media_type,
                             headers={"Content-Length": str(total)})


_MULTIPART = {200: {"content": {'multipart/related; type="application/dicom"': {}}},
              406: {"description": "the stored Transfer Syntax is not acceptable"}}


@router.get("/studies/{study}", summary="WADO-RS: a study's instances", responses=_MULTIPART,
            response_class=StreamingResponse)
def retrieve_study(request: Request, study: str) -> StreamingResponse:
    return _retrieve(request, records_for(request, study), "study")


@router.get("/studies/{study}/series/{series}", summary="WADO-RS: a series' instances",
            responses=_MULTIPART, response_class=StreamingResponse)
def retrieve_series(request: Request, study: str, series: str) -> StreamingResponse:
    return _retrieve(request, records_for(request, study, series), "series")


@router.get("/studies/{study}/series/{series}/instances/{instance}",
            summary="WADO-RS: an instance", responses=_MULTIPART,
            response_class=StreamingResponse)
def retrieve_instance(request: Request, study: str, series: str, instance: str
                      ) -> StreamingResponse:
    return _retrieve(request, records_for(request, study, series, instance), "instance")


# -- metadata ----------------------------------------------------------------------
def _is_bulk(elem: DataElement) -> bool:
    if elem.tag == PIXEL_DATA:
        return True
    if elem.VR not in BULK_VRS or elem.value is None:
        return False
    return len(elem.value) > BULK_THRESHOLD


def instance_metadata(ds: Dataset, record: InstanceRecord, base: str, *,
                      has_pixels: bool) -> dict[str, Any]:
    """DICOM JSON of one instance: its values, and BulkDataURIs for bulk data."""
    url = (f"{base}/studies/{record.study_uid}/series/{record.series_uid}"
           f"/instances/{record.sop_uid}/bulkdata/")
    small = Dataset()
    bulk: dict[str, dict[str, str]] = {}
    for elem in ds:
        if elem.tag.group == 0x0002:
            continue
        if _is_bulk(elem):
            bulk[f"{elem.tag:08X}"] = {"vr": elem.VR, "BulkDataURI": url + f"{elem.tag:08X}"}
        else:
            small.add(elem)
    if has_pixels:
        vr = "OW" if (record.transfer_syntax in mp.NATIVE
                      and int(ds.get("BitsAllocated", 8) or 8) > 8) else "OB"
        bulk["7FE00010"] = {"vr": vr, "BulkDataURI": url + "7FE00010"}
    out = small.to_json_dict(bulk_data_threshold=1 << 30)
    out.update(bulk)
    return dict(sorted(out.items()))


def _has_pixels(record: InstanceRecord, ds: Dataset) -> bool:
    return "Rows" in ds and "Columns" in ds and "EncapsulatedDocument" not in ds


def _metadata(request: Request, records: list[InstanceRecord], what: str) -> Response:
    header = request.headers.get("accept")
    if not any(r.accepts(mp.DICOM_JSON) for r in mp.parse_accept(header)):
        raise mp.not_acceptable(mp.DICOM_JSON, header)
    archive = archive_of(request)
    base = base_url(request)
    out = []
    for record in records:
        path = archive.path_of(record)
        if not path.exists():
            raise ApiError(404, f"the file of instance {record.sop_uid} is missing")
        ds = read_instance(path, pixels=False)
        out.append(instance_metadata(ds, record, base, has_pixels=_has_pixels(record, ds)))
    audit_retrieve(request, records, what + " metadata")
    return Response(json.dumps(out, separators=(",", ":")), media_type=mp.DICOM_JSON)


_METADATA = {200: {"content": {mp.DICOM_JSON: {}}}}


@router.get("/studies/{study}/metadata", summary="WADO-RS: a study's metadata",
            responses=_METADATA)
def study_metadata(request: Request, study: str) -> Response:
    return _metadata(request, records_for(request, study), "study")


@router.get("/studies/{study}/series/{series}/metadata",
            summary="WADO-RS: a series' metadata", responses=_METADATA)
def series_metadata(request: Request, study: str, series: str) -> Response:
    return _metadata(request, records_for(request, study, series), "series")


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata",
            summary="WADO-RS: an instance's metadata", responses=_METADATA)
def metadata_of_instance(request: Request, study: str, series: str, instance: str
                         ) -> Response:
    return _metadata(request, records_for(request, study, series, instance), "instance")


# -- frames and bulk data ------------------------------------------------------------
def frame_count(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def native_frames(ds: Dataset, syntax: str) -> list[bytes]:
    """The frames of native Pixel Data, little endian (PS3.18 8.7.3.3.2)."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.BitsAllocated)
    data = bytes(ds.PixelData)
    n = frame_count(ds)
    if bits == 1:
        size_bits = rows * cols * samples
        if n > 1 and size_bits % 8:
            raise ApiError(406, "frames of 1-bit pixel data not on byte boundaries cannot "
                           "be given separately")
        size = -(-size_bits // 8)
    else:
        size = rows * cols * samples * bits // 8
    frames = [data[i * size:(i + 1) * size] for i in range(n)]
    if syntax == BIG_ENDIAN and bits > 8:
        import numpy as np
        dtype = np.dtype(f">u{bits // 8}")
        frames = [np.frombuffer(f, dtype).astype(dtype.newbyteorder("<")).tobytes()
                  for f in frames]
    return frames


def stored_frames(ds: Dataset, syntax: str) -> list[bytes]:
    """Every frame as stored: native (little endian) or one compressed frame each."""
    if syntax in mp.NATIVE:
        return native_frames(ds, syntax)
    frames = generate_frames(ds.PixelData, number_of_frames=frame_count(ds))
    # An odd-length codestream is padded to even length in its fragment (PS3.5 A.4):
    # the pad after a JPEG / JPEG-LS / JPEG 2000 end-of-image marker is not the image's.
    return [f[:-1] if f.endswith(b"\xff\xd9\x00") else f for f in frames]


def frame_media_type(syntax: str) -> str:
    return mp.OCTET_STREAM if syntax in mp.NATIVE else mp.FRAME_MEDIA_TYPES.get(
        syntax, mp.OCTET_STREAM)


def _frames_acceptable(ranges: list[mp.MediaRange], syntax: str, header: str | None
                       ) -> tuple[str, str]:
    """(part media type, its transfer syntax) that the Accept ranges take, the stored
    form preferred; a compressed instance's frames may also go out decompressed
    (``application/octet-stream``, Explicit VR Little Endian) when a range asks for
    that and pydicom can decode them (:func:`frames_in`); 406 otherwise."""
    media = frame_media_type(syntax)
    given_ts = mp.EXPLICIT_LE if syntax in mp.NATIVE else syntax
    for r in ranges:
        if r.media_type in ("*/*", "multipart/*"):
            return media, given_ts
        if r.media_type != mp.MULTIPART_RELATED:
            continue
        kind = r.related_type
        fits = kind in (None, "*/*") or (kind is not None and mp.MediaRange(kind).accepts(media))
        if fits and r.takes_syntax(given_ts):
            return media, given_ts
        if kind == mp.OCTET_STREAM and r.transfer_syntax == "*":
            return media, given_ts
        if kind == mp.OCTET_STREAM and r.transfer_syntax in (None, mp.EXPLICIT_LE):
            return mp.OCTET_STREAM, mp.EXPLICIT_LE  # decompressed
    raise mp.not_acceptable(f'multipart/related; type="{media}"; transfer-syntax={given_ts}',
                            header)


def frames_in(ds: Dataset, stored: str, syntax: str) -> list[bytes]:
    """Every frame in ``syntax``: as stored, or a compressed instance's decoded to
    native little-endian values; 406 when they cannot be decoded here."""
    if syntax == stored or stored in mp.NATIVE:
        return stored_frames(ds, stored)
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise ApiError(406, f"cannot decompress {stored} frames here ({exc}); ask for "
                       f"transfer-syntax={stored}", "header.accept") from None
    if frame_count(ds) == 1:
        pixels = pixels[None, ...]
    dtype = pixels.dtype.newbyteorder("<")
    return [frame.astype(dtype, copy=False).tobytes() for frame in pixels]


def parse_frames(text: str, count: int) -> list[int]:
    """A frame list ``1,3,5`` (PS3.18 8.3.2): 400 when malformed, 404 beyond the last."""
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError:
        raise ApiError(400, f"frame list {text!r} is not comma-separated numbers",
                       "path.frames") from None
    if any(n < 1 for n in numbers):
        raise ApiError(400, "frame numbers start at 1", "path.frames")
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise ApiError(404, f"frame {beyond[0]} does not exist: the instance has {count}",
                       "path.frames")
    return numbers


def _parts_response(parts: list[bytes], media: str, syntax: str, location: str
                    ) -> StreamingResponse:
    boundary = mp.new_boundary()
    content_type = f"{media}; transfer-syntax={syntax}"
    body = mp.related(((mp.part_header(content_type, Content_Location=location), [p])
                       for p in parts), boundary)
    return StreamingResponse(body, media_type=mp.related_content_type(media, boundary))


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            summary="WADO-RS: frames of an instance", response_class=StreamingResponse,
            responses={200: {"content": {'multipart/related; type="application/octet-stream"':
                                         {}}}})
def retrieve_frames(request: Request, study: str, series: str, instance: str, frames: str
                    ) -> StreamingResponse:
    record, path = instance_file(request, study, series, instance)
    ds = read_instance(path)
    if "PixelData" not in ds:
        raise ApiError(404, f"instance {instance} has no pixel data")
    numbers = parse_frames(frames, frame_count(ds))
    header = request.headers.get("accept")
    media, syntax = _frames_acceptable(mp.parse_accept(header), record.transfer_syntax,
                                       header)
    every = frames_in(ds, record.transfer_syntax, syntax)
    audit_retrieve(request, [record], "frames")
    return _parts_response([every[n - 1] for n in numbers], media, syntax,
                           str(request.url))


@router.get("/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
            summary="WADO-RS: a bulk data value of an instance",
            response_class=StreamingResponse)
def retrieve_bulkdata(request: Request, study: str, series: str, instance: str, tag: str
                      ) -> StreamingResponse:
    """The value a BulkDataURI of :func:`instance_metadata` names: Pixel Data as its
    frames (as ``/frames``), any other value as one application/octet-stream part."""
    record, path = instance_file(request, study, series, instance)
    wanted = parse_tag(tag, "path.tag")
    ds = read_instance(path)
    if wanted not in ds:
        raise ApiError(404, f"instance {instance} has no {tag}")
    header = request.headers.get("accept")
    ranges = mp.parse_accept(header)
    audit_retrieve(request, [record], "bulkdata")
    if wanted == PIXEL_DATA:
        media, syntax = _frames_acceptable(ranges, record.transfer_syntax, header)
        return _parts_response(frames_in(ds, record.transfer_syntax, syntax), media, syntax,
                               str(request.url))
    if not any(r.media_type in ("*/*", "multipart/*") or (
            r.media_type == mp.MULTIPART_RELATED
            and r.related_type in (None, mp.OCTET_STREAM)) for r in ranges):
        raise mp.not_acceptable('multipart/related; type="application/octet-stream"', header)
    value = ds[wanted].value
    data = value if isinstance(value, bytes) else bytes(value or b"")
    return _parts_response([data], mp.OCTET_STREAM, mp.EXPLICIT_LE, str(request.url))


