"""Reference sequences of a response, encoded once by hand instead of item by item.

A Film Box N-CREATE answers with one Referenced Image Box Sequence item per image box
(twenty for STANDARD\\4,5): built as pydicom Datasets (every value validated) and
encoded by pydicom's writer they took about 2 ms of the response.  Each item is just
(0008,1150) and (0008,1155), so :func:`set_references` encodes the whole sequence here,
in the response's transfer syntax, as a raw element that pydicom's writer copies as it
is (it does for raw elements when the data set's original encoding is the one written:
:func:`set_references` sets it).  Read back (a log, a test), pydicom decodes it like
any received sequence.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from pydicom.charset import default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

REFERENCED_SOP_CLASS = 0x00081150
REFERENCED_SOP_INSTANCE = 0x00081155


def _ui(tag: int, uid: str, implicit: bool, order: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) & 1:
        value += b"\0"
    if implicit:
        return struct.pack(order + "HHL", tag >> 16, tag & 0xFFFF, len(value)) + value
    return struct.pack(order + "HH2sH", tag >> 16, tag & 0xFFFF, b"UI", len(value)) + value


def encode_references(items: Iterable[tuple[str, str]], implicit_vr: bool,
                      little_endian: bool) -> bytes:
    """The value of a sequence of (Referenced SOP Class UID, Referenced SOP Instance UID)
    items, defined lengths, in the given encoding."""
    order = "<" if little_endian else ">"
    out = bytearray()
    for sop_class, sop_instance in items:
        item = (_ui(REFERENCED_SOP_CLASS, sop_class, implicit_vr, order)
                + _ui(REFERENCED_SOP_INSTANCE, sop_instance, implicit_vr, order))
        out += struct.pack(order + "HHL", 0xFFFE, 0xE000, len(item)) + item
    return bytes(out)


def set_references(ds: Dataset, keyword: str, items: list[tuple[str, str]],
                   encoding: tuple[bool, bool] | None) -> None:
    """Set sequence ``keyword`` of ``ds`` to reference ``items`` ((class, instance)
    pairs).  With ``encoding`` ((implicit VR, little endian) of the response) the
    sequence is encoded here as a raw element and ``ds`` marked as in that encoding;
    without, it is an ordinary pydicom Sequence."""
    if encoding is None:
        refs = []
        for sop_class, sop_instance in items:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop_instance
            refs.append(item)
        setattr(ds, keyword, Sequence(refs))
        return
    implicit, little = encoding
    value = encode_references(items, implicit, little)
    tag = BaseTag(tag_for_keyword(keyword))  # type: ignore[arg-type]
    ds._dict[tag] = RawDataElement(tag, "SQ", len(value), value, 0, implicit, little, True,
                                   False)
    ds.set_original_encoding(implicit, little, default_encoding)
