"""Helpers shared by the service handlers: failure statuses and data set access."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from printscp.core import status
from printscp.core.errors import StatusError
from printscp.printing.errors import InvalidAttributeValue, MissingAttribute, PrintAttributeError
from printscp.printing.layout import ImageTooLarge

LOGGER = logging.getLogger("printscp.services")


def status_dataset(code: int, comment: str = "", tags: Iterable[BaseTag] = ()) -> Dataset:
    """A status with (0000,0902) Error Comment (LO, 64 chars) and (0000,1005) tags."""
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = status.error_comment(comment)
    tags = list(tags)
    if tags:
        ds.AttributeIdentifierList = tags
    return ds


def create_failure(result: Dataset) -> tuple[Dataset, None]:
    """An N-CREATE failure response: N-CREATE-RSP has no Attribute Identifier List
    (PS3.7 10.3.5), so the Error Comment alone names the attribute."""
    if "AttributeIdentifierList" in result:
        del result.AttributeIdentifierList
    return result, None


def error_status(exc: Exception) -> Dataset:
    """Map domain and service errors to DIMSE statuses (see docs/conformance.md)."""
    if isinstance(exc, StatusError):
        return status_dataset(exc.status, exc.comment, [Tag(t) for t in exc.tags])
    if isinstance(exc, ImageTooLarge):
        return status_dataset(status.IMAGE_TOO_LARGE, str(exc), [exc.tag] if exc.tag else [])
    if isinstance(exc, MissingAttribute):
        return status_dataset(status.MISSING_ATTRIBUTE, str(exc), [exc.tag] if exc.tag else [])
    if isinstance(exc, InvalidAttributeValue | PrintAttributeError):
        return status_dataset(status.INVALID_ATTRIBUTE_VALUE, str(exc),
                              [exc.tag] if exc.tag else [])
    LOGGER.exception("processing failure")
    return status_dataset(status.PROCESSING_FAILURE, f"{type(exc).__name__}: {exc}")


def guarded(fn: Callable[..., Any], failure: Callable[[Dataset], Any]) -> Callable[..., Any]:
    """Run a handler; any exception becomes a failure status instead of a crash."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # the server must keep serving
            result = error_status(exc)
            LOGGER.warning("%s -> 0x%04X %s", fn.__name__, result.Status,
                           result.get("ErrorComment", ""))
            return failure(result)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def dataset_values(ds: Dataset | None, allowed: dict[str, str], operation: str
                   ) -> dict[str, Any]:
    """Constructor keyword arguments from ``ds`` for the keywords in ``allowed``.

    Zero-length values mean "printer default" and are left out.  An attribute the
    operation does not support is refused with 0x0105 naming it.
    """
    out: dict[str, Any] = {}
    if ds is None:
        return out
    for elem in ds:
        keyword = elem.keyword
        if elem.tag.group == 0x0000:
            continue
        if keyword not in allowed:
            name = keyword or str(elem.tag)
            raise StatusError(status.NO_SUCH_ATTRIBUTE,
                             f"{name} {elem.tag} not supported in {operation}", [elem.tag])
        target = allowed[keyword]
        if not target:  # handled by the caller (sequences)
            continue
        value = elem.value
        if value is None or value == "" or (elem.VM == 0):
            continue
        if elem.VM > 1:
            value = "\\".join(str(v) for v in value)
        out[target] = str(value) if elem.VR in ("CS", "ST", "LO", "SH", "LT") else value
    return out


def referenced_uid(ds: Dataset, keyword: str, sop_class: str, required: bool) -> str | None:
    """The Referenced SOP Instance UID of a one-item reference sequence."""
    seq = ds.get(keyword) if ds is not None else None
    if not seq:
        if required:
            raise MissingAttribute(keyword)
        return None
    item = seq[0]
    uid = str(item.get("ReferencedSOPInstanceUID", "") or "")
    cls = str(item.get("ReferencedSOPClassUID", "") or "")
    if not uid:
        raise MissingAttribute(keyword, "item has no Referenced SOP Instance UID")
    if cls and cls != sop_class:
        raise InvalidAttributeValue(keyword, cls, f"a reference to SOP Class {sop_class}")
    return uid
