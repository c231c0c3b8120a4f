"""QIDO-RS (PS3.18 10.6): searching the archive for studies, series and instances.

A search is turned into a C-FIND identifier (matching keys with their values, return
keys empty) and answered by :meth:`printscp.archive.index.Index.query`, the very call
the C-FIND SCP makes, so a QIDO search and a C-FIND with the same keys match the same
records (PS3.4 C.2: single value, wildcard, range, UID list, universal; fuzzy matching
off).  Results are DICOM JSON (PS3.18 F.2) with the default return attributes of
PS3.18 Tables 10.6.3-3/-4/-5, plus ``includefield`` attributes (or ``all``); a return
attribute a record has no value for is sent empty, as C-FIND fills its return keys.

Status codes (PS3.18 10.6.3.2 / 8.3.3.1): 200 with the matches; 204 No Content when none
(PS3.18 8.3.4.4.1 as published; CP-2473 proposes 200 with an empty array, which
dicomweb-client and viewers also read); 400 for a bad parameter, naming it; 404 when the
archive is disabled.  ``fuzzymatching=true`` is answered with literal matching and the
Warning header the standard gives for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from printscp.archive.index import Level
from printscp.core import audit
from printscp.core.audit import AuditEvent, EventActionCode, Outcome
from printscp.http.api.archive import archive_of
from printscp.http.auth import current_user
from printscp.http.dicomweb.multipart import DICOM_JSON
from printscp.http.errors import ApiError

router = APIRouter()

#: The Study Root C-FIND SOP Class: what a QIDO-RS search is in the audit trail.
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

#: Query parameters that are not attribute keys (PS3.18 Table 8.3.4-1).
LIMIT, OFFSET, INCLUDEFIELD, FUZZY = "limit", "offset", "includefield", "fuzzymatching"
CONTROL = frozenset({LIMIT, OFFSET, INCLUDEFIELD, FUZZY})

#: The Warning header for fuzzymatching=true (PS3.18 8.3.4.4.2 / 8.3.3.1, status 299).
FUZZY_WARNING = ('299 printscp: "The fuzzymatching parameter is not supported. '
                 'Only literal matching has been performed."')
#: The most matches one response holds (a search without ``limit`` included).
MAX_RESULTS = 10_000
#: The Warning header when more matched than one response holds (PS3.18 8.3.4.4.2).
MORE_WARNING = ('299 printscp: "The number of results exceeded the maximum supported by '
                'the server. Additional results can be requested."')


class Resource(StrEnum):
    """What a search returns (PS3.18 10.6.1: the Search transaction's resources)."""

    STUDIES = "studies"
    SERIES = "series"
    INSTANCES = "instances"


LEVELS = {Resource.STUDIES: Level.STUDY, Resource.SERIES: Level.SERIES,
          Resource.INSTANCES: Level.IMAGE}

#: Default return attributes (PS3.18 Table 10.6.3-3), besides Retrieve URL and
#: Instance Availability, which the server fills.
STUDY_ATTRIBUTES = (
    "SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy",
    "ReferringPhysicianName", "TimezoneOffsetFromUTC", "PatientName", "PatientID",
    "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
#: Table 10.6.3-4.
SERIES_ATTRIBUTES = (
    "SpecificCharacterSet", "Modality", "TimezoneOffsetFromUTC", "SeriesDescription",
    "SeriesInstanceUID", "SeriesNumber", "NumberOfSeriesRelatedInstances",
    "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    "RequestAttributesSequence")
#: Table 10.6.3-5.
INSTANCE_ATTRIBUTES = (
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "TimezoneOffsetFromUTC",
    "InstanceNumber", "Rows", "Columns", "BitsAllocated", "NumberOfFrames")

_TAG_RE = re.compile(r"^[0-9A-Fa-f]{8}$")
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})


def parse_tag(name: str, place: str) -> BaseTag:
    """An attribute named by keyword or by tag (``00100020``), as PS3.18 8.3.4.1."""
    if _TAG_RE.match(name):
        return Tag(int(name, 16))
    tag = tag_for_keyword(name)
    if tag is None:
        if "." in name:
            raise ApiError(400, f"{name}: matching inside sequences is not supported", place)
        raise ApiError(400, f"{name} is neither a DICOM keyword nor a tag", place)
    return Tag(tag)


def _vr(tag: BaseTag, place: str) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise ApiError(400, f"{tag} is not in the data dictionary", place) from None
    return vr.split(" or ")[0]


def match_element(tag: BaseTag, value: str, place: str) -> DataElement:
    """A matching key of the C-FIND identifier; values as PS3.18 8.3.4.1 writes them
    (a UID list comma-separated; a multi-valued match as C-FIND's backslash)."""
    vr = _vr(tag, place)
    if vr == "SQ":
        raise ApiError(400, f"{keyword_for_tag(tag) or tag}: matching on a sequence is "
                       "not supported", place)
    if vr == "UI":
        parts = [p.strip() for p in value.replace("\\", ",").split(",") if p.strip()]
        return DataElement(tag, vr, parts if len(parts) > 1 else (parts[0] if parts else ""))
    if vr in _INT_VRS or vr in _FLOAT_VRS:
        try:
            number: Any = int(value) if vr in _INT_VRS else float(value)
        except ValueError:
            raise ApiError(400, f"{keyword_for_tag(tag)}={value!r} is not a number",
                           place) from None
        return DataElement(tag, vr, number)
    return DataElement(tag, vr, value)


class Search:
    """A QIDO-RS request, parsed: the identifier, the attributes to return, paging."""

    def __init__(self, resource: Resource, params: Iterable[tuple[str, str]],
                 path_keys: dict[str, str]) -> None:
        self.resource = resource
        self.level = LEVELS[resource]
        self.limit: int | None = None
        self.offset = 0
        self.fuzzy = False
        self.include_all = False
        self.keys: dict[str, str] = {}
        self.identifier = Dataset()
        returned: list[BaseTag] = [Tag(kw) for kw in self.default_attributes(path_keys)]
        matching: list[DataElement] = []
        for name, value in params:
            place = f"query.{name}"
            if name == LIMIT:
                self.limit = _count(value, place, minimum=1)
            elif name == OFFSET:
                self.offset = _count(value, place, minimum=0)
            elif name == FUZZY:
                if value.lower() not in ("true", "false"):
                    raise ApiError(400, f"fuzzymatching must be true or false, not {value!r}",
                                   place)
                self.fuzzy = value.lower() == "true"
            elif name == INCLUDEFIELD:
                for field in (f.strip() for f in value.split(",")):
                    if field == "all":
                        self.include_all = True
                    elif field:
                        returned.append(parse_tag(field, place))
            else:
                tag = parse_tag(name, place)
                matching.append(match_element(tag, value, place))
                self.keys[keyword_for_tag(tag) or str(tag)] = value
        for keyword, uid in path_keys.items():
            matching.append(DataElement(Tag(keyword), "UI", uid))
            self.keys[keyword] = uid
        for tag in returned:
            if tag not in self.identifier:
                self.identifier.add(DataElement(tag, _vr(tag, "query.includefield"),
                                                None))
        for elem in matching:
            self.identifier.add(elem)
        self.returned = frozenset(returned) | {elem.tag for elem in matching}
        #: What a record without a value of a return attribute gets: the attribute,
        #: empty, as the C-FIND SCP fills its return keys.
        self.empty = {f"{tag:08X}": {"vr": self.identifier[tag].VR} for tag in self.returned}

    def default_attributes(self, path_keys: dict[str, str]) -> tuple[str, ...]:
        """Tables 10.6.3-3/4/5; a search of all series or instances also returns the
        attributes of the levels above (PS3.18 10.6.3.3.1)."""
        if self.resource is Resource.STUDIES:
            return STUDY_ATTRIBUTES
        if self.resource is Resource.SERIES:
            return SERIES_ATTRIBUTES + (() if path_keys else STUDY_ATTRIBUTES)
        above = () if "SeriesInstanceUID" in path_keys else SERIES_ATTRIBUTES
        if "StudyInstanceUID" not in path_keys:
            above += STUDY_ATTRIBUTES
        return INSTANCE_ATTRIBUTES + above

    def result(self, merged: Dataset, base: str) -> dict[str, Any]:
        """A match as a DICOM JSON object: the return attributes it has, and the two
        the server fills (Retrieve URL, Instance Availability)."""
        out: dict[str, Any] = {}
        # The elements as the index merged them (whole DataElements, parsed from its
        # JSON): not through Dataset.__iter__, which sorts and looks up each again.
        for tag, elem in merged._dict.items():
            if self.include_all or tag in self.returned:
                out[f"{tag:08X}"] = element_json(elem)
        study = merged.get("StudyInstanceUID", "")
        url = f"{base}/studies/{study}"
        if self.level in (Level.SERIES, Level.IMAGE):
            url += f"/series/{merged.get('SeriesInstanceUID', '')}"
        if self.level is Level.IMAGE:
            url += f"/instances/{merged.get('SOPInstanceUID', '')}"
        for key, empty in self.empty.items():
            out.setdefault(key, empty)
        out["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
        out["00081190"] = {"vr": "UR", "Value": [url]}
        return dict(sorted(out.items()))


#: DICOM JSON of elements already converted, by identity: the index hands out the same
#: parsed element objects for a record while its row is unchanged (its parse cache), and
#: the study and series attributes repeat on every instance of a search, so a search
#: converts each value once (pydicom's conversion was most of a search's time).
_ELEMENT_JSON: dict[int, tuple[DataElement, dict[str, Any]]] = {}
_ELEMENT_JSON_MAX = 200_000


def element_json(elem: DataElement) -> dict[str, Any]:
    """``elem`` as DICOM JSON (PS3.18 F.2.2), binary values inline."""
    hit = _ELEMENT_JSON.get(id(elem))
    if hit is not None and hit[0] is elem:
        return hit[1]
    value = elem.to_json_dict(None, 1 << 62)
    if len(_ELEMENT_JSON) >= _ELEMENT_JSON_MAX:
        _ELEMENT_JSON.clear()
    _ELEMENT_JSON[id(elem)] = (elem, value)  # the reference keeps the id from reuse
    return value


def _count(value: str, place: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{place.split('.')[-1]} must be an integer, not {value!r}",
                       place) from None
    if number < minimum:
        raise ApiError(400, f"{place.split('.')[-1]} must be at least {minimum}", place)
    return number


def base_url(request: Request) -> str:
    """The absolute URL of ``/dicom-web`` as the request reached it (Retrieve URLs and
    BulkDataURIs are absolute, PS3.18 8.4 / F.2.6).

    A Host header without a port (dicomweb-client sends its host name alone, whatever
    the port) is completed with the port the request came in on, unless a proxy
    forwarded it (``Forwarded`` / ``X-Forwarded-*``), whose Host is the public one."""
    base = request.base_url
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    proxied = any(name in request.headers for name in (
        "forwarded", "x-forwarded-host", "x-forwarded-for", "x-forwarded-proto"))
    if (host and not proxied and server and base.port is None and ":" not in host
            and server[1] not in (None, 80 if base.scheme == "http" else 443)):
        base = base.replace(port=server[1])
    return str(base).rstrip("/") + "/dicom-web"


def who(request: Request) -> tuple[str, str]:
    """(user name, client address) for the audit trail."""
    user = current_user(request)
    return (user.name if user else ""), (request.client.host if request.client else "")


def audit_query(request: Request, keys: dict[str, Any], refusal: Exception | None = None
                ) -> None:
    """Query (PS3.15 A.5.3.13), as the C-FIND SCP writes it, with ``dicomweb.qido``."""
    if not audit.enabled():
        return
    user, host = who(request)
    patient = str(keys.get("PatientID", ""))
    study = str(keys.get("StudyInstanceUID", ""))
    audit.later(lambda: [audit.build(
        AuditEvent.QUERY, Outcome.MINOR_FAILURE if refusal else Outcome.SUCCESS,
        action=EventActionCode.EXECUTE, user=user, host=host, patient=patient, study=study,
        objects=[audit.query_object(STUDY_ROOT_FIND, keys)], word="dicomweb.qido",
        description=str(refusal) if refusal else "")])


def search(request: Request, resource: Resource, **path_keys: str) -> Response:
    """One QIDO-RS search (every route below)."""
    archive = archive_of(request)
    try:
        query = Search(resource, request.query_params.multi_items(), path_keys)
    except ApiError as exc:
        audit_query(request, dict(request.query_params), exc)
        raise
    audit_query(request, query.keys)
    base = base_url(request)
    results: list[dict[str, Any]] = []
    skipped = 0
    most = min(query.limit or MAX_RESULTS, MAX_RESULTS)
    warnings = [FUZZY_WARNING] if query.fuzzy else []
    for merged, _ in archive.index.query(query.level, query.identifier):
        if skipped < query.offset:
            skipped += 1
            continue
        if len(results) >= most:
            if query.limit is None or query.limit > MAX_RESULTS:
                warnings.append(MORE_WARNING)
            break
        results.append(query.result(merged, base))
    headers = {"Warning": ", ".join(warnings)} if warnings else {}
    if not results:
        return Response(status_code=204, headers=headers)
    return Response(json.dumps(results, separators=(",", ":")), media_type=DICOM_JSON,
                    headers=headers)


_JSON = {200: {"content": {DICOM_JSON: {}}, "description": "the matches, DICOM JSON"},
         204: {"description": "no match"}}


@router.get("/studies", summary="QIDO-RS: search for studies", responses=_JSON)
def search_studies(request: Request) -> Response:
    return search(request, Resource.STUDIES)


@router.get("/series", summary="QIDO-RS: search for series", responses=_JSON)
def search_all_series(request: Request) -> Response:
    return search(request, Resource.SERIES)


@router.get("/instances", summary="QIDO-RS: search for instances", responses=_JSON)
def search_all_instances(request: Request) -> Response:
    return search(request, Resource.INSTANCES)


@router.get("/studies/{study}/series", summary="QIDO-RS: the series of a study",
            responses=_JSON)
def search_study_series(request: Request, study: str) -> Response:
    return search(request, Resource.SERIES, StudyInstanceUID=study)


@router.get("/studies/{study}/instances", summary="QIDO-RS: the instances of a study",
            responses=_JSON)
def search_study_instances(request: Request, study: str) -> Response:
    return search(request, Resource.INSTANCES, StudyInstanceUID=study)


@router.get("/studies/{study}/series/{series}/instances",
            summary="QIDO-RS: the instances of a series", responses=_JSON)
def search_series_instances(request: Request, study: str, series: str) -> Response:
    return search(request, Resource.INSTANCES, StudyInstanceUID=study,
                  SeriesInstanceUID=series)
