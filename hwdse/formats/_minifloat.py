"""Scalar floats of any exponent/mantissa width and bias: cast, encode, decode, value set.

Casts round to nearest, ties to even, keep subnormals, and go through float32 first (as
ml_dtypes does). Where ml_dtypes (or numpy) has the type the cast is done there; any other
exponent/mantissa/bias uses the generic path, which the tests hold bit-exact to ml_dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import ml_dtypes
import numpy as np

from hwdse.formats._spec import Compute, FloatElement

__all__ = ["Limits", "limits", "cast", "cast_generic", "encode", "decode", "values", "float_compute"]

_ML_DTYPES: dict[tuple[int, int, int, str], np.dtype] = {
    (8, 23, 127, "ieee"): np.dtype(np.float32),
    (5, 10, 15, "ieee"): np.dtype(np.float16),
    (8, 7, 127, "ieee"): np.dtype(ml_dtypes.bfloat16),
    (4, 3, 7, "fn"): np.dtype(ml_dtypes.float8_e4m3fn),
    (4, 3, 7, "ieee"): np.dtype(ml_dtypes.float8_e4m3),
    (5, 2, 15, "ieee"): np.dtype(ml_dtypes.float8_e5m2),
    (3, 4, 3, "ieee"): np.dtype(ml_dtypes.float8_e3m4),
    (2, 3, 1, "none"): np.dtype(ml_dtypes.float6_e2m3fn),
    (3, 2, 3, "none"): np.dtype(ml_dtypes.float6_e3m2fn),
    (2, 1, 1, "none"): np.dtype(ml_dtypes.float4_e2m1fn),
}


@dataclass(frozen=True)
class Limits:
    """Derived range of a float element (values are exact powers of two times small integers)."""

    emax: int            # unbiased exponent of the largest normal (MX "emax_elem")
    emin: int            # unbiased exponent of the smallest normal
    max_normal: float
    min_normal: float
    min_subnormal: float
    has_inf: bool
    has_nan: bool
    ml_dtype: np.dtype | None


@cache
def limits(el: FloatElement) -> Limits:
    """Range and specials of ``el``."""
    bias, m = el.exponent_bias, el.man_bits
    top = (1 << el.exp_bits) - 1 - bias
    if el.specials == "ieee":
        emax, frac_max = top - 1, 2.0 - 2.0**-m
    elif el.specials == "fn":
        emax, frac_max = top, 2.0 - 2.0 ** (1 - m)
    else:
        emax, frac_max = top, 2.0 - 2.0**-m
    emin = 1 - bias
    key = (el.exp_bits, m, bias, el.specials)
    return Limits(emax, emin, frac_max * 2.0**emax, 2.0**emin, 2.0 ** (emin - m),
                  el.specials == "ieee", el.specials != "none", _ML_DTYPES.get(key))


def _overflow_value(lim: Limits, saturate: bool) -> float:
    if saturate or not (lim.has_inf or lim.has_nan):
        return lim.max_normal
    return np.inf if lim.has_inf else np.nan


def cast_generic(x: np.ndarray, el: FloatElement, saturate: bool = False) -> np.ndarray:
    """Round ``x`` (via float32) to ``el`` with RNE; overflow saturates or gives Inf/NaN."""
    lim = limits(el)
    with np.errstate(invalid="ignore", over="ignore"):   # NaN payloads, float64 inputs past float32
        x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    a = np.abs(x64)
    _, ex = np.frexp(a)                                  # a = f * 2^ex, 0.5 <= f < 1 (exact)
    quantum = np.ldexp(1.0, np.maximum(ex - 1, lim.emin) - el.man_bits)
    with np.errstate(invalid="ignore"):
        q = np.rint(a / quantum) * quantum               # exact: a/quantum scales by a power of 2
        q = np.where(q > lim.max_normal, _overflow_value(lim, saturate), q)
    q = np.where(np.isnan(a), np.nan, q)
    return np.copysign(q, x64).astype(np.float32)


def cast(x: np.ndarray, el: FloatElement, saturate: bool = False) -> np.ndarray:
    """Round ``x`` to ``el`` and return float32 values (ml_dtypes where it has the type)."""
    lim = limits(el)
    if lim.ml_dtype is None:
        return cast_generic(x, el, saturate)
    with np.errstate(invalid="ignore", over="ignore"):  # overflow is handled by the format's policy
        x32 = np.asarray(x, dtype=np.float32)
        src = np.clip(x32, -lim.max_normal, lim.max_normal) if saturate else x32
        q = src.astype(lim.ml_dtype).astype(np.float32)
    return q if lim.has_nan else np.where(np.isnan(x32), np.float32(np.nan), q)


def encode(x: np.ndarray, el: FloatElement, saturate: bool = False) -> np.ndarray:
    """Bit patterns (uint32) of ``cast(x)``: sign | exponent | mantissa; NaN is the quiet NaN."""
    lim = limits(el)
    q = cast(x, el, saturate).astype(np.float64)
    if not lim.has_nan and np.isnan(q).any():
        raise ValueError("NaN has no encoding in a format without NaN")
    a = np.abs(q)
    _, ex = np.frexp(a)
    normal = a >= lim.min_normal
    e = np.where(normal, ex - 1, lim.emin)
    with np.errstate(invalid="ignore"):
        frac = np.where(normal, a / np.ldexp(1.0, e) - 1.0, a / lim.min_normal)
    man = np.rint(np.nan_to_num(frac * (1 << el.man_bits), posinf=0.0)).astype(np.uint32)
    exp = np.where(normal, e + el.exponent_bias, 0).astype(np.uint32)
    ones_e, ones_m = (1 << el.exp_bits) - 1, (1 << el.man_bits) - 1
    exp = np.where(np.isinf(a) | np.isnan(a), ones_e, exp).astype(np.uint32)
    nan_man = ones_m if el.specials == "fn" else 1 << max(el.man_bits - 1, 0)
    man = np.where(np.isnan(a), nan_man, np.where(np.isinf(a), 0, man)).astype(np.uint32)
    sign = np.signbit(q).astype(np.uint32)
    return (sign << (el.exp_bits + el.man_bits)) | (exp << el.man_bits) | man


def decode(codes: np.ndarray, el: FloatElement) -> np.ndarray:
    """Float32 values of bit patterns ``codes``."""
    c = np.asarray(codes).astype(np.int64)
    m, bias = el.man_bits, el.exponent_bias
    ones_e, ones_m = (1 << el.exp_bits) - 1, (1 << m) - 1
    sign = (c >> (el.exp_bits + m)) & 1
    e, f = (c >> m) & ones_e, c & ones_m
    mag = np.where(e == 0, np.ldexp(f.astype(np.float64), 1 - bias - m),
                   np.ldexp(1.0 + f / 2.0**m, (e - bias).astype(np.int32)))
    if el.specials == "ieee":
        mag = np.where(e == ones_e, np.where(f == 0, np.inf, np.nan), mag)
    elif el.specials == "fn":
        mag = np.where((e == ones_e) & (f == ones_m), np.nan, mag)
    return np.where(sign == 1, -mag, mag).astype(np.float32)


def values(el: FloatElement) -> np.ndarray:
    """Sorted distinct finite values of ``el`` (float32); at most 16-bit formats."""
    if el.bits > 16:
        raise ValueError(f"{el.bits}-bit format: value set too large to list")
    v = decode(np.arange(1 << el.bits), el)
    return np.unique(v[np.isfinite(v)])


_BY_WIDTH: tuple[tuple[int, Compute], ...] = ((4, "fp4"), (6, "fp6"), (8, "fp8"))
_BY_FIELDS: tuple[tuple[int, int, Compute], ...] = ((5, 10, "fp16"), (8, 7, "bf16"), (8, 10, "tf32"))


def float_compute(el: FloatElement) -> Compute:
    """Narrowest native multiplier class holding ``el``: by width up to 8 bits, else by fields."""
    for width, cls in _BY_WIDTH:
        if el.bits <= width:
            return cls
    for exp_bits, man_bits, wide in _BY_FIELDS:
        if el.exp_bits <= exp_bits and el.man_bits <= man_bits:
            return wide
    return "fp32"
