"""Step times tabulated over the requests decoding, so a steady-state solve times the operators once.

The serving solvers look for the requests decoding ``g`` at which the traffic balances; every trial
``g`` would re-time the whole operator table. Step times depend on ``g`` and on the design point's
hardware, model and prompt lengths, never on the traffic (concurrency, arrival rate), so they are
timed once on a grid of ``g`` (every integer to ``UNIFORM``, then ``PER_OCTAVE`` evenly spaced points
per doubling, at most 6 % apart, each with the next integer) with the grid as a new leading axis
over the design point's other axes, and the solver interpolates linearly. On a sweep over traffic the table is as large as the hardware part of
the sweep. Every power-of-two tile edge and the integer after it are grid points, so the GEMM model's
wave steps at those edges are kept; piecewise-linear interpolation keeps step times within a few
tenths of a percent of a direct timing elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["PER_OCTAVE", "UNIFORM", "Tabulated", "grid", "extent"]

UNIFORM = 16      # every integer up to here
PER_OCTAVE = 16   # then this many evenly spaced points per doubling


def grid(hi: float) -> np.ndarray:
    """Requests decoding at which steps are timed: 0..UNIFORM, then ``PER_OCTAVE`` evenly spaced points
    in each doubling (spacing 1, 2, 4, ... at the defaults: every power-of-two tile edge is a point),
    each followed by the next integer (the GEMM model's wave steps sit between the two), up to at least
    ``hi``."""
    octaves = _octaves(hi)
    cells = [UNIFORM * 2.0 ** o * (1 + np.arange(PER_OCTAVE) / PER_OCTAVE) for o in range(octaves)]
    edges = np.concatenate(cells + [[UNIFORM * 2.0 ** octaves]])
    return np.unique(np.concatenate([np.arange(UNIFORM + 1.0), edges, edges + 1]))


def _octaves(hi: float) -> int:
    """Doublings past ``UNIFORM`` the grid spans to reach ``hi`` (at least one)."""
    return max(int(np.ceil(np.log2(max(hi, UNIFORM) / UNIFORM) - 1e-9)), 1)


def extent(hi: Any) -> float:
    """The last edge of the grid a table to ``hi`` spans (``UNIFORM 2^octaves`` for the largest finite value
    of ``hi``): ``grid(extent(hi))`` is that table's grid, so tables may be shared by their extent."""
    finite = np.asarray(hi, dtype=float)[np.isfinite(hi)]
    return UNIFORM * 2.0 ** _octaves(float(finite.max()) if finite.size else 1.0)


class Tabulated:
    """``fn(g)`` (a tuple of arrays) timed on :func:`grid` up to the largest ``hi``, interpolated in ``g``.

    ``ndim``: the number of axes of the design point's arrays (the grid goes in front of them)."""

    def __init__(self, fn: Callable[[np.ndarray], tuple[Any, ...]], hi: Any, ndim: int) -> None:
        self.grid = grid(extent(hi))
        at = self.grid.reshape((-1,) + (1,) * ndim)
        rows = np.broadcast_arrays(at, *(np.asarray(v, dtype=float) for v in fn(at)))  # g first, then the values
        rest = rows[0].shape[1:]
        # each row as its point values and slopes to the next point, flat, stacked: one index per lookup
        self._columns = int(np.prod(rest, dtype=int))
        self._column = np.arange(self._columns).reshape(rest) if rest else None  # None: one column
        self._points = np.stack([np.stack([v.ravel() for v in rows]),   # [0]: values, [1]: slopes to the next point
                                 np.stack([np.append(np.diff(v, axis=0), np.zeros((1, *rest)), axis=0).ravel()
                                           for v in rows])])
        self._floats = self._points.transpose(2, 0, 1).tolist() if not rest else None  # one column: per grid point

    def position(self, g: Any) -> np.ndarray:
        """Where ``g`` sits on the grid: the lower point's index plus the fraction of the way to the next
        (NaN stays NaN; ``g`` is clipped to the grid). Step times are linear in it between points, so a
        solver may search it instead of ``g`` and skip the locating (:meth:`at`)."""
        g = np.asarray(g, dtype=float)
        known = np.isfinite(g)
        g = np.clip(np.where(known, g, 0.0), 0.0, self.grid[-1])
        mantissa, exponent = np.frexp(np.maximum(g, UNIFORM) / UNIFORM)   # g / UNIFORM = 2m 2^octave, m in [1/2, 1)
        octave = exponent - 1
        cell = np.floor((2 * mantissa - 1) * PER_OCTAVE)
        edge = np.ldexp(UNIFORM * (1 + cell / PER_OCTAVE), octave)
        # grid: 0..UNIFORM, the first octave's integers, then per octave an edge and the integer after it
        above = np.where(octave < 1, UNIFORM + cell,
                         UNIFORM + PER_OCTAVE + 2 * ((octave - 1) * PER_OCTAVE + cell) + (g >= edge + 1))
        idx = np.minimum(np.where(g < UNIFORM, np.floor(g), above), len(self.grid) - 2).astype(np.intp)
        lo = self.grid[idx]
        u = idx + (g - lo) / (self.grid[idx + 1] - lo)
        return u if known.all() else np.where(known, u, np.nan)

    def at(self, u: Any) -> np.ndarray:
        """``g`` and the tabulated values at grid position ``u`` (:meth:`position`), linearly interpolated,
        stacked on a new leading axis (``g`` first; each of shape ``u`` broadcast with the design point's). One
        design point at a finite Python float ``u``: a list of Python floats (the same arithmetic)."""
        if type(u) is float and self._floats is not None and math.isfinite(u):
            u = min(max(u, 0.0), len(self.grid) - 1.0)
            idx = min(int(u), len(self.grid) - 2)
            base, slope = self._floats[idx]
            frac = u - idx
            return [b + s * frac for b, s in zip(base, slope)]
        u = np.asarray(u, dtype=float)
        known = np.isfinite(u)
        everywhere = known.all()
        u = np.minimum(np.maximum(u if everywhere else np.where(known, u, 0.0), 0.0), len(self.grid) - 1)
        idx = np.minimum(u.astype(np.intp), len(self.grid) - 2)
        flat = idx if self._column is None else idx * self._columns + self._column  # each design point its column
        base, slope = np.take(self._points, flat, axis=2)
        out = base + slope * (u - idx)
        return out if everywhere else np.where(known, out, np.nan)

    def __call__(self, g: Any) -> np.ndarray:
        """The tabulated values at ``g``, stacked (as :meth:`at`, without ``g``)."""
        return self.at(self.position(g))[1:]
