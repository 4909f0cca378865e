"""Catalog kind ``integer``: B-bit integers under a per-tensor, per-channel or per-group scale."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwdse.formats._format import Format, Scales, per_element
from hwdse.formats._scaling import groups, round_scale, scaled_apply, scaled_fit, scaled_split
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
            levels, scale, restore = scaled_split(x, axis, sc, self.qmax, self._symmetric_element)
            return levels, scale, np.zeros_like(scale), restore
        blocks, restore = groups(np.asarray(x, dtype=np.float32), axis, sc)
        scale, zero = self._asymmetric_params(blocks)
        return self._asymmetric_levels(blocks, scale, zero), scale, zero, restore

    def _asymmetric_params(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scale, zero point), each ``(..., n, 1)`` float64, for the range [min(x,0), max(x,0)]."""
        sc, top = self.spec.scaling, (1 << self.spec.bits) - 1
        lo = np.minimum(blocks.min(axis=-1, keepdims=True), 0).astype(np.float64) * sc.clip_ratio
        hi = np.maximum(blocks.max(axis=-1, keepdims=True), 0).astype(np.float64) * sc.clip_ratio
        with np.errstate(invalid="ignore"):   # NaN/Inf groups come out NaN
            scale = round_scale((hi - lo) / top, sc.scale_format)
            return scale, np.clip(np.rint(-lo / scale), 0, top)

    def _asymmetric_levels(self, x: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.clip(np.rint(x / scale) + zero, 0, (1 << self.spec.bits) - 1)

    def quantize(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        levels, scale, zero, restore = self._split(x, axis)
        with np.errstate(invalid="ignore"):
            return restore(((levels - zero) * scale).astype(np.float32))

    @property
    def scale_block(self) -> int | None:
        return self.spec.scaling.group_size

    def fit(self, x: np.ndarray, axis: int = -1, outer: Scales | None = None) -> Scales:
        sc = self.spec.scaling
        if self.spec.symmetric:
            return Scales(self, axis, {"scale": scaled_fit(x, axis, sc, self.qmax)})
        blocks, restore = groups(np.asarray(x, dtype=np.float32), axis, sc)
        scale, zero = self._asymmetric_params(blocks)
        return Scales(self, axis, {"scale": per_element(scale, blocks.shape, restore),
                                   "zero": per_element(zero, blocks.shape, restore)})

    def _apply(self, x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None = None) -> np.ndarray:
        if self.spec.symmetric:
            return scaled_apply(x, scale, self._symmetric_element)
        with np.errstate(invalid="ignore"):
            return ((self._asymmetric_levels(x, scale, zero) - zero) * scale).astype(np.float32)

    def _symmetric_element(self, t: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(t), -self.qmax, self.qmax) + 0.0

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
