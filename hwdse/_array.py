"""Arithmetic helpers that keep numbers, numpy arrays and xarray DataArrays on one code path."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import reduce
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["where", "maximum_of", "to_dataarray", "minimum", "maximum", "ceil", "bisect", "FAN_POINTS", "PLAIN"]

FAN_POINTS = 128  # the most points one call of a bisection's test takes when the brackets are few (:func:`bisect`)


def _has_xr(*values: Any) -> bool:
    return any(isinstance(v, xr.DataArray) for v in values)


def where(cond: Any, a: Any, b: Any) -> Any:
    """``np.where`` that keeps DataArray dims (``np.where`` would drop them)."""
    if _has_xr(cond, a, b):
        return xr.where(cond, a, b)
    out = np.where(cond, a, b)
    return out[()] if out.ndim == 0 else out


def maximum_of(values: list[Any]) -> Any:
    return reduce(np.maximum, values)


def to_dataarray(value: Any) -> xr.DataArray:
    """Wrap a number or array (numpy arrays get dims ``dim_0, dim_1, ...``)."""
    return value if isinstance(value, xr.DataArray) else xr.DataArray(np.asarray(value))


PLAIN = frozenset({float, int})  # the types of Python numbers: one point, plain float arithmetic


def minimum(a: Any, b: Any) -> Any:
    """``np.minimum`` (NaN wins); of two Python numbers the same value without a numpy call."""
    if type(a) in PLAIN and type(b) in PLAIN:
        return b if b < a or b != b else a
    return np.minimum(a, b)


def maximum(a: Any, b: Any) -> Any:
    """``np.maximum`` (NaN wins); of two Python numbers the same value without a numpy call."""
    if type(a) in PLAIN and type(b) in PLAIN:
        return b if b > a or b != b else a
    return np.maximum(a, b)


def ceil(x: Any) -> Any:
    """``np.ceil``; of a finite Python float the same value as a float, without a numpy call."""
    if type(x) is float and math.isfinite(x):
        return float(math.ceil(x))
    return np.ceil(x)


def bisect(test: Callable[[Any], Any], lo: Any, hi: Any, halvings: int) -> Any:
    """``lo`` after ``halvings`` bisection steps of the brackets ``[lo, hi]``: each step tests the midpoint
    ``(lo + hi) / 2`` and moves ``lo`` up to it where ``test`` holds, else ``hi`` down. ``test`` answers each
    point on its own (elementwise, any shape). Python floats (one point) stay floats. The first step sets
    the points' shape (``test`` may broadcast ``lo`` and ``hi``); after it, few points take several steps
    per call of ``test`` (:func:`_halvings`) with the same arithmetic: the answer is the plain steps', bit
    for bit, in fewer calls."""
    done = 0
    while done < halvings:
        left = halvings - done
        calls = left if done == 0 or type(lo) is float else -(-left // _most_halvings(np.size(lo)))
        levels = -(-left // calls)  # the calls left share the steps evenly
        lo, hi = _halvings(test, lo, hi, levels)
        done += levels
    return lo


def _most_halvings(points: int) -> int:
    """Steps one call of a bisection's test may serve for ``points`` brackets: the most whose ``2^h - 1``
    midpoints per bracket stay within ``FAN_POINTS`` points in all (at least one)."""
    return max(1, int(np.log2(FAN_POINTS / points + 1)))


def _halvings(test: Callable[[Any], Any], lo: Any, hi: Any, levels: int) -> tuple[Any, Any]:
    """``levels`` bisection steps of the brackets ``[lo, hi]`` with one call of ``test``. One step: the
    midpoint. Several: every midpoint the steps could visit, each the mean of the two bracket ends a
    sequential bisection would hold there, is tested at once on a new leading axis (``lo`` and ``hi``
    have the points' full shape), then the steps are replayed from the answers."""
    if levels == 1:
        mid = (lo + hi) / 2
        up = test(mid)
        if type(up) is bool:
            return (mid, hi) if up else (lo, mid)
        return where(up, mid, lo), where(up, hi, mid)
    ends = np.empty((2**levels + 1, *np.shape(lo)))
    ends[0], ends[-1] = lo, hi
    for level in range(levels, 0, -1):  # each step's points between those of the step before
        step = 2 ** (level - 1)
        ends[step::2 * step] = (ends[:-1:2 * step] + ends[2 * step::2 * step]) / 2
    up = np.broadcast_to(test(ends[1:-1]), (len(ends) - 2, *ends.shape[1:]))
    if (up[:-1] >= up[1:]).all():  # monotone along each bracket: the steps end after its last true point
        below = up.sum(axis=0)
    else:  # replay each step: the bracket [below, below + width] of positions along ``ends``
        below = np.zeros(ends.shape[1:], dtype=np.intp)
        for width in 2 ** np.arange(levels - 1, -1, -1):
            mid = below + width
            below = np.where(np.take_along_axis(up, mid[None] - 1, axis=0)[0], mid, below)
    return np.take_along_axis(ends, below[None], axis=0)[0], np.take_along_axis(ends, below[None] + 1, axis=0)[0]
