"""Benchmark: one 14INX17IN STANDARD\\4,5 film of twenty 512x512 12-bit images at 300 DPI.

Run:  python benchmarks/film_render.py [--repeat N]

Prints wall times (median of N runs, after one warm-up) for the whole chain to
PDF and to PNG, the peak RSS of each (each measured in a fresh process), and the
LUT step alone on a 4200x5100 16-bit raster against a plain numpy copy.
Targets (issue 2): PDF <= 0.6 s median, peak RSS <= 300 MB, LUT <= 3x copy.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ct_like_images(n: int = 20, size: int = 512, seed: int = 1) -> list[np.ndarray]:
    """Synthetic 12-bit CT slices: air, a body ellipse, bone ring, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    images = []
    for i in range(n):
        body = (x / 0.85) ** 2 + (y / (0.65 + 0.01 * i)) ** 2 < 1
        bone = np.abs(np.hypot(x - 0.1, y) - 0.25) < 0.04
        img = np.where(body, 1040.0, 24.0) + np.where(bone, 1400.0, 0.0)
        img += rng.normal(0, 20, img.shape)
        images.append(np.clip(img, 0, 4095).astype(np.uint16))
    return images


def film():
    from printscp.printing.film_box import FilmBox
    from printscp.printing.image_box import ImageBox

    fb = FilmBox(image_display_format="STANDARD\\4,5", film_size_id="14INX17IN")
    for i, px in enumerate(ct_like_images(), start=1):
        fb.set_image(i, ImageBox(position=i, pixels=px, bits_stored=12))
    return fb


def run_once(kind: str, out: Path) -> float:
    from printscp.printing.film_files import flate_image, write_pdf, write_png
    from printscp.printing.render import render_film

    fb = film()
    t0 = time.perf_counter()
    if kind == "pdf":
        write_pdf([render_film(fb, dpi=300, postprocess=flate_image, keep_levels=False)],
                  out / "film.pdf")
    else:
        write_png(render_film(fb, dpi=300), out / "film.png")
    return time.perf_counter() - t0


def child(kind: str, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_once(kind, Path(tmp))  # warm-up: imports, LUT tables
        times = [run_once(kind, Path(tmp)) for _ in range(repeat)]
        size = (Path(tmp) / ("film.pdf" if kind == "pdf" else "film.png")).stat().st_size
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "rss_mb": rss, "bytes": size}))


def lut_step(repeat: int) -> tuple[float, float]:
    from lut.apply import apply_lut
    from printscp.printing.profile import default_profile

    table = default_profile().table(8, 0.2, 3.0, 2000.0, 10.0)
    raster = np.random.default_rng(0).integers(0, 65536, (5100, 4200), dtype=np.uint16)
    t_lut, t_copy = [], []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        apply_lut(table, raster)
        t_lut.append(time.perf_counter() - t)
        t = time.perf_counter()
        raster.copy()
        t_copy.append(time.perf_counter() - t)
    return statistics.median(t_lut[1:]), statistics.median(t_copy[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--child", choices=["pdf", "png"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    print("film: 14INX17IN STANDARD\\4,5, 20 x 512x512 12-bit, 300 DPI "
          f"(4200x5100 px), median of {args.repeat}")
    for kind in ("pdf", "png"):
        res = json.loads(subprocess.run(
            [sys.executable, __file__, "--child", kind, "--repeat", str(args.repeat)],
            check=True, capture_output=True, text=True).stdout)
        med = statistics.median(res["times"])
        print(f"  whole chain -> {kind.upper():3s}: median {med:.3f} s "
              f"(min {min(res['times']):.3f}, max {max(res['times']):.3f}), "
              f"peak RSS {res['rss_mb']:.0f} MB, file {res['bytes'] / 1e6:.1f} MB")
    t_lut, t_copy = lut_step(args.repeat)
    print(f"  LUT step on 4200x5100 uint16 (random values): {t_lut * 1000:.1f} ms; numpy copy "
          f"{t_copy * 1000:.1f} ms; ratio {t_lut / t_copy:.2f}x")


if __name__ == "__main__":
    main()
