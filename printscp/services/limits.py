"""[limits] as the services apply them: what each request's data set may cost.

Sizes are enforced while a message is assembled (:mod:`printscp.net.pdata`): past its
limit a data set is counted and dropped, never buffered, and the request is refused
once its last fragment is in (the peer may not be interrupted mid-message):

======================================  =======================================
C-STORE-RQ (``max_dataset_mb``)         0xA700 Refused: Out of Resources
Image Box N-SET-RQ (``max_image_box_mb``)  0xC605 Insufficient memory in printer
                                        to store the image (PS3.4 H.4.3)
any other request (``max_dataset_mb``)  0xA700 (C-services), 0x0213 Resource
                                        limitation (N-services, PS3.7 C.4)
======================================  =======================================

The archive checks the rest on the bytes before decoding them (sequence nesting, declared
pixel size: :class:`printscp.core.limits.DataSetLimits`); Print Management checks image
boxes per film box, film boxes per session and declared pixel size in its SOP Classes.
"""

from __future__ import annotations

from typing import Any

from printscp.config import NodeConfig
from printscp.core import status, uids
from printscp.core.limits import DataSetLimits
from printscp.net import pdata

IMAGE_BOX_CLASSES = frozenset((uids.BASIC_GRAYSCALE_IMAGE_BOX, uids.BASIC_COLOR_IMAGE_BOX))
_N_SET = 0x0120


def archive_limits(config: NodeConfig) -> DataSetLimits:
    """The archive's checks of a C-STORE data set."""
    limits = config.limits
    return DataSetLimits(max_bytes=limits.max_dataset_mb << 20,
                         max_pixel_bytes=limits.max_pixel_mb << 20,
                         max_depth=limits.max_sequence_depth)


def install(ae: Any, config: NodeConfig) -> None:
    """Limit the data sets sent on every association of ``ae`` (the node's AE)."""
    limits = config.limits
    store = limits.max_dataset_mb << 20
    image_box = limits.max_image_box_mb << 20

    def limit(assoc: Any, command: dict[int, bytes]) -> pdata.SizeLimit | None:
        field = pdata.command_us(command, pdata.COMMAND_FIELD) or 0
        requestor = getattr(assoc, "requestor", None)
        peer = f"{str(getattr(requestor, 'ae_title', '')).strip()}@" \
            f"{getattr(requestor, 'address', '')}"
        if field == pdata.C_STORE_RQ:
            return pdata.SizeLimit(store, status.OUT_OF_RESOURCES, "C-STORE data set", peer)
        if field == _N_SET and pdata.command_text(
                command, pdata.REQUESTED_SOP_CLASS) in IMAGE_BOX_CLASSES:
            return pdata.SizeLimit(image_box, status.INSUFFICIENT_MEMORY,
                                   "Image Box N-SET data set", peer)
        if field & 0x8000:
            return None  # a response (a C-GET's C-STORE-RSP has no data set anyway)
        name = pdata.command_name(field)
        code = status.RESOURCE_LIMITATION if name.startswith("N-") else \
            status.OUT_OF_RESOURCES
        return pdata.SizeLimit(store, code, f"{name} data set", peer)

    pdata.limit_data_sets(ae, limit)
