"""Reference sequences encoded by hand (print_management.references) read back as the
pydicom-built ones, in each transfer syntax a Print SCU may negotiate."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from printscp.core import uids
from printscp.services.print_management.references import set_references

BOXES = [(uids.BASIC_GRAYSCALE_IMAGE_BOX, f"1.2.826.0.1.3680043.8.498.{n}") for n in
         (1, 22, 333, 4444, 12345678901234567890)]  # odd and even lengths


def response(encoding):
    ds = Dataset()
    ds.ImageDisplayFormat = "STANDARD\\4,5"
    set_references(ds, "ReferencedFilmSessionSequence",
                   [(uids.BASIC_FILM_SESSION, "1.2.3.4")], encoding)
    set_references(ds, "ReferencedImageBoxSequence", BOXES, encoding)
    ds.MaxDensity = 300
    return ds


@pytest.mark.parametrize("implicit, little", [(False, True), (True, True), (False, False)])
def test_hand_encoded_references_read_back_as_pydicom_built_ones(implicit, little):
    fast = encode(response((implicit, little)), implicit, little)
    plain = encode(response(None), implicit, little)
    assert fast == plain  # byte for byte
    ds = decode(io.BytesIO(fast), implicit, little)
    assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID)
            for i in ds.ReferencedImageBoxSequence] == BOXES
    assert ds.MaxDensity == 300


def test_a_response_encoded_in_another_syntax_than_foreseen_is_still_right():
    ds = response((False, True))  # foreseen: explicit VR little endian
    got = decode(io.BytesIO(encode(ds, True, True)), True, True)
    assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID)
            for i in got.ReferencedImageBoxSequence] == BOXES
