"""Catalog kind ``flint`` and ANT's grids and per-tensor type selection (Guo et al., MICRO 2022).

Unsigned B-bit flint: codes below 2^(B-1) are plain integers; an upper-half code with n
leading ones (n < B) is 2^e + low·2^(e-mb) with e = B-2+n, mb = B-1-n mantissa bits; all ones
is 2^(2B-2). Signed flint is sign-magnitude over (B-1)-bit unsigned flint. Quantization
follows the ANT reference (clevercool/ANT-Quantization @ bc84067, ``quant_modules.py`` and
``quant_kernel.cu``): scale = alpha / max(grid), nearest grid point with ties to the larger
value, out-of-range values clamp, alpha = amax·i/100 searched for the lowest MSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hwdse.formats._format import Format, Scales, per_element, to_blocks
from hwdse.formats._integer import int_compute
from hwdse.formats._spec import Compute, FlintSpec

__all__ = ["FlintFormat", "flint_decode", "grid", "grid_quantize", "clip_search", "AntChoice", "ant_select"]

GridType = Literal["int", "flint", "pot"]


def flint_decode(codes: np.ndarray, bits: int, signed: bool = False) -> np.ndarray:
    """Values (float64, integer units) of ``bits``-bit flint codes."""
    c = np.asarray(codes).astype(np.int64)
    if signed:
        mag = flint_decode(c & ((1 << (bits - 1)) - 1), bits - 1)
        return np.where(c >> (bits - 1) & 1, -mag, mag)
    n = np.zeros_like(c)                        # leading ones of the B-bit code
    run = np.ones_like(c, dtype=bool)
    for pos in range(bits - 1, -1, -1):
        run &= (c >> pos & 1).astype(bool)
        n += run
    e = bits - 2 + n
    mb = np.maximum(bits - 1 - n, 0)
    upper = np.ldexp(1.0, e) + (c & ((1 << mb) - 1)) * np.ldexp(1.0, e - mb)
    upper = np.where(n == bits, 2.0 ** (2 * bits - 2), upper)
    return np.where(c < 1 << (bits - 1), c, upper).astype(np.float64)


def grid(kind: GridType, bits: int, signed: bool = True) -> np.ndarray:
    """Sorted distinct values of an ANT grid in integer units (float64).

    int: -2^(B-1)..2^(B-1)-1 (signed, as ANT) or 0..2^B-1; flint: as above;
    pot: 0 and ±2^0..2^(2^(B-1)-2) (signed) or 0, 2^0..2^(2^B-2).
    """
    if kind == "flint":
        return np.unique(flint_decode(np.arange(1 << bits), bits, signed)) + 0.0   # one (positive) zero
    if kind == "int":
        lo = -(1 << (bits - 1)) if signed else 0
        return np.arange(lo, (1 << (bits - 1)) if signed else 1 << bits, dtype=np.float64)
    top = (1 << (bits - 1 if signed else bits)) - 2
    mags = np.concatenate([[0.0], np.ldexp(1.0, np.arange(top + 1))])
    return np.unique(np.concatenate([-mags, mags]) if signed else mags)


def grid_quantize(x: np.ndarray, values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Nearest point of ``values·alpha/max(values)`` (ties to the larger, ends clamp), float64."""
    scale = np.asarray(alpha, dtype=np.float64) / values[-1]
    mids = (values[1:] + values[:-1]) / 2
    return values[np.searchsorted(mids, x / scale, side="right")] * scale


def clip_search(rows: np.ndarray, values: np.ndarray, pct: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``rows`` (..., n): (best alpha, its MSE) over alpha = amax·i/100, i in [lo, hi)."""
    amax = np.max(np.abs(rows), axis=-1, keepdims=True).astype(np.float64)
    amax = np.where(amax > 0, amax, 1.0)
    best_alpha, best_mse = amax, np.full(amax.shape, np.inf)
    for i in range(*pct):
        alpha = amax * i / 100
        mse = np.mean((grid_quantize(rows, values, alpha) - rows) ** 2, axis=-1, keepdims=True)
        better = mse < best_mse
        best_alpha, best_mse = np.where(better, alpha, best_alpha), np.where(better, mse, best_mse)
    return best_alpha, best_mse


def _rows(x: np.ndarray, axis: int, granularity: str):
    x = np.asarray(x, dtype=np.float32)
    if granularity == "tensor":
        return x.reshape(1, -1).astype(np.float64), lambda y: y.reshape(x.shape)
    rows, restore = to_blocks(x, axis, None)
    return rows.astype(np.float64), restore


@dataclass(frozen=True)
class AntChoice:
    """ANT's pick for one tensor: grid type, its MSE over the tensor and the quantized tensor."""

    kind: GridType
    mse: float
    quantized: np.ndarray


def ant_select(x: np.ndarray, bits: int, kinds: tuple[GridType, ...] = ("int", "flint", "pot"),
               signed: bool = True, granularity: str = "tensor", axis: int = -1,
               clip_search_pct: tuple[int, int] = (75, 150)) -> AntChoice:
    """ANT per-tensor type selection: the grid with the lowest MSE after each one's clip search
    (per-channel scales: the channels' MSEs summed, as in the reference). Above 6 bits ANT forces int."""
    rows, restore = _rows(x, axis, granularity)
    searched = {}
    for kind in ("int",) if bits > 6 else kinds:
        values = grid(kind, bits, signed)
        alpha, row_mse = clip_search(rows, values, clip_search_pct)
        searched[kind] = (float(np.mean(row_mse)), values, alpha)   # equal-length rows: the tensor's MSE
    best = min(searched, key=lambda k: searched[k][0])
    tensor_mse, values, alpha = searched[best]
    return AntChoice(best, tensor_mse, restore(grid_quantize(rows, values, alpha).astype(np.float32)))


class FlintFormat(Format):
    """Flint elements under an ANT clip-searched per-tensor or per-channel scale."""

    spec: FlintSpec

    @property
    def bits_per_element(self) -> float:
        return float(self.spec.bits)

    @property
    def compute(self) -> Compute:
        """Integer class of the same width; a flint decoder feeds the integer MAC (see _cost)."""
        return int_compute(self.spec.bits)

    def values(self) -> np.ndarray:
        """Distinct values in integer units (signed 4-bit: 0, ±1, 2, 3, 4, 6, 8, 16)."""
        return grid("flint", self.spec.bits, self.spec.signed).astype(np.float32)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Values (integer units, float32) of flint codes (sign-magnitude when signed)."""
        return flint_decode(codes, self.spec.bits, self.spec.signed).astype(np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Codes (uint8) of the grid points nearest to ``x`` in integer units (ties up, clamped)."""
        codes = np.arange(1 << self.spec.bits)
        table = flint_decode(codes, self.spec.bits, self.spec.signed)
        order = np.lexsort((codes, table))          # per distinct value keep the smallest code (+0)
        first = np.r_[True, np.diff(table[order]) != 0]
        values, value_codes = table[order][first], codes[order][first]
        q = grid_quantize(np.asarray(x, dtype=np.float64), values, values[-1])
        return value_codes[np.searchsorted(values, q)].astype(np.uint8)

    def quantize(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        rows, restore = _rows(x, axis, self.spec.granularity)
        values = grid("flint", self.spec.bits, self.spec.signed)
        alpha, _ = clip_search(rows, values, self.spec.clip_search_pct)
        return restore(grid_quantize(rows, values, alpha).astype(np.float32))

    @property
    def scale_block(self) -> None:
        return None

    def fit(self, x: np.ndarray, axis: int = -1, outer: Scales | None = None) -> Scales:
        rows, restore = _rows(x, axis, self.spec.granularity)
        alpha, _ = clip_search(rows, grid("flint", self.spec.bits, self.spec.signed), self.spec.clip_search_pct)
        return Scales(self, axis, {"alpha": per_element(alpha, rows.shape, restore)})

    def _apply(self, x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        values = grid("flint", self.spec.bits, self.spec.signed)
        return grid_quantize(np.asarray(x, dtype=np.float64), values, alpha).astype(np.float32)
