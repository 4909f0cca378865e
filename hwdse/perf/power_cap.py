"""Power budgets: a phase or step whose mean power would exceed its system's budget runs at a lower core clock.

At a core clock ``s`` times the rated one (the memory clock unchanged), along the supply curve
``v(s) = V(s f) / V(f)`` (:meth:`hwdse.hardware.power.SharedPower.voltage_fraction`):

* compute-bound time stretches by ``1/s``: ``T(s) = T + C (1/s - 1)``, ``C`` the seconds of the
  operators whose compute time exceeds their memory time. First order: an operator that turns
  compute-bound at the lower clock is not re-classified (a budget cuts the clock by a few per cent);
* core-domain dynamic energy (``Timing.core_share``: MACs, on-chip SRAM and network) scales with
  ``v^2``: ``E(s) = E - E_core (1 - v^2)``; DRAM and link energy hold;
* static power holds at its measured (rated-clock) level: an upper bound, so the model throttles no
  less than a part would.

The clock is the largest ``s`` on the curve with ``static + E(s) / T(s) <= budget``; power rises
with ``s``, so bisection finds it (vectorized over design points). Work over budget even at the
curve's lowest clock (memory traffic whose DRAM energy alone exceeds the headroom) is energy-bound:
it takes ``E(s) / (budget - static)``, the rate at which the budget pays for it. A system without a
budget or a curve (PIM devices; PE designs, whose budget is their peak draw) runs at ``s = 1``; one
whose static power reaches its budget cannot run (:func:`over_budget`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from hwdse._array import PLAIN, bisect, where
from hwdse._params import Number

__all__ = ["Work", "power_budget", "clocked", "clocked_at", "capped", "over_budget", "BISECTIONS"]

BISECTIONS = 30  # halvings of the clock interval: 2^-30 of it, far below any figure reported
BLOCK = 65536    # over-budget points bisected together: a block's arrays stay in cache (a grid's run twice as fast)


@dataclass(frozen=True)
class Work:
    """What a phase or step costs at the rated clock: seconds, of them compute-bound seconds, dynamic
    joules, of them core-domain joules."""

    seconds: Number
    clocked_s: Number
    joules: Number
    core_j: Number

    def __add__(self, other: Work) -> Work:
        return Work(self.seconds + other.seconds, self.clocked_s + other.clocked_s, self.joules + other.joules,
                    self.core_j + other.core_j)

    def scaled(self, factor: Number) -> Work:
        """``factor`` times the work (a share of it, or several of it)."""
        return Work(self.seconds * factor, self.clocked_s * factor, self.joules * factor, self.core_j * factor)

    def at(self, clock: Number, voltage: Number) -> tuple[Number, Number]:
        """(seconds, joules) at ``clock`` and ``voltage`` (fractions of the rated ones)."""
        return (self.seconds + self.clocked_s * (1 / clock - 1),
                self.joules - self.core_j * (1 - voltage**2))


def power_budget(arch: Any) -> Any:
    """The supply curve ``arch`` throttles along, its budget and its static power (W), or None (read once
    by a solver that caps many mixes of one arch: :func:`clocked_at`)."""
    curve = getattr(arch, "throttle_curve", None)
    budget = getattr(arch, "power_W", None)
    static = getattr(arch, "static_power_W", None)
    return None if curve is None or budget is None else (curve, budget, 0.0 if static is None else static)


def _power(work: Work, static: Number, clock: Number, voltage: Number) -> Number:
    """Mean power (W) of ``work`` at ``clock`` and ``voltage`` (fractions of the rated ones)."""
    seconds, joules = work.at(clock, voltage)
    if type(seconds) in PLAIN and type(joules) in PLAIN:  # Python numbers (one point) raise, never warn
        return static + joules / seconds
    with np.errstate(divide="ignore", invalid="ignore"):
        return static + joules / seconds


def clocked(arch: Any, mean: Work, *parts: Work) -> tuple[Number, list[tuple[Number, Number]]]:
    """The clock fraction at which ``mean`` (the mix of ``parts`` a steady state runs, e.g. decode steps
    and steps with a prefill chunk) fits ``arch``'s budget, and each part's (seconds, dynamic joules) there."""
    return clocked_at(power_budget(arch), mean, *parts)


def clocked_at(found: Any, mean: Work, *parts: Work) -> tuple[Number, list[tuple[Number, Number]]]:
    """:func:`clocked` under an arch's :func:`power_budget` ``found``."""
    one = type(mean.seconds) in PLAIN  # one point in Python numbers
    rated = 1.0 if one else 1.0 + 0.0 * np.isfinite(mean.seconds)  # 1 on the work's design points
    if found is None:
        return rated, [(p.seconds, p.joules) for p in parts]
    curve, budget, static = found
    over = _power(mean, static, 1.0, 1.0) > budget  # the rated clock's supply is the rated one; NaN: no cap
    if not (over if one else np.any(over)):
        return rated, [(p.seconds, p.joules) for p in parts]
    clock = _bisected(mean, static, budget, curve, over)
    volts = curve.voltage_fraction(clock)
    seconds, joules = mean.at(clock, volts)
    with np.errstate(divide="ignore", invalid="ignore"):
        headroom = budget - static
        paid = where(headroom > 0, joules / headroom, np.inf)
        stretch = where(over, np.maximum(paid / seconds, 1.0), 1.0)  # energy-bound: the budget sets the pace
    # a point within its budget keeps its rated figures whatever the others sharing its arrays need
    return clock, [(where(over, s * stretch, p.seconds), where(over, j, p.joules))
                   for p, (s, j) in zip(parts, (p.at(clock, volts) for p in parts))]


def _bisected(mean: Work, static: Number, budget: Number, curve: Any, over: Any) -> Any:
    """The clock fraction of each design point: 1 where not ``over`` its budget, else the bisection's
    lower end (:func:`_clock`), run on the over-budget points alone, ``BLOCK`` at a time (flat numpy arrays,
    the same arithmetic point by point). Shaped (dims and coords) like ``over``."""
    mask = np.asarray(over)
    shape = mask.shape

    def picked(value: Number) -> np.ndarray:
        """``value`` broadcast to ``over``'s points (in its dim order), at the over-budget ones."""
        if isinstance(value, xr.DataArray):
            value = value.broadcast_like(over).transpose(*over.dims)
        return np.broadcast_to(np.asarray(value, dtype=float), shape)[mask]

    fields = [picked(getattr(mean, f)) for f in ("seconds", "clocked_s", "joules", "core_j")]
    static, budget = picked(static), picked(budget)
    found = np.empty(static.shape)
    for start in range(0, found.size, BLOCK):
        part = slice(start, start + BLOCK)
        found[part] = _clock(Work(*(f[part] for f in fields)), static[part], budget[part], curve)
    clock = np.ones(shape)
    clock[mask] = found
    if isinstance(over, xr.DataArray):
        return over.copy(data=clock)
    return clock[()] if clock.ndim == 0 else clock


def _clock(work: Work, static: np.ndarray, budget: np.ndarray, curve: Any) -> np.ndarray:
    """The bisection's lower end of the clock fraction of each point of ``work`` (flat arrays), over its
    budget at the rated clock: from the lowest clock of the curve up to 1 (few points take several halvings
    per call: :func:`hwdse._array.bisect`)."""
    lo, hi = np.full(static.shape, curve.min_clock_fraction), np.ones(static.shape)
    return bisect(lambda mid: _power(work, static, mid, curve.voltage_fraction(mid)) <= budget, lo, hi, BISECTIONS)


def capped(arch: Any, work: Work) -> tuple[Number, Number, Number]:
    """(seconds, dynamic joules, clock fraction) of ``work`` alone (a phase) under ``arch``'s budget."""
    clock, [(seconds, joules)] = clocked(arch, work, work)
    return seconds, joules, clock


def over_budget(arch: Any) -> bool:
    """Whether ``arch``'s static power alone reaches its budget (it cannot run at any clock)."""
    found = power_budget(arch)
    return found is not None and bool(np.any(np.greater_equal(found[2], found[1])))
