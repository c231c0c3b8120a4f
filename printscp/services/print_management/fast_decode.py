"""The Image Box N-SET data set read straight from its bytes, for the common case.

Every film is mostly Image Box N-SETs: a position and one image item (its Image Pixel
Module and Pixel Data).  pydicom decodes such a data set in about 0.4 ms, and
:mod:`.dispatch` must then walk it (so a malformed message aborts its own association)
and check its sequence depth on a copy of the bytes: twenty images, ~10 ms of each
DCMTK print session.  :func:`image_box_dataset` reads the few elements such a data set
holds, in Little Endian (explicit or implicit VR), and builds the same pydicom
:class:`~pydicom.dataset.Dataset` pydicom's reader would (tag, VR and value of every
element; the tests compare both), in about 30 us.  Anything it does not know — another
element, a multi-valued or padded-with-NUL text, several items, big endian, lengths
that do not add up — returns None, and the data set goes the usual way.  Its one
sequence is one level deep, within any [limits] max_sequence_depth.
"""

from __future__ import annotations

import struct

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from printscp.core.limits import ITEM, ITEM_END, LONG_LENGTH_VRS, SEQUENCE_END, UNDEFINED

#: The image sequences of the Basic Grayscale and Basic Color Image Box.
IMAGE_SEQUENCES = frozenset({0x20200110, 0x20200111})
#: US elements read here: Image Box Position and the Image Pixel Module's.
US_TAGS = frozenset({0x20200010, 0x00280002, 0x00280006, 0x00280010, 0x00280011,
                     0x00280100, 0x00280101, 0x00280102, 0x00280103})
#: CS elements read here (single values): Polarity, Magnification and Smoothing Type,
#: Requested Decimate/Crop Behavior, Photometric Interpretation.
CS_TAGS = frozenset({0x20200020, 0x20100060, 0x20100080, 0x20200040, 0x00280004})
PIXEL_DATA = 0x7FE00010

_HEADER = struct.Struct("<HHL")  # implicit VR: group, element, length
_EXPLICIT = struct.Struct("<HH2sH")  # explicit VR, short form: group, element, VR, length
_US = struct.Struct("<H")


class _Unknown(Exception):
    """Not the common case: pydicom reads it."""


def image_box_dataset(data: bytes | memoryview, implicit_vr: bool) -> Dataset | None:
    """The Image Box N-SET data set encoded (Little Endian) in ``data``, or None when it
    holds anything but the common elements (then pydicom decodes it).

    Its Pixel Data is a view of ``data``, not a copy: a writable ``data`` (the received
    message's buffer, which nothing reads after the handler) is decoded in place."""
    view = memoryview(data).cast("B")
    try:
        ds, end = _elements(view, 0, len(view), implicit_vr, top=True)
    except (_Unknown, struct.error, UnicodeDecodeError):
        return None
    return ds if end == len(view) else None


def _header(view: memoryview, pos: int, implicit: bool) -> tuple[int, bytes, int, int]:
    """(tag, VR or b"", value length, where the value starts) of the element at ``pos``."""
    group, element, length = _HEADER.unpack_from(view, pos)
    tag = group << 16 | element
    if implicit or group == 0xFFFE:  # items and delimiters have no VR
        return tag, b"", length, pos + 8
    group, element, vr, length = _EXPLICIT.unpack_from(view, pos)
    if vr in LONG_LENGTH_VRS:
        return tag, vr, _HEADER.unpack_from(view, pos + 4)[2], pos + 12
    return tag, vr, length, pos + 8


def _elements(view: memoryview, pos: int, stop: int | None, implicit: bool, *,
              top: bool) -> tuple[Dataset, int]:
    """The elements from ``pos`` to ``stop`` (None: to an Item Delimitation) as a
    Dataset, and where they end (after the delimitation)."""
    ds = Dataset()
    elements = ds._dict  # filled directly: the values are converted already
    previous = -1
    limit = len(view) if stop is None else stop
    while pos < limit:
        tag, vr, length, value = _header(view, pos, implicit)
        if stop is None and tag == ITEM_END:
            return ds, value
        if tag <= previous or (length == UNDEFINED and tag not in IMAGE_SEQUENCES):
            raise _Unknown
        previous = tag
        if top and tag in IMAGE_SEQUENCES:
            if vr not in (b"", b"SQ"):
                raise _Unknown
            items, pos = _sequence(view, value, length, implicit)
            elements[BaseTag(tag)] = DataElement(BaseTag(tag), "SQ", items,
                                                 already_converted=True)
            continue
        end = value + length
        if end > limit:
            raise _Unknown
        if tag in US_TAGS and vr in (b"", b"US"):
            if length == 2:
                element = DataElement(BaseTag(tag), "US", _US.unpack_from(view, value)[0],
                                      already_converted=True)
            elif length == 0:
                element = DataElement(BaseTag(tag), "US", None, already_converted=True)
            else:
                raise _Unknown
        elif tag in CS_TAGS and vr in (b"", b"CS"):
            text = bytes(view[value:end]).decode("ascii")
            if "\\" in text or "\0" in text:
                raise _Unknown
            element = DataElement(BaseTag(tag), "CS", text.rstrip(" "), already_converted=True)
        elif tag == PIXEL_DATA and not top and vr in (b"", b"OW", b"OB"):
            if not vr:  # implicit VR: pydicom makes an item's Pixel Data OW, 8-bit too
                vr = b"OW"
            # The received message's own buffer (writable): decoded in place, no copy
            # (printscp.printing.pixel_data._raw).
            element = DataElement(BaseTag(tag), vr.decode(), view[value:end],
                                  already_converted=True)
        else:
            raise _Unknown
        elements[BaseTag(tag)] = element
        pos = end
    if stop is None:
        raise _Unknown  # no Item Delimitation
    return ds, pos


def _sequence(view: memoryview, pos: int, length: int, implicit: bool
              ) -> tuple[Sequence, int]:
    """Exactly one item (several: pydicom reads them, the handler refuses them)."""
    stop = None if length == UNDEFINED else pos + length
    tag, _, item_length, value = _header(view, pos, True)
    if tag != ITEM:
        raise _Unknown
    if item_length == UNDEFINED:
        item, pos = _elements(view, value, None, implicit, top=False)
    else:
        item, pos = _elements(view, value, value + item_length, implicit, top=False)
    if stop is None:
        tag, _, end_length, after = _header(view, pos, True)
        if tag != SEQUENCE_END or end_length != 0:
            raise _Unknown
        pos = after
    elif pos != stop:
        raise _Unknown
    return Sequence([item]), pos
