"""Basic Color Print Management: color film boxes, color image boxes, colors on the film."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.films import pdf_page
from helpers.nodes import printed_jobs
from helpers.print_scu import PrintSCU, color_item
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from printscp.core import status, uids

COLOR = uids.BASIC_COLOR_PRINT_META
COLORS = [(255, 0, 0), (0, 200, 0), (20, 40, 230), (250, 220, 10)]

pytestmark = pytest.mark.slow  # every test runs a node


def quadrants(size: int = 64) -> np.ndarray:
    """Four flat colors in the quadrants of a square RGB image."""
    rgb = np.zeros((size, size, 3), np.uint8)
    h = size // 2
    for (r0, c0), color in zip([(0, 0), (0, h), (h, 0), (h, h)], COLORS, strict=True):
        rgb[r0:r0 + h, c0:c0 + h] = color
    return rgb


def print_color(node, **image_attrs) -> dict:
    with PrintSCU(node.port, contexts=(COLOR,), meta=COLOR) as scu:
        scu.film_session()
        fb, boxes, rsp = scu.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN")
        assert {i.ReferencedSOPClassUID for i in rsp.ReferencedImageBoxSequence} == {
            uids.BASIC_COLOR_IMAGE_BOX}
        ds = Dataset()
        ds.ImageBoxPosition = 1
        for k, v in image_attrs.items():
            setattr(ds, k, v)
        ds.BasicColorImageSequence = Sequence([color_item(quadrants())])
        st, _ = scu.set(uids.BASIC_COLOR_IMAGE_BOX, boxes[0], ds)
        assert st.Status == 0, st
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
    [job] = printed_jobs(node)
    return job


@pytest.mark.poppler("pdftoppm")
@pytest.mark.parametrize("polarity, expect", [("NORMAL", COLORS),
                                              ("REVERSE", [tuple(255 - c for c in rgb)
                                                           for rgb in COLORS])])
def test_color_pattern_prints_with_its_colors(node, polarity, expect):
    job = print_color(node, Polarity=polarity)
    assert job["status"] == "DONE"
    assert job["films"][0]["image_boxes"][0]["photometric_interpretation"] == "RGB"
    page = pdf_page(job["output"], 20, color=True).astype(int)
    # The square image is centred on the 8x10 in film: sample each quadrant's centre.
    h, w = page.shape[:2]
    side = min(w, h) - 20
    x0, y0 = (w - side) // 2, (h - side) // 2
    centres = [(y0 + side // 4, x0 + side // 4), (y0 + side // 4, x0 + 3 * side // 4),
               (y0 + 3 * side // 4, x0 + side // 4), (y0 + 3 * side // 4, x0 + 3 * side // 4)]
    for (y, x), rgb in zip(centres, expect, strict=True):
        assert np.abs(page[y, x] - np.array(rgb)).max() <= 2, (page[y, x], rgb)


def test_color_box_refuses_grayscale_sequence_and_gray_class(node):
    with PrintSCU(node.port, contexts=(COLOR,), meta=COLOR) as scu:
        scu.film_session()
        _, boxes, _ = scu.film_box()
        ds = Dataset()
        ds.ImageBoxPosition = 1
        item = color_item(quadrants())
        ds.BasicGrayscaleImageSequence = Sequence([item])
        st, _ = scu.set(uids.BASIC_COLOR_IMAGE_BOX, boxes[0], ds)
        assert st.Status == status.NO_SUCH_ATTRIBUTE
        assert "BasicGrayscaleImageSequence" in st.ErrorComment
        del ds.BasicGrayscaleImageSequence
        ds.BasicColorImageSequence = Sequence([item])
        st, _ = scu.set(uids.BASIC_GRAYSCALE_IMAGE_BOX, boxes[0], ds)
        assert st.Status == status.CLASS_INSTANCE_CONFLICT
        item.SamplesPerPixel = 1
        st, _ = scu.set(uids.BASIC_COLOR_IMAGE_BOX, boxes[0], ds)
        assert st.Status == status.INVALID_ATTRIBUTE_VALUE and "SamplesPerPixel" in st.ErrorComment


def test_color_by_pixel_data_also_prints(node):
    with PrintSCU(node.port, contexts=(COLOR,), meta=COLOR) as scu:
        scu.film_session()
        fb, boxes, _ = scu.film_box()
        ds = Dataset()
        ds.ImageBoxPosition = 1
        ds.BasicColorImageSequence = Sequence([color_item(quadrants(), planar=0)])
        assert scu.set(uids.BASIC_COLOR_IMAGE_BOX, boxes[0], ds)[0].Status == 0
        assert scu.action(uids.BASIC_FILM_BOX, fb)[0].Status == 0
