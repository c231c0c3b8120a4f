"""The IMAGE-level attributes of a stored instance as DICOM JSON, decoding only what varies.

The index keeps every top-level attribute of an instance, bulk data and the
attributes of the levels above excepted, as DICOM JSON text (the rules of
:func:`printscp.archive.index.level_dataset`).  Having pydicom decode each element
and build the JSON was most of the CPU time of a C-STORE; yet most elements of an
instance repeat, byte for byte, in every instance of its series.  So the JSON text
of each element (``"TTTTTTTT":{...}``) is cached under what determines it:

* the tag, the VR the element is read with (and the one pydicom gives it), and
  the encoded value bytes (or, for an element decoded already, its text value);
* the data set's transfer syntax (implicit VR, byte order) and character sets;
* its Pixel Representation, from which pydicom decides the VR of ``US or SS``
  elements inside sequences.

Elements missing from the cache (in a CT series: SOP Instance UID, Instance Number,
Image Position, Slice Location...) are decoded by pydicom in their data set, so their
JSON is what :meth:`pydicom.dataset.Dataset.to_json_dict` makes; except UI, DS, IS,
DA and TM values in their strictly valid forms, whose JSON is made here, equal to
pydicom's (the tests compare them).  An element whose VR pydicom resolves from other
attributes (``US or SS`` and the like, read in implicit VR or as ``UN``), one not
read yet (deferred) and one decoded already to anything but text are converted
every time.  Bulk data is left out without being read.  The cache is bounded in
entries and in bytes.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable
from typing import Any

from pydicom import config
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.hooks import hooks
from pydicom.tag import TAG_PIXREP

#: VRs never kept in the index (bulk data).
BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
#: Longer values (as decoded text) are left out of the index.
MAX_VALUE_CHARS = 1024
#: Groups never kept: file meta information and pixel data.
SKIPPED_GROUPS = (0x0002, 0x7FE0)
#: Threshold passed to pydicom: no bulk data handler, so values are always inline.
BULK_DATA_THRESHOLD = 1 << 20

_MISS = object()
_LEFT_OUT = object()  #: bulk data whatever the value: no need to read or decode it
_UNCACHED = object()  #: to be decoded every time

#: tag, VR as read ("" if decoded), VR, value bytes (or decoded text)
Key = tuple[int, str | None, str, bytes | str]


#: Values pydicom decodes without looking at the character set or anything else, in
#: the strictly valid forms that the fast path below turns into JSON itself (so no
#: validation warning is lost).  Anything else goes through pydicom.
_UID = rb"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*"
_DS = rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_IS = rb"[+-]?[0-9]{1,11}"
_DA = rb"[0-9]{4}(?:0[1-9]|1[0-2])(?:[0-2][0-9]|3[01])"
_TM = rb"(?:[01][0-9]|2[0-3])(?:[0-5][0-9](?:(?:60|[0-5][0-9])(?:\.[0-9]{1,6})?)?)?"
_FAST_FORMS = {vr: re.compile(rb"(?:%s)(?:\\(?:%s))*%s" % (form, form, pad))
               for vr, form, pad in (("UI", _UID, rb"\x00?"), ("DS", _DS, rb" ?"),
                                     ("IS", _IS, rb" ?"), ("DA", _DA, rb" ?"),
                                     ("TM", _TM, rb" ?"))}
_FAST_MAX_BYTES = 200  #: short enough never to reach MAX_VALUE_CHARS, however split
_INT_RANGE = range(-(2**31), 2**31)


def fast_element_json(tag: int, vr: str, value: bytes) -> str | None:
    """``"TTTTTTTT":{...}`` for a UI, DS, IS, DA or TM value in a strictly valid form,
    exactly as :func:`element_json` makes it from pydicom's decoding; None when the
    value is not one of those (then pydicom decodes it)."""
    form = _FAST_FORMS.get(vr)
    if (form is None or not value or len(value) > _FAST_MAX_BYTES
            or form.fullmatch(value) is None or _decoding_configured()):
        return None
    items = value.decode("ascii").rstrip(" \x00").split("\\")
    # The JSON is written out here: the forms above hold digits, signs, dots and
    # exponents only, nothing JSON escapes, and json.dumps writes a float as repr()
    # does (json.dumps was half the time of this function).
    if vr == "DS":
        if any(len(item) > 16 for item in items):  # longer is invalid: pydicom warns
            return None
        floats = [float(item) for item in items]
        if not all(map(math.isfinite, floats)):  # 9e999: json.dumps writes Infinity
            return None
        texts = [repr(item) for item in floats]
    elif vr == "IS":
        numbers = [int(item) for item in items]
        if any(item not in _INT_RANGE for item in numbers):
            return None
        texts = [str(item) for item in numbers]
    else:
        if vr == "UI" and any(len(item) > 64 for item in items):
            return None
        texts = [f'"{item}"' for item in items]
    return f'"{tag:08X}":{{"vr":"{vr}","Value":[{",".join(texts)}]}}'


def _fast(tag: int, key: Key) -> str | None:
    """:func:`fast_element_json` for a value as read, or a UID decoded already."""
    value = key[3]
    if isinstance(value, str):
        if key[2] != "UI" or not value.isascii():
            return None
        value = value.encode("ascii")
    return fast_element_json(tag, key[2], value)


def _decoding_configured() -> bool:
    """pydicom set to decode these VRs to other types (numpy, Decimal, datetime)."""
    return bool(config.use_DS_numpy or config.use_DS_decimal or config.use_IS_numpy
                or config.datetime_conversion)


def element_json(elem: DataElement) -> str | None:
    """``"TTTTTTTT":{...}`` for ``elem``, or None when the index leaves it out."""
    vr = elem.VR
    if vr in BULK_VRS:
        return None
    if vr != "SQ":
        value = elem.value
        if len(value if isinstance(value, bytes | str) else str(value)) > MAX_VALUE_CHARS:
            return None
    body = json.dumps(elem.to_json_dict(None, BULK_DATA_THRESHOLD), separators=(",", ":"))
    return f'"{elem.tag:08X}":{body}'


class InstanceJson:
    """Builds the IMAGE-level JSON of data sets read by ``dcmread``, with a cache of
    element JSON shared by the threads storing instances."""

    def __init__(self, excluded_keywords: Iterable[str], *, max_entries: int = 50_000,
                 max_bytes: int = 16 << 20, max_value_bytes: int = 64 << 10) -> None:
        #: Tags kept at a higher level, never at IMAGE.
        self.excluded = frozenset(tag_for_keyword(kw) for kw in excluded_keywords)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_value_bytes = max_value_bytes
        #: decoding context -> (tag, VR, value bytes) -> element JSON or None (left out)
        self._cache: dict[tuple[Any, ...], dict[Key, str | None]] = {}
        self._entries = 0
        self._bytes = 0
        self._lock = threading.Lock()  # for the bookkeeping only; lookups need none

    def __call__(self, ds: Dataset) -> str:
        """The JSON object text of ``ds``'s IMAGE-level attributes."""
        context = _context(ds)
        cache = self._cache.get(context, {})
        # A raw element callback may rewrite elements from anything: no caching then.
        cacheable = config.data_element_callback is None
        excluded = self.excluded
        parts = []
        # Plain ints: pydicom's tags compare in Python, and every cache hit compares one.
        for tag, elem in sorted(zip(map(int, ds._dict), ds._dict.values(), strict=True)):
            if tag in excluded or tag >> 16 in SKIPPED_GROUPS:
                continue
            key = _key(ds, tag, elem) if cacheable else _UNCACHED
            if key is _LEFT_OUT:
                continue
            if key is _UNCACHED:
                part = element_json(ds[tag])
            else:
                part = cache.get(key, _MISS)
                if part is _MISS:
                    part = _fast(tag, key) or element_json(ds[tag])
                    self._remember(context, key, part)
            if part is not None:
                parts.append(part)
        return "{" + ",".join(parts) + "}"

    def _remember(self, context: tuple[Any, ...], key: Key, part: str | None) -> None:
        size = len(key[3]) + (len(part) if part else 0)
        if size > self.max_value_bytes:
            return
        with self._lock:
            if self._entries >= self.max_entries or self._bytes + size > self.max_bytes:
                self._cache.clear()  # a new series' values replace the old ones
                self._entries = self._bytes = 0
            self._cache.setdefault(context, {})[key] = part
            self._entries += 1
            self._bytes += size


def _context(ds: Dataset) -> tuple[Any, ...]:
    """What decoding depends on besides the element itself (the same in a series)."""
    charset = ds.original_character_set
    pixel_rep = ds._dict.get(TAG_PIXREP)
    return (ds.original_encoding,
            charset if isinstance(charset, str) else tuple(charset or ()),
            None if pixel_rep is None else pixel_rep.value)


def _key(ds: Dataset, tag: int, elem: Any) -> Any:
    """The cache key of ``elem``, or ``_LEFT_OUT`` (bulk data, whatever the value), or
    ``_UNCACHED``: for an element not read yet (deferred), one whose VR pydicom decides
    from other attributes, and one already decoded to anything but text."""
    if not isinstance(elem, RawDataElement):
        # Decoded already (by a check, or pydicom itself: Specific Character Set): the
        # bytes are gone, but a text value determines the JSON as well.
        value = elem.value
        return (tag, "", elem.VR, value) if isinstance(value, str) else _UNCACHED
    vr = read_vr = elem.VR
    if vr is None or vr == "UN":  # implicit VR, or UN: pydicom looks the VR up
        data: dict[str, Any] = {}
        hooks.raw_element_vr(elem, data, encoding=ds.original_character_set, ds=ds,
                             **hooks.raw_element_kwargs)
        vr = data["VR"]
    if vr in BULK_VRS:
        return _LEFT_OUT  # decoding keeps a bulk VR (a value of wrong length becomes UN)
    value = elem.value
    if (value is None and elem.length) or " or " in vr:  # deferred; US or SS, OB or OW...
        return _UNCACHED
    return (tag, read_vr, vr, value or b"")
