"""Catalog kind ``integer``: B-bit integers under a per-tensor, per-channel or per-group scale."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwdse.formats._format import Format
from hwdse.formats._scaling import groups, round_scale, scaled_split
from hwdse.formats._spec import Compute, IntegerSpec

__all__ = ["IntegerFormat", "int_compute"]


def int_compute(bits: int) -> Compute:
    """Narrowest integer multiplier class (int2, int4, int8) holding ``bits``-bit operands."""
    return "int2" if bits <= 2 else "int4" if bits <= 4 else "int8"


class IntegerFormat(Format):
    """Symmetric: levels -qmax..qmax (qmax = 2^(B-1)-1), scale = clip_ratio*amax/qmax.
    Asymmetric: levels 0..2^B-1 with an integer zero point, range [min(x,0), max(x,0)]·clip_ratio.
    """

    spec: IntegerSpec

    @property
    def qmax(self) -> int:
        return (1 << (self.spec.bits - 1)) - 1

    @property
    def bits_per_element(self) -> float:
        zero_point_bits = 0 if self.spec.symmetric else self.spec.bits
        return self.spec.bits + self.spec.scaling.overhead_bits(zero_point_bits)

    @property
    def compute(self) -> Compute:
        return int_compute(self.spec.bits)

    def values(self) -> np.ndarray:
        """Integer levels before scaling (symmetric: -qmax..qmax; asymmetric: codes 0..2^B-1)."""
        if self.spec.symmetric:
            return np.arange(-self.qmax, self.qmax + 1, dtype=np.float32)
        return np.arange(1 << self.spec.bits, dtype=np.float32)

    def _split(self, x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable]:
        """-> (levels (..., n, size), scales (..., n, 1), zero points (..., n, 1), restore), float64."""
        sc = self.spec.scaling
        if self.spec.symmetric:
            levels, scale, restore = scaled_split(x, axis, sc, self.qmax,
                                                  lambda t: np.clip(np.rint(t), -self.qmax, self.qmax) + 0.0)
            return levels, scale, np.zeros_like(scale), restore
        blocks, restore = groups(np.asarray(x, dtype=np.float32), axis, sc)
        lo = np.minimum(blocks.min(axis=-1, keepdims=True), 0).astype(np.float64) * sc.clip_ratio
        hi = np.maximum(blocks.max(axis=-1, keepdims=True), 0).astype(np.float64) * sc.clip_ratio
        top = (1 << self.spec.bits) - 1
        with np.errstate(invalid="ignore"):   # NaN/Inf groups come out NaN
            scale = round_scale((hi - lo) / top, sc.scale_format)
            zero = np.clip(np.rint(-lo / scale), 0, top)
            return np.clip(np.rint(blocks / scale) + zero, 0, top), scale, zero, restore

    def quantize(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        levels, scale, zero, restore = self._split(x, axis)
        with np.errstate(invalid="ignore"):
            return restore(((levels - zero) * scale).astype(np.float32))

    def encode(self, x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(codes ``(..., n, size)`` uint8: two's complement when symmetric, else offset by the
        zero point; scales ``(..., n)`` float32 in the scale format; zero points ``(..., n)`` uint8).
        Groups run along ``axis`` moved last (per tensor: one group); NaN groups get code 0."""
        levels, scale, zero, _ = self._split(x, axis)
        k = np.nan_to_num(levels).astype(np.int64) & ((1 << self.spec.bits) - 1)
        return k.astype(np.uint8), scale[..., 0].astype(np.float32), np.nan_to_num(zero[..., 0]).astype(np.uint8)

    def decode(self, codes: np.ndarray, scales: np.ndarray, zero_points: np.ndarray) -> np.ndarray:
        """Group values ``(..., n, size)`` (float32) from :meth:`encode`'s output."""
        c = np.asarray(codes).astype(np.int64)
        if self.spec.symmetric:
            c = np.where(c > self.qmax, c - (1 << self.spec.bits), c)
        zero = np.asarray(zero_points, dtype=np.float64)[..., None]
        return ((c - zero) * np.asarray(scales, dtype=np.float64)[..., None]).astype(np.float32)
