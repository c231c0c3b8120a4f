"""Film previews: rendered from the stored job, at the width asked, cached."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_job_control import film_job

from printscp.jobs import render as job_render
from printscp.jobs.control import JobNotFound
from printscp.jobs.preview import film_preview, thumbnail
from printscp.jobs.spool import Spool, write_job


def test_preview_of_a_white_and_a_black_image(tmp_path):
    # STANDARD\2,1: position 1 on the left, 2 on the right.  4095 is white (MONOCHROME2).
    job, arrays = film_job(values=(4095, 0))
    s = Spool(tmp_path, job_render.render_job)
    s.start()
    s.submit(job, arrays)
    assert s.wait_idle(30)
    s.stop()
    path = film_preview(tmp_path, job.job_id, 0, 400)
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert abs(img.shape[1] - 400) <= 1
    h, w = img.shape
    left = img[h // 3: 2 * h // 3, w // 8: 3 * w // 8]
    right = img[h // 3: 2 * h // 3, 5 * w // 8: 7 * w // 8]
    assert left.mean() > 200 and right.mean() < 60  # white left, black right
    # Cached: the same file, not rendered again.
    mtime = path.stat().st_mtime_ns
    assert film_preview(tmp_path, job.job_id, 0, 400) == path
    assert path.stat().st_mtime_ns == mtime
    assert path.parent == tmp_path / "previews" / job.job_id
    # Widths are clamped; the thumbnail is 160 wide.
    assert abs(Image.open(film_preview(tmp_path, job.job_id, 0, 10)).width - 64) <= 1
    assert abs(Image.open(film_preview(tmp_path, job.job_id, 0, 99999)).width - 2048) <= 1
    assert abs(Image.open(thumbnail(tmp_path, job.job_id)).width - 160) <= 1


def test_preview_of_a_spooled_job_and_errors(tmp_path):
    job, arrays = film_job(values=(4095,))
    (tmp_path / "spool").mkdir()
    write_job(tmp_path / "spool", job, arrays)  # pending: rendered from the spool
    assert film_preview(tmp_path, job.job_id, 0, 200).is_file()
    with pytest.raises(IndexError):
        film_preview(tmp_path, job.job_id, 1, 200)
    with pytest.raises(JobNotFound):
        film_preview(tmp_path, "20200101T000000000000Z-0000beef", 0, 200)


def test_previews_of_a_14x17_film_at_several_widths(tmp_path):
    """The benchmark's film (benchmarks/console.py times it): each width is its own
    rendering, as wide as asked, the film's aspect kept."""
    from PIL import Image

    from printscp.printing.film_box import FilmBox
    from printscp.printing.image_box import ImageBox
    from printscp.printing.records import film_box_record

    job, _ = film_job()
    arrays: dict = {}
    rng = np.random.default_rng(1)
    fb = FilmBox(image_display_format="STANDARD\\2,2", film_size_id="14INX17IN",
                 film_orientation="PORTRAIT",
                 image_boxes=[ImageBox(position=i, bits_stored=12, pixels=rng.integers(
                     0, 4096, (512, 512), dtype=np.uint16)) for i in range(1, 5)])
    job.films = [film_box_record(fb, arrays, "film1")]
    (tmp_path / "spool").mkdir()
    write_job(tmp_path / "spool", job, arrays)
    paths = {width: film_preview(tmp_path, job.job_id, 0, width) for width in (800, 801, 802)}
    assert len(set(paths.values())) == 3
    for width, path in paths.items():
        with Image.open(path) as png:
            assert png.width == width
            assert abs(png.height / png.width - 17 / 14) < 0.01
