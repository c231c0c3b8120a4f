"""A small pynetdicom Print SCU for the tests, and the image items it sends.

pynetdicom's ``send_n_create`` does not return the response's Affected SOP
Instance UID (it is in the command set), so the SCU records every received
command set.  Requests go over the Grayscale Print Meta context as real clients
send them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import evt

from helpers.clients import associate
from printscp.core import uids
from printscp.outputs.print_scu import reference

META = uids.BASIC_GRAYSCALE_PRINT_META


def gray_item(pixels: np.ndarray, bits: int = 12, photometric: str = "MONOCHROME2",
              big_endian: bool = False) -> Dataset:
    """An image sequence item; pydicom writes OW bytes as given, so the byte order of
    the words must match the transfer syntax."""
    item = Dataset()
    item.SamplesPerPixel = 1
    item.PhotometricInterpretation = photometric
    item.Rows, item.Columns = pixels.shape
    item.BitsAllocated = 8 if bits == 8 else 16
    item.BitsStored = bits
    item.HighBit = bits - 1
    item.PixelRepresentation = 0
    word = ">u2" if big_endian else "<u2"
    item.PixelData = pixels.astype(np.uint8 if bits == 8 else word).tobytes()
    return item


class PrintSCU:
    def __init__(self, port: int, calling: str = "TESTSCU", called: str = "PRINTSCP",
                 contexts: tuple[str, ...] = (META, uids.PRESENTATION_LUT, uids.VERIFICATION),
                 transfer_syntax: list[str] | None = None, meta: str = META,
                 evt_handlers: list | None = None) -> None:
        self.meta = meta
        self.responses: list[Dataset] = []
        self.assoc = associate(port, *((c, transfer_syntax) if transfer_syntax else c
                                       for c in contexts),
                               calling=calling, called=called,
                               evt_handlers=[(evt.EVT_DIMSE_RECV, self._record),
                                             *(evt_handlers or [])])

    def _record(self, event: Any) -> None:
        self.responses.append(event.message.command_set)

    @property
    def last_uid(self) -> str:
        return str(self.responses[-1].AffectedSOPInstanceUID)

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()

    def __enter__(self) -> PrintSCU:
        assert self.assoc.is_established, "association refused"
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations returning (status, dataset) -----------------------------------
    def create(self, sop_class: str, ds: Dataset | None, uid: str | None = None):
        meta = None if sop_class == uids.PRESENTATION_LUT else self.meta
        return self.assoc.send_n_create(ds, sop_class, uid, meta_uid=meta)

    def set(self, sop_class: str, uid: str, ds: Dataset):
        return self.assoc.send_n_set(ds, sop_class, uid, meta_uid=self.meta)

    def action(self, sop_class: str, uid: str, action_type: int = 1):
        return self.assoc.send_n_action(None, action_type, sop_class, uid, meta_uid=self.meta)

    def delete(self, sop_class: str, uid: str):
        meta = None if sop_class == uids.PRESENTATION_LUT else self.meta
        return self.assoc.send_n_delete(sop_class, uid, meta_uid=meta)

    def get_printer(self, tags: list[int] | None = None):
        return self.assoc.send_n_get(tags or [], uids.PRINTER, uids.PRINTER_INSTANCE,
                                     meta_uid=self.meta)

    # -- the DCMTK-like sequence --------------------------------------------------
    def film_session(self, **attrs: Any) -> str:
        ds = None
        if attrs:
            ds = Dataset()
            for k, v in attrs.items():
                setattr(ds, k, v)
        st, _ = self.create(uids.BASIC_FILM_SESSION, ds)
        assert st.Status == 0, f"film session: 0x{st.Status:04X} {st.get('ErrorComment')}"
        self.session_uid = self.last_uid
        return self.session_uid

    def film_box_dataset(self, fmt: str = "STANDARD\\1,1", plut_uid: str | None = None,
                         **attrs: Any) -> Dataset:
        """A Film Box N-CREATE data set referencing this SCU's Film Session."""
        ds = Dataset()
        ds.ImageDisplayFormat = fmt
        for k, v in attrs.items():
            setattr(ds, k, v)
        ds.ReferencedFilmSessionSequence = reference(uids.BASIC_FILM_SESSION, self.session_uid)
        if plut_uid:
            ds.ReferencedPresentationLUTSequence = reference(uids.PRESENTATION_LUT, plut_uid)
        return ds

    def film_box(self, fmt: str = "STANDARD\\1,1", plut_uid: str | None = None,
                 **attrs: Any) -> tuple[str, list[str], Dataset]:
        st, rsp = self.create(uids.BASIC_FILM_BOX, self.film_box_dataset(fmt, plut_uid, **attrs))
        assert st.Status == 0, f"film box: 0x{st.Status:04X} {st.get('ErrorComment')}"
        boxes = [str(i.ReferencedSOPInstanceUID) for i in rsp.ReferencedImageBoxSequence]
        return self.last_uid, boxes, rsp

    def image(self, box_uid: str, position: int, pixels: np.ndarray, bits: int = 12,
              photometric: str = "MONOCHROME2", big_endian: bool = False, **attrs: Any):
        ds = Dataset()
        ds.ImageBoxPosition = position
        for k, v in attrs.items():
            setattr(ds, k, v)
        ds.BasicGrayscaleImageSequence = Sequence(
            [gray_item(pixels, bits, photometric, big_endian)])
        return self.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, box_uid, ds)


def color_item(rgb: np.ndarray, planar: int = 1) -> Dataset:
    """A Basic Color Image Sequence item: RGB, 8 bits, color-by-plane by default."""
    item = Dataset()
    item.SamplesPerPixel = 3
    item.PhotometricInterpretation = "RGB"
    item.PlanarConfiguration = planar
    item.Rows, item.Columns = rgb.shape[:2]
    item.BitsAllocated = 8
    item.BitsStored = 8
    item.HighBit = 7
    item.PixelRepresentation = 0
    data = rgb.transpose(2, 0, 1) if planar == 1 else rgb
    item.PixelData = np.ascontiguousarray(data, dtype=np.uint8).tobytes()
    return item
