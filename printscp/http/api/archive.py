"""The archive API (issue 16 section 3): patients, studies and series with their counts
and dates, a thumbnail per series, an instance or a whole study (zip) to download, and
deleting a study (admin; audited).

The listing functions (:func:`list_studies`...) are what the archive pages render too,
so a page and its JSON twin never disagree.  Everything here is
:mod:`printscp.archive.browse`; this module only speaks HTTP.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from printscp.archive import browse
from printscp.core import audit
from printscp.http.auth import User, admin, viewer
from printscp.http.errors import ApiError
from printscp.http.paging import Offset

router = APIRouter(tags=["archive"], dependencies=[Depends(viewer)])

#: Bytes read at a time from an instance file into a zip being streamed.
CHUNK = 1 << 20


def archive_of(request: Request) -> Any:
    """The node's archive, or 404 when ``[archive] enabled = false``."""
    archive = request.app.state.console.archive
    if archive is None:
        raise ApiError(404, "the archive is disabled ([archive] enabled = false)")
    return archive


def _paged(items: list[dict[str, Any]], total: int, limit: int, offset: int
           ) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


Limit = Annotated[int, Query(ge=1, le=browse.MAX_PAGE, description="rows per page")]
Admin = Annotated[User, Depends(admin)]


@router.get("/archive/patients", summary="Patients, by name, with their counts")
def list_patients(request: Request, q: Annotated[str | None, Query(
        description="contained in the Patient ID or name")] = None, limit: Limit = 50,
                  offset: Offset = 0) -> dict[str, Any]:
    items, total = browse.patients(archive_of(request), text=q, limit=limit, offset=offset)
    return _paged(items, total, limit, offset)


def study_filter(
        patient_id: Annotated[str | None, Query(description="exact Patient ID")] = None,
        patient_name: Annotated[str | None, Query(
            description="contained in the patient's name, any case")] = None,
        since: Annotated[date | None, Query(description="Study Date on or after")] = None,
        until: Annotated[date | None, Query(description="Study Date on or before")] = None,
        modality: Annotated[str | None, Query(
            max_length=16, description="a series of this modality")] = None,
        q: Annotated[str | None, Query(
            description="in the patient ID or name, accession number or description")] = None,
) -> browse.StudyFilter:
    if since and until and since > until:
        raise ApiError(400, "since is after until", "query.since")
    return browse.StudyFilter(patient_id or None, patient_name or None, since, until,
                              modality or None, q or None)


@router.get("/archive/studies", summary="Studies, newest first, with their counts")
def list_studies(request: Request,
                 filters: Annotated[browse.StudyFilter, Depends(study_filter)],
                 limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    items, total = browse.studies(archive_of(request), filters, limit=limit, offset=offset)
    for item in items:
        item["links"] = study_links(item["study_uid"])
    return _paged(items, total, limit, offset)


def study_links(uid: str) -> dict[str, str]:
    return {"self": f"/api/archive/studies/{uid}",
            "series": f"/api/archive/studies/{uid}/series",
            "zip": f"/api/archive/studies/{uid}.zip", "page": f"/archive/studies/{uid}"}


@router.get("/archive/studies/{uid}.zip", summary="The study's files, as a zip",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}})
def study_zip(request: Request, uid: str) -> StreamingResponse:
    archive = archive_of(request)
    records = browse.study_instances(archive, uid)
    if not records:
        raise ApiError(404, f"no study {uid} in the archive")
    return StreamingResponse(
        _zip_stream(archive, records), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{uid}.zip"'})


class _Sink:
    """A write-only stream the zip writes into; its bytes are taken as they come."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def _zip_stream(archive: Any, records: list[Any]) -> Iterator[bytes]:
    """The zip, a file at a time: ``<study>/<series>/<instance>.dcm``, stored (DICOM
    pixel data gains little from deflate and the node's CPU is for the modalities)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for record in records:
            name = f"{record.study_uid}/{record.series_uid}/{record.sop_uid}.dcm"
            try:
                source = open(archive.path_of(record), "rb")  # noqa: SIM115
            except (OSError, ValueError):
                continue  # deleted meanwhile: the zip has the rest
            with source, zf.open(zipfile.ZipInfo(name), "w", force_zip64=record.size >= 1 << 31
                                 ) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if sink.chunks:
                        yield sink.take()
            yield sink.take()
    yield sink.take()


@router.get("/archive/studies/{uid}", summary="One study and its series")
def get_study(request: Request, uid: str) -> dict[str, Any]:
    archive = archive_of(request)
    found = browse.study(archive, uid)
    if found is None:
        raise ApiError(404, f"no study {uid} in the archive")
    found["series_list"] = _series_with_links(browse.series(archive, uid) or [])
    found["links"] = study_links(uid)
    return found


def _series_with_links(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in items:
        uid = item["series_uid"]
        item["links"] = {"thumbnail": f"/api/archive/series/{uid}/thumbnail.png",
                         "instances": f"/api/archive/series/{uid}/instances"}
    return items


@router.get("/archive/studies/{uid}/series", summary="The series of a study, with counts")
def list_series(request: Request, uid: str) -> dict[str, Any]:
    items = browse.series(archive_of(request), uid)
    if items is None:
        raise ApiError(404, f"no study {uid} in the archive")
    return {"study_uid": uid, "items": _series_with_links(items)}


@router.get("/archive/series/{uid}/instances", summary="The instances of a series")
def list_instances(request: Request, uid: str) -> dict[str, Any]:
    items = browse.series_instances(archive_of(request), uid)
    if not items:
        raise ApiError(404, f"no series {uid} in the archive")
    for item in items:
        item["links"] = {"file": f"/api/archive/instances/{item['sop_uid']}"}
    return {"series_uid": uid, "items": items}


@router.get("/archive/series/{uid}/thumbnail.png", summary="A series' middle image, small",
            response_class=FileResponse, responses={200: {"content": {"image/png": {}}}})
def series_thumbnail(request: Request, uid: str,
                     size: Annotated[int, Query(description="width and height at most: "
                                                + ", ".join(map(str, browse.THUMBNAIL_SIZES)))
                                     ] = 128) -> Response:
    if size not in browse.THUMBNAIL_SIZES:
        raise ApiError(400, "size must be one of "
                       + ", ".join(map(str, browse.THUMBNAIL_SIZES)), "query.size")
    try:
        path = browse.series_thumbnail(archive_of(request), uid, size)
    except browse.NoPreview as exc:
        raise ApiError(404, f"series {uid} has no image to show: {exc}") from None
    if path is None:
        raise ApiError(404, f"no series {uid} in the archive")
    return FileResponse(path, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})


@router.get("/archive/instances/{uid}", summary="An instance's DICOM file",
            response_class=FileResponse,
            responses={200: {"content": {"application/dicom": {}}}})
def instance_file(request: Request, uid: str) -> Response:
    archive = archive_of(request)
    record = archive.index.instance(uid)
    if record is None:
        raise ApiError(404, f"no instance {uid} in the archive")
    path = archive.path_of(record)
    if not path.exists():
        raise ApiError(404, f"the file of instance {uid} is missing (run printscp archive "
                       "verify)")
    return FileResponse(path, media_type="application/dicom", filename=f"{uid}.dcm")


@router.delete("/archive/studies/{uid}", summary="Delete a study from the index and the disk")
def delete_study(request: Request, uid: str, user: Admin) -> dict[str, Any]:
    archive = archive_of(request)
    source = request.client.host if request.client else ""
    try:
        deleted = browse.delete_study(archive, uid)
    except Exception as exc:
        audit.record(archive.data_dir, "study.delete", uid, user=user.name, source=source,
                     outcome="failure", error=str(exc))
        raise
    if deleted is None:
        raise ApiError(404, f"no study {uid} in the archive")
    result = deleted.to_dict()
    audit.record(archive.data_dir, "study.delete", uid, user=user.name, source=source,
                 **{k: v for k, v in result.items() if k != "study_uid"})
    return {"deleted": result}
