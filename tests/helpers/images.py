"""Test images: step wedges and ramps of a given bit depth (MONOCHROME2, dark first)."""

from __future__ import annotations

import numpy as np


def step_wedge(steps: int = 16, bits: int = 12, step: int = 8, rows: int | None = None
               ) -> np.ndarray:
    """``steps`` vertical bars ``step`` pixels wide running evenly from 0 to the top
    value of ``bits``, ``rows`` high (square by default); uint8 for 8 bits, else uint16."""
    values = np.rint(np.arange(steps) * ((1 << bits) - 1) / (steps - 1))
    row = np.repeat(values, step)[None, :]
    return row.repeat(rows or row.shape[1], axis=0).astype(np.uint8 if bits == 8 else np.uint16)


def ramp(rows: int = 256, cols: int = 256) -> np.ndarray:
    """12-bit horizontal ramp: black on the left, white on the right (MONOCHROME2)."""
    return np.tile(np.linspace(0, 4095, cols).astype(np.uint16), (rows, 1))
