"""Applying a look-up table to an array, fast.

``table[values]`` converts every index to a 64-bit integer first, which for a
film-sized raster means a 170 MB temporary and four times the memory traffic of
the data itself.  Doing the gather in cache-sized chunks avoids the temporary,
and large arrays are split over two threads (numpy releases the GIL in ``take``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

#: Elements per ``np.take`` call: big enough to amortise the call, small enough to
#: keep the index temporary in L2.
CHUNK = 1 << 16
#: Arrays smaller than this are done on the calling thread.
PARALLEL_MIN = 1 << 22

_pool: ThreadPoolExecutor | None = None


def _take_range(table: NDArray, src: NDArray, dst: NDArray, start: int, stop: int) -> None:
    for i in range(start, stop, CHUNK):
        j = min(i + CHUNK, stop)
        np.take(table, src[i:j], out=dst[i:j], mode="clip")


def apply_lut(table: NDArray, values: NDArray, *, threads: int = 2) -> NDArray:
    """``table[values]`` for unsigned integer ``values``; same shape, table's dtype.

    Indices beyond the table are clipped to its last entry (callers size tables
    for the full bit depth, so this only guards against bad input).
    """
    global _pool
    if values.dtype.kind != "u":
        raise TypeError(f"LUT indices must be unsigned integers, not {values.dtype}")
    src = np.ascontiguousarray(values).reshape(-1)
    out = np.empty(values.shape, dtype=table.dtype)
    dst = out.reshape(-1)
    n = src.size
    if threads < 2 or n < PARALLEL_MIN:
        _take_range(table, src, dst, 0, n)
        return out
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lut")
    per = -(-n // threads)
    per = -(-per // CHUNK) * CHUNK
    futures = [_pool.submit(_take_range, table, src, dst, s, min(s + per, n))
               for s in range(0, n, per)]
    for f in futures:
        f.result()
    return out
