"""Catalog kind ``nvfp4``: two-level block scaling (NVIDIA NVFP4 and variants).

Follows torchao 0.18 ``nvfp4_quantize`` and ``dequantize`` (TransformerEngine/ModelOpt
semantics) in the same float32 operation order, which decides ties:

    s_g  = amax(tensor) / (scale_max * elem_max)            (1 when tensor_scale is off)
    s_b  = scale_RNE(clamp(amax(block) / elem_max / s_g, scale_min_normal, scale_max))
    q    = elem_RNE(clamp(x * ((1 / s_g) / s_b), -elem_max, elem_max))
    x'   = q * (s_b * s_g)

A block holding NaN or Inf becomes NaN (its scale is the E4M3 NaN) and is left out of the
tensor amax, as MX does with its NaN scale; an all-zero tensor uses s_g = 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwdse.formats import _minifloat as mf
from hwdse.formats._format import Format, Scales, per_element, to_blocks
from hwdse.formats._spec import Compute, NVFP4Spec

__all__ = ["NVFP4Format"]

_F32 = np.float32


class NVFP4Format(Format):
    """E2M1 elements, an E4M3 scale per 16 elements, an FP32 per-tensor scale (defaults)."""

    spec: NVFP4Spec

    @property
    def bits_per_element(self) -> float:
        return self.spec.element.bits + self.spec.scale.bits / self.spec.block_size

    @property
    def compute(self) -> Compute:
        return mf.float_compute(self.spec.element)

    def values(self) -> np.ndarray:
        """Element values (before the scales)."""
        return mf.values(self.spec.element)

    def _split(self, x: np.ndarray, axis: int) -> tuple[np.float32, np.ndarray, np.ndarray, Callable]:
        """-> (tensor scale, block scales (..., n, 1), elements (..., n, k), restore), float32."""
        blocks, restore = to_blocks(np.asarray(x, dtype=_F32), axis, self.spec.block_size)
        s_g, s_b = self._scales(blocks)
        return s_g, s_b, self._elements(blocks, s_g, s_b), restore

    def _scales(self, blocks: np.ndarray, s_g: np.float32 | None = None) -> tuple[np.float32, np.ndarray]:
        """(tensor scale, block scales ``(..., n, 1)``); ``s_g`` given: keep that tensor scale."""
        el, sc = mf.limits(self.spec.element), mf.limits(self.spec.scale)
        amax = np.max(np.abs(blocks), axis=-1, keepdims=True)
        bad = ~np.isfinite(amax)
        if s_g is None:
            finite_amax = np.max(amax[~bad], initial=0.0)
            s_g = _F32(1.0)
            if self.spec.tensor_scale and finite_amax > 0:
                s_g = _F32(finite_amax) / _F32(sc.max_normal * el.max_normal)
        s_b = amax / _F32(el.max_normal)
        s_b = mf.cast(np.clip(s_b / s_g, _F32(sc.min_normal), _F32(sc.max_normal)), self.spec.scale, saturate=True)
        return s_g, np.where(bad, _F32(np.nan), s_b)

    def _elements(self, x: np.ndarray, s_g: np.float32, s_b: np.ndarray) -> np.ndarray:
        lim = mf.limits(self.spec.element)
        with np.errstate(invalid="ignore"):
            t = np.clip(x * ((_F32(1.0) / s_g) / s_b), _F32(-lim.max_normal), _F32(lim.max_normal))
        return mf.cast(t, self.spec.element, saturate=True)

    @property
    def scale_block(self) -> int:
        return self.spec.block_size

    def fit(self, x: np.ndarray, axis: int = -1, outer: Scales | None = None) -> Scales:
        blocks, restore = to_blocks(np.asarray(x, dtype=_F32), axis, self.spec.block_size)
        s_g, s_b = self._scales(blocks, None if outer is None else outer.params["s_g"])
        return Scales(self, axis, {"s_g": s_g, "s_b": per_element(s_b, blocks.shape, restore)})

    def _apply(self, x: np.ndarray, s_g: np.float32, s_b: np.ndarray) -> np.ndarray:
        return self._elements(x, s_g, s_b) * (s_b * s_g)

    def quantize(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        s_g, s_b, q, restore = self._split(x, axis)
        return restore(q * (s_b * s_g))

    def encode(self, x: np.ndarray, axis: int = -1) -> tuple[float, np.ndarray, np.ndarray]:
        """(FP32 tensor scale, block-scale codes ``(..., n_blocks)``, element codes ``(..., n_blocks, k)``);
        NaN blocks get the NaN scale code and element code 0."""
        s_g, s_b, q, _ = self._split(x, axis)
        return (float(s_g), mf.encode(s_b[..., 0], self.spec.scale).astype(np.uint8),
                mf.encode(np.where(np.isnan(q), 0, q), self.spec.element, saturate=True).astype(np.uint8))

    def decode(self, tensor_scale: float, scales: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Block values ``(..., n_blocks, k)`` (float32) from :meth:`encode`'s output."""
        s_b = mf.decode(scales, self.spec.scale)[..., None]
        return mf.decode(codes, self.spec.element) * (s_b * _F32(tensor_scale))
