"""Film objects to plain records and back, for the durable spool.

A record holds the attribute values as the standard spells them (strings and
integers, JSON-safe) plus the pixel arrays by name, so a job written before a
crash is rebuilt by the same validating constructors after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from printscp.printing.display_format import Cell
from printscp.printing.film_box import FilmBox
from printscp.printing.film_session import FilmSession
from printscp.printing.image_box import ImageBox
from printscp.printing.presentation_lut import PresentationLUT


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if hasattr(value, "value") else value
    if hasattr(value, "value"):  # enums
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return str(value)


def session_record(session: FilmSession) -> dict[str, Any]:
    keys = ("number_of_copies", "print_priority", "medium_type", "film_destination",
            "film_session_label", "memory_allocation", "owner_id")
    return {k: _plain(getattr(session, k)) for k in keys}


def plut_record(plut: PresentationLUT | None, arrays: dict[str, NDArray], name: str
                ) -> dict[str, Any] | None:
    if plut is None:
        return None
    if plut.shape is not None:
        return {"shape": plut.shape.value}
    arrays[name] = np.asarray(plut.lut_data)
    return {"lut_descriptor": list(plut.lut_descriptor or ()), "lut_data": name,
            "lut_explanation": plut.lut_explanation}


def film_box_record(fb: FilmBox, arrays: dict[str, NDArray], prefix: str,
                    staged: dict[int, str] | None = None) -> dict[str, Any]:
    """The record of ``fb``; its pixel arrays go into ``arrays`` by name (``prefix``
    ``-box<position>``), except those ``staged`` names already (Image Box Position ->
    the name under which the job's pixel file holds them, see
    :mod:`printscp.jobs.staging`), which the record refers to by that name."""
    keys = ("film_orientation", "film_size_id", "magnification_type", "smoothing_type",
            "border_density", "empty_image_density", "min_density", "max_density", "trim",
            "configuration_information", "illumination", "reflected_ambient_light",
            "requested_resolution_id", "annotation_display_format_id", "annotation_boxes")
    record: dict[str, Any] = {k: _plain(getattr(fb, k)) for k in keys}
    record["image_display_format"] = str(fb.image_display_format)
    fmt = str(fb.image_display_format)
    if fb.custom_layouts and fmt in fb.custom_layouts:  # SLIDE, SUPERSLIDE, CUSTOM\i
        record["custom_layouts"] = {fmt: [[c.x, c.y, c.width, c.height]
                                          for c in fb.custom_layouts[fmt]]}
    record["presentation_lut"] = plut_record(fb.presentation_lut, arrays, f"{prefix}-plut")
    record["annotations"] = {str(k): v for k, v in fb.annotations.items()}
    boxes = []
    for box in fb.image_boxes:
        b = {k: _plain(getattr(box, k)) for k in (
            "position", "photometric_interpretation", "bits_stored", "polarity",
            "magnification_type", "smoothing_type", "configuration_information",
            "requested_image_size", "requested_decimate_crop_behavior")}
        b["pixel_aspect_ratio"] = list(box.pixel_aspect_ratio)
        if box.pixels is not None:
            name = (staged or {}).get(box.position)
            if name is None:
                name = f"{prefix}-box{box.position}"
                arrays[name] = box.pixels
            b["pixels"] = name
        boxes.append(b)
    record["image_boxes"] = boxes
    return record


def film_box_from_record(record: dict[str, Any], arrays: dict[str, NDArray]) -> FilmBox:
    data = dict(record)
    boxes = data.pop("image_boxes")
    annotations = {int(k): v for k, v in data.pop("annotations", {}).items()}
    plut = data.pop("presentation_lut", None)
    layouts = {fmt: tuple(Cell(*c) for c in cells)
               for fmt, cells in data.pop("custom_layouts", {}).items()} or None
    if plut is not None:
        plut = dict(plut)
        if "lut_data" in plut:
            plut["lut_data"] = arrays[plut["lut_data"]]
            plut["lut_descriptor"] = tuple(plut["lut_descriptor"])
        plut = PresentationLUT(**plut)
    image_boxes = []
    for b in boxes:
        b = dict(b)
        name = b.pop("pixels", None)
        b["pixel_aspect_ratio"] = tuple(b["pixel_aspect_ratio"])
        image_boxes.append(ImageBox(pixels=arrays[name] if name else None, **b))
    return FilmBox(presentation_lut=plut, image_boxes=image_boxes, annotations=annotations,
                   custom_layouts=layouts, **data)
