"""Catalog kind ``mx``: OCP Microscaling v1.0 block formats (MXFP8/6/4, MXINT8, and variants).

Per block of k elements along the axis: X = 2^e with e = floor(log2(amax)) - emax_elem (exact,
from the float's exponent field), clamped to [-127, 127] and stored as E8M0 (byte e + 127);
an all-zero block gets byte 0x00; a NaN/Inf in the block makes the scale 0xFF (NaN) and the
whole block NaN. Elements are v / X rounded to nearest-even and saturated to +-max.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwdse.formats import _minifloat as mf
from hwdse.formats._format import Format, Scales, per_element, to_blocks
from hwdse.formats._integer import int_compute
from hwdse.formats._scaling import pow2_exponent
from hwdse.formats._spec import Compute, FloatElement, MXSpec

__all__ = ["MXFormat"]

_SCALE_BITS, _E8M0_BIAS, _E8M0_NAN = 8, 127, 255


class MXFormat(Format):
    """One shared E8M0 scale per ``block_size`` elements; ``scale_rule`` picks the exponent:
    floor (OCP), ceil, even (round amax to the element mantissa first) or rceil (NVIDIA:
    2^ceil(log2(amax/elem_max)), never clips)."""

    spec: MXSpec

    @property
    def _is_float(self) -> bool:
        return isinstance(self.spec.element, FloatElement)

    @property
    def element_max(self) -> float:
        el = self.spec.element
        return mf.limits(el).max_normal if self._is_float else el.k_max / 2.0**el.frac_bits

    @property
    def emax_elem(self) -> int:
        """Unbiased exponent of the element's largest normal (MXINT8: 0)."""
        el = self.spec.element
        return mf.limits(el).emax if self._is_float else el.bits - 2 - el.frac_bits

    @property
    def bits_per_element(self) -> float:
        return self.spec.element.bits + _SCALE_BITS / self.spec.block_size

    @property
    def compute(self) -> Compute:
        el = self.spec.element
        return mf.float_compute(el) if self._is_float else int_compute(el.bits)

    def values(self) -> np.ndarray:
        """Element values (before the block scale)."""
        el = self.spec.element
        if self._is_float:
            return mf.values(el)
        return (np.arange(el.k_min, el.k_max + 1) / 2.0**el.frac_bits).astype(np.float32)

    def _exponent(self, amax: np.ndarray) -> np.ndarray:
        """Shared exponent for positive finite block maxima (before clamping)."""
        rule, emax = self.spec.scale_rule, self.emax_elem
        if rule == "rceil":
            return pow2_exponent(amax / self.element_max, ceil=True)
        if rule == "even":
            el = self.spec.element
            m = el.man_bits if self._is_float else el.bits - 2
            f, ex = np.frexp(amax)
            amax = np.ldexp(np.rint(np.ldexp(f, m + 1)), ex - m - 1)
        return pow2_exponent(amax, ceil=rule == "ceil") - emax

    def _element(self, t: np.ndarray) -> np.ndarray:
        el = self.spec.element
        if self._is_float:
            return mf.cast(t, el, saturate=True)
        k = np.clip(np.rint(np.ldexp(t, el.frac_bits)), el.k_min, el.k_max) + 0.0   # + 0.0: no -0 in two's complement
        return (k / 2.0**el.frac_bits).astype(np.float32)

    def _split(self, x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable]:
        """Blocks -> (scale exponents (..., n, 1), NaN-block mask, elements (..., n, k), restore)."""
        blocks, restore = to_blocks(np.asarray(x, dtype=np.float32), axis, self.spec.block_size)
        e, bad = self._block_exponent(blocks)
        return e, bad, self._elements(blocks, e, bad), restore

    def _block_exponent(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(E8M0 exponents, NaN-block mask), each ``(..., n, 1)``."""
        amax = np.max(np.abs(blocks), axis=-1, keepdims=True).astype(np.float64)
        bad = ~np.isfinite(amax)
        e = self._exponent(np.where(bad | (amax == 0), 1.0, amax))
        return np.where(amax == 0, -_E8M0_BIAS, np.clip(e, -_E8M0_BIAS, _E8M0_BIAS)), bad

    def _elements(self, x: np.ndarray, e: np.ndarray, bad: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            elems = self._element(x.astype(np.float64) * np.ldexp(1.0, -e))
        return np.where(bad, np.float32(np.nan), elems)

    def quantize(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        e, _, elems, restore = self._split(x, axis)
        return restore((elems.astype(np.float64) * np.ldexp(1.0, e)).astype(np.float32))

    @property
    def scale_block(self) -> int:
        return self.spec.block_size

    def fit(self, x: np.ndarray, axis: int = -1, outer: Scales | None = None) -> Scales:
        blocks, restore = to_blocks(np.asarray(x, dtype=np.float32), axis, self.spec.block_size)
        e, bad = self._block_exponent(blocks)
        return Scales(self, axis, {"e": per_element(e, blocks.shape, restore),
                                   "bad": per_element(bad, blocks.shape, restore)})

    def _apply(self, x: np.ndarray, e: np.ndarray, bad: np.ndarray) -> np.ndarray:
        return (self._elements(x, e, bad).astype(np.float64) * np.ldexp(1.0, e)).astype(np.float32)

    def encode(self, x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """(E8M0 scale bytes ``(..., n_blocks)``, element codes ``(..., n_blocks, k)``), both uint8;
        blocks run along ``axis`` moved last, a ragged tail padded. NaN blocks get element code 0."""
        e, bad, elems, _ = self._split(x, axis)
        scales = np.where(bad, _E8M0_NAN, e + _E8M0_BIAS).astype(np.uint8)[..., 0]
        elems = np.where(bad, 0, elems)
        el = self.spec.element
        if self._is_float:
            return scales, mf.encode(elems, el, saturate=True).astype(np.uint8)
        k = np.rint(np.ldexp(elems.astype(np.float64), el.frac_bits)).astype(np.int64)
        return scales, (k & ((1 << el.bits) - 1)).astype(np.uint8)

    def decode(self, scales: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Block values ``(..., n_blocks, k)`` (float32) from :meth:`encode`'s output."""
        el = self.spec.element
        c = np.asarray(codes).astype(np.int64)
        if self._is_float:
            p = mf.decode(c, el).astype(np.float64)
        else:
            p = np.where(c >= 1 << (el.bits - 1), c - (1 << el.bits), c) / 2.0**el.frac_bits
        s = np.asarray(scales).astype(np.int64)[..., None]
        x = np.where(s == _E8M0_NAN, np.nan, np.ldexp(1.0, s - _E8M0_BIAS))
        return (p * x).astype(np.float32)
