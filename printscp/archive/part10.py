"""A received Part 10 file read into a pydicom data set: what ``dcmread`` gives, faster.

Every C-STORE decodes its data set to check it and to index it.  For a small
instance pydicom's ``dcmread`` was a third of the Python time of a C-STORE: its
element generator reads a file object eight bytes at a time and weighs, for each
element, options printscp never sets (stop callbacks, specific tags, debugging).
:func:`read` walks the bytes themselves with one ``struct`` call per element and
builds the very objects ``dcmread`` builds (the same ``RawDataElement`` tuples, the
same ``FileMetaDataset``, the same original encoding and character sets, the buffer
that deferred values are read from), so every check, the index's JSON and its
caches see no difference; the tests compare the two on every data set they have.

Only the common case takes this path: a preamble and ``DICM``, File Meta Information
in explicit VR little endian, and a data set in implicit or explicit VR little endian
(uncompressed or encapsulated) whose first element says the same.  Anything else
(big endian, deflate, no or odd File Meta Information, an unknown VR, a command set,
a value running past the end) goes to ``dcmread`` itself, as does a configuration of
pydicom's reading this module does not follow.  Values of undefined length (nested
sequences, encapsulated Pixel Data) are read by pydicom's own functions, from where
this walk found them.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import pydicom
from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.filereader import read_sequence, read_undefined_length_value
from pydicom.tag import BaseTag, SequenceDelimiterTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_string

from printscp.core.limits import ITEM_END, UNDEFINED

_IMPLICIT_LE = "1.2.840.10008.1.2"
#: Transfer syntaxes pydicom reads otherwise than as explicit VR little endian, apart
#: from implicit VR little endian (which this module reads too).
_OTHER_READING = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}) | {
    str(uid) for uid in pydicom.uid.PrivateTransferSyntaxes}
_CHARSET = 0x00080005
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHL")
_LONG_LENGTH = struct.Struct("<L")
#: The VRs pydicom reads in explicit VR, as their two bytes.
_KNOWN_VRS = {vr.encode(): vr for vr in (
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD",
    "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI",
    "UL", "UN", "UR", "US", "UT", "UV")}
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)


class _Fallback(Exception):
    """Not the common case: let ``dcmread`` read it."""


def read(encoded: bytes, defer_size: int) -> FileDataset:
    """``pydicom.dcmread(io.BytesIO(encoded), defer_size=defer_size)``, the same data
    set, mostly without pydicom's element generator."""
    if _configured():
        return pydicom.dcmread(io.BytesIO(encoded), defer_size=defer_size)
    try:
        return _read(encoded, defer_size)
    except _Fallback:
        return pydicom.dcmread(io.BytesIO(encoded), defer_size=defer_size)


def _configured() -> bool:
    """pydicom set to read otherwise than by default (this module follows defaults)."""
    return bool(config.debugging or config.data_element_callback is not None
                or not config.assume_implicit_vr_switch)


def _read(encoded: bytes, defer_size: int) -> FileDataset:
    if encoded[128:132] != b"DICM":
        raise _Fallback
    meta, start = _elements(encoded, 132, False, defer_size, meta=True)
    if not meta:
        raise _Fallback
    # (Datasets are built straight from their element dicts: each Dataset made costs
    # twenty attribute assignments, and dcmread makes four where two do.)
    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(False, True, default_encoding)
    file_meta[next(iter(meta))]  # as dcmread does: decodes the first element
    syntax = file_meta.get("TransferSyntaxUID")
    if syntax is None or str(syntax) in _OTHER_READING or start >= len(encoded):
        raise _Fallback
    implicit = str(syntax) == _IMPLICIT_LE
    if start + 6 > len(encoded) or encoded[start:start + 2] == b"\0\0":
        raise _Fallback  # too short to judge, or a command set (group 0000) first
    first_vr = encoded[start + 4:start + 6]
    if implicit == (0x40 < first_vr[0] < 0x5B and 0x40 < first_vr[1] < 0x5B):
        raise _Fallback  # the first element says otherwise: dcmread warns and switches
    buffer = io.BytesIO(encoded)
    elements, end = _elements(encoded, start, implicit, defer_size, buffer=buffer)
    if end != len(encoded):
        raise _Fallback
    ds = FileDataset(buffer, elements, encoded[:128], file_meta, implicit, True)
    # dcmread's last step, which also leaves Specific Character Set decoded.
    ds.set_original_encoding(implicit, True, ds._character_set)
    return ds


def _elements(encoded: bytes, pos: int, implicit: bool, defer_size: int, *,
              meta: bool = False, buffer: io.BytesIO | None = None
              ) -> tuple[dict[BaseTag, Any], int]:
    """The elements from ``pos`` on, as pydicom's element generator yields them, and
    where they end: the File Meta Information's (``meta``: while group 0002) or the
    data set's (to the end of ``encoded``)."""
    elements: dict[BaseTag, Any] = {}
    size = len(encoded)
    encoding: Any = default_encoding
    explicit_unpack = _EXPLICIT_HEADER.unpack_from
    implicit_unpack = _IMPLICIT_HEADER.unpack_from
    long_unpack = _LONG_LENGTH.unpack_from
    known, long_vrs = _KNOWN_VRS, _LONG_VRS
    while pos + 8 <= size:
        vr: str | None
        if implicit:
            group, number, length = implicit_unpack(encoded, pos)
            vr, header = None, 8
        else:
            group, number, raw_vr, length = explicit_unpack(encoded, pos)
            if meta and group != 2:
                return elements, pos
            vr = known.get(raw_vr)
            if vr is None:
                raise _Fallback  # pydicom guesses: implicit VR, or a 2-byte length
            header = 8
            if vr in long_vrs:
                if pos + 12 > size:
                    raise _Fallback
                length, header = long_unpack(encoded, pos + 8)[0], 12
        if meta and group != 2:
            return elements, pos
        tag = group << 16 | number
        if tag == ITEM_END:
            raise _Fallback  # an item delimiter at the top level: pydicom stops there
        value_tell = pos + header
        if length == UNDEFINED:
            if meta or buffer is None:
                raise _Fallback
            elements[BaseTag(tag)], pos = _undefined(buffer, tag, vr, implicit, value_tell,
                                                     defer_size, encoding)
            continue
        end = value_tell + length
        if end > size:
            raise _Fallback  # pydicom reads what there is, and warns
        if length > defer_size and tag != _CHARSET and not meta:
            value: Any = None
        elif length:
            value = encoded[value_tell:end]
        else:
            value = empty_value_for_VR(vr, raw=True)
        if tag == _CHARSET:
            encoding = convert_encodings(convert_string(value or b"", True))
        key = BaseTag(tag)
        elements[key] = RawDataElement(key, vr, length, value, value_tell, implicit, True)
        pos = end
    if meta:
        return elements, pos
    if pos != size:
        raise _Fallback  # a partial element header at the end
    return elements, pos


def _undefined(buffer: io.BytesIO, tag: int, vr: str | None, implicit: bool,
               value_tell: int, defer_size: int, encoding: Any) -> tuple[Any, int]:
    """An element of undefined length as pydicom's generator reads it, and where the
    next element starts.  The cases where pydicom looks the VR up or peeks at the
    value (implicit VR, UN) are left to pydicom entirely."""
    if vr is None or vr == "UN":
        raise _Fallback
    buffer.seek(value_tell)
    if vr == "SQ":
        seq = read_sequence(buffer, implicit, True, UNDEFINED, encoding)
        return DataElement(BaseTag(tag), vr, seq, value_tell, is_undefined_length=True), \
            buffer.tell()
    value = read_undefined_length_value(buffer, True, SequenceDelimiterTag, defer_size)
    return RawDataElement(BaseTag(tag), vr, UNDEFINED, value, value_tell, implicit, True), \
        buffer.tell()


def uid_value(ds: Any, tag: int, default: Any = None) -> Any:
    """The value of the UI element ``tag`` of ``ds`` as text (``default`` when absent),
    as pydicom decodes it: read from the bytes as read when they hold one plain value
    (ASCII, no ``\\``; trailing NULs and spaces stripped, as ``convert_UI`` does), else
    decoded by pydicom (which a check then judges).  A C-STORE reads five UIDs, and
    each pydicom decoding of one cost more than all the rest of that check.  The
    element is left as read, so the index's fingerprints and JSON cache see the bytes
    of every instance alike."""
    elem = ds._dict.get(tag)
    if elem is None:
        return default
    if elem.__class__ is RawDataElement and elem.VR in ("UI", None):
        raw = elem.value
        if raw is not None and raw.isascii() and b"\\" not in raw:
            return raw.decode("ascii").rstrip("\0 ")
    return ds[tag].value


def us_value(ds: Any, tag: int, default: Any = None) -> Any:
    """The value of the US element ``tag`` (``default`` when absent): a single value
    read in explicit VR little endian is unpacked here, anything else by pydicom; the
    element is left as read (see :func:`uid_value`)."""
    elem = ds._dict.get(tag)
    if elem is None:
        return default
    if elem.__class__ is RawDataElement and elem.VR == "US" and elem.is_little_endian:
        raw = elem.value
        if raw is not None and len(raw) == 2:
            return raw[0] | raw[1] << 8
    return ds[tag].value
