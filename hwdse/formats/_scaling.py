"""Shared scales for scalar formats: per tensor, per channel or per group, in a scale format."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwdse.formats._format import per_element, to_blocks
from hwdse.formats._minifloat import cast, limits
from hwdse.formats._spec import FloatElement, Scaling

__all__ = ["groups", "round_scale", "pow2_exponent", "scaled_split", "scaled_quantize", "symmetric_scale",
           "scaled_elements", "scaled_fit", "scaled_apply"]

_SCALE_ELEMENTS = {"fp16": FloatElement(exp_bits=5, man_bits=10), "bf16": FloatElement(exp_bits=8, man_bits=7)}


def groups(x: np.ndarray, axis: int, scaling: Scaling) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Blocks ``(..., n, size)`` that each share one scale under ``scaling``."""
    if scaling.granularity == "tensor":
        x = np.asarray(x)
        return x.reshape(1, -1), lambda y: y.reshape(x.shape)
    return to_blocks(x, axis, scaling.group_size)


def pow2_exponent(a: np.ndarray, ceil: bool) -> np.ndarray:
    """Exact floor (or ceil) of log2(a) for a > 0, from the float's exponent field (int64)."""
    f, ex = np.frexp(np.asarray(a, dtype=np.float64))
    e = ex - 1
    return (e + (f != 0.5)).astype(np.int64) if ceil else e.astype(np.int64)


def round_scale(s: np.ndarray, scale_format: str) -> np.ndarray:
    """Round positive scales to ``scale_format`` (float64 result).

    fp32/fp16/bf16 round to nearest; ``e8m0`` rounds up to a power of two in [2^-127, 2^127]
    so that nothing clips. A scale that underflows to 0 becomes the smallest positive one.
    """
    if scale_format == "e8m0":
        e = np.clip(pow2_exponent(np.where(s > 0, s, 1.0), ceil=True), -127, 127)
        return np.where(np.isnan(s), np.nan, np.ldexp(1.0, e))
    if scale_format == "fp32":
        out = np.asarray(s, dtype=np.float32).astype(np.float64)
        tiny = float(np.finfo(np.float32).smallest_subnormal)
    else:
        el = _SCALE_ELEMENTS[scale_format]
        out = cast(s, el, saturate=True).astype(np.float64)
        tiny = limits(el).min_subnormal
    return np.where((out > 0) | np.isnan(out), out, tiny)


def scaled_split(x: np.ndarray, axis: int, scaling: Scaling, qmax: float,
                 element: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, Callable]:
    """Symmetric scaling: scale = clip_ratio*amax/qmax per group, elements = element(x/scale).

    Returns elements ``(..., n, size)`` and scales ``(..., n, 1)`` (float64) and the function
    mapping blocked values back to ``x``'s shape. A group holding NaN or Inf comes out NaN.
    """
    blocks, restore = groups(np.asarray(x, dtype=np.float32), axis, scaling)
    scale = symmetric_scale(blocks, scaling, qmax)
    return scaled_elements(blocks, scale, element), scale, restore


def symmetric_scale(blocks: np.ndarray, scaling: Scaling, qmax: float) -> np.ndarray:
    """Scale ``(..., n, 1)`` (float64) mapping clip_ratio*amax of each block onto ``qmax``."""
    amax = np.max(np.abs(blocks), axis=-1, keepdims=True).astype(np.float64)
    return round_scale(scaling.clip_ratio * amax / qmax, scaling.scale_format)


def scaled_elements(x: np.ndarray, scale: np.ndarray, element: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``element(x / scale)`` in float64 (x float32, scale broadcastable to it)."""
    with np.errstate(invalid="ignore"):
        return element((x / scale).astype(np.float32)).astype(np.float64)


def scaled_fit(x: np.ndarray, axis: int, scaling: Scaling, qmax: float) -> np.ndarray:
    """The scale of :func:`scaled_split`, one per element of ``x`` (float64, ``x``'s shape)."""
    blocks, restore = groups(np.asarray(x, dtype=np.float32), axis, scaling)
    return per_element(symmetric_scale(blocks, scaling, qmax), blocks.shape, restore)


def scaled_apply(x: np.ndarray, scale: np.ndarray, element: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Quantize-dequantize ``x`` elementwise under a per-element scale from :func:`scaled_fit`."""
    with np.errstate(invalid="ignore"):
        return (scaled_elements(np.asarray(x, dtype=np.float32), scale, element) * scale).astype(np.float32)


def scaled_quantize(x: np.ndarray, axis: int, scaling: Scaling, qmax: float,
                    element: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Quantize-dequantize under :func:`scaled_split` (float32, shape of ``x``)."""
    elements, scale, restore = scaled_split(x, axis, scaling, qmax, element)
    with np.errstate(invalid="ignore"):
        return restore((elements * scale).astype(np.float32))
