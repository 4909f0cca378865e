"""Grid plus local refinement: the default outer search, one generation evaluated as one array call.

Generation 0 is a coarse grid of the design space (up to :data:`COARSE` levels per numeric range,
fewer when a quarter of the budget cannot hold them, at least 3; every value of a short int range,
every choice), thinned to a seeded sample of half the budget when the grid is still larger. Each
later generation takes up to :data:`ELITE` best designs so far (as many as half the remaining
budget can refine; feasible ones:
lexicographic order with the objectives' epsilons, or spread along the epsilon front of a
multi-objective study; the least violating ones while none is feasible) and evaluates their
neighbourhoods: every numeric range moved by -h, 0 or +h of its span (log ranges in log space), alone
and together with each other choice of one categorical, h halved each generation from half the
coarse spacing.
Once h falls below 10^-3 of a span with budget left, it restarts from half the coarse spacing around
the current elite (:data:`RESTARTS` times); it stops at the budget or when no neighbour is new.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwdse.search.operating import lexicographic
from hwdse.search.points import pareto_mask
from hwdse.search.space import Space, grid_values
from hwdse.search.spec import Param

__all__ = ["Refine", "COARSE", "ELITE"]

COARSE = 5   # levels per numeric range in the first generation
ELITE = 8    # designs whose neighbourhoods each generation evaluates
FINEST = 1e-3  # smallest float step, as a share of the span
RESTARTS = 2   # times the step restarts from half the coarse spacing around the current elite once it converged


def _to_unit(p: Param, value: float) -> float:
    lo, hi, v = (np.log(float(x)) for x in (p.low, p.high, value)) if p.log else (float(p.low), float(p.high),
                                                                                    float(value))
    return (v - lo) / (hi - lo)


def _from_unit(p: Param, u: float) -> float | int:
    u = min(max(u, 0.0), 1.0)
    lo, hi = (np.log(float(p.low)), np.log(float(p.high))) if p.log else (float(p.low), float(p.high))
    v = lo + u * (hi - lo)
    v = float(np.exp(v)) if p.log else v
    if p.kind == "int":
        step = int(p.step or 1)
        return int(min(max(int(p.low) + step * round((v - int(p.low)) / step), int(p.low)), int(p.high)))
    if p.step is not None:
        return float(min(p.low + p.step * round((v - p.low) / p.step), p.high))
    return float(min(max(v, p.low), p.high))  # exp(log) may round just outside the range


class Refine:
    """Proposes designs (path -> value over ``space.outer``) a generation at a time."""

    def __init__(self, space: Space, seed: int) -> None:
        self.space = space
        self.params = {k: space.params[k] for k in space.outer}
        self.numeric = [k for k, p in self.params.items() if p.kind != "categorical"]
        self.rng = np.random.default_rng(seed)
        self.seen: set[tuple] = set()
        self.levels = COARSE
        self.step = 0.5 / (COARSE - 1)
        self.started = False

    def _key(self, design: dict[str, Any]) -> tuple:
        return tuple(repr(design[k]) for k in self.params)

    def _fresh(self, designs: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
        out = []
        for d in designs:
            key = self._key(d)
            if key not in self.seen and len(out) < limit:
                self.seen.add(key)
                out.append(d)
        return out

    def _short(self, p: Param) -> bool:
        """A categorical, or an int range with no more values than the coarse levels: every value."""
        return p.kind == "categorical" or (p.kind == "int" and len(grid_values(p)) <= self.levels and not p.log)

    def _coarse(self, budget: int) -> list[dict[str, Any]]:
        fixed = int(np.prod([len(grid_values(p)) for p in self.params.values() if self._short(p)]))
        ranges = sum(not self._short(p) for p in self.params.values())
        if ranges:
            fit = int(np.floor((budget / 4 / fixed) ** (1 / ranges) + 1e-9))
            self.levels = min(COARSE, max(3, fit))
            self.step = 0.5 / (self.levels - 1)
        axes = []
        for p in self.params.values():
            if self._short(p):
                axes.append(list(grid_values(p)))
            else:
                axes.append([_from_unit(p, u) for u in np.linspace(0.0, 1.0, self.levels)])
        grid = [dict(zip(self.params, (v.item() if hasattr(v, "item") else v for v in combo), strict=True))
                for combo in itertools.product(*axes)]
        if len(grid) > budget // 2:
            grid = [grid[i] for i in np.sort(self.rng.choice(len(grid), max(budget // 2, 1), replace=False))]
        return grid

    def propose(self, designs: Sequence[dict[str, Any]], values: np.ndarray, ok: np.ndarray,
                violation: np.ndarray, limit: int) -> list[dict[str, Any]]:
        """The next generation (at most ``limit`` new designs; empty when converged), given every design
        evaluated so far with its signed objectives ``values`` (n x k, smaller is better), feasibility
        ``ok`` and total constraint ``violation``."""
        for d in designs:
            self.seen.add(self._key(d))
        if not self.started:
            self.started = True
            first = self._fresh(self._coarse(limit + len(designs)), limit)
            if first:
                return first
        per = 3 ** len(self.numeric) * (1 + sum(len(p.choices) - 1 for p in self.params.values() if p.choices))
        elite = [designs[i] for i in self._elite(values, ok, violation, max(1, min(ELITE, limit // (2 * per))))]
        for _ in range(RESTARTS + 1):
            while self.step >= FINEST:
                out = self._fresh([n for d in elite for n in self._neighbours(d)], limit)
                self.step /= 2
                if out:
                    return out
            self.step = 0.5 / (self.levels - 1)  # converged with budget left: search the elite's wider neighbourhood
        return []

    def _elite(self, values: np.ndarray, ok: np.ndarray, violation: np.ndarray, size: int) -> list[int]:
        """Indices of the ``size`` designs to refine around."""
        eps = [o.epsilon for o in self.space.spec.objectives]
        alive = ok & np.all(np.isfinite(values), axis=1)
        if not alive.any():
            return list(np.argsort(violation, kind="stable")[:size])
        order: list[int] = []
        if values.shape[1] > 1:  # the best of each objective first, then evenly along the front by the first
            for j in range(values.shape[1]):
                i = int(lexicographic(np.roll(values, -j, axis=1), alive, list(np.roll(eps, -j))))
                if i not in order:
                    order.append(i)
            front = np.flatnonzero(pareto_mask(values, ["minimize"] * values.shape[1], alive))
            by_first = front[np.argsort(values[front, 0], kind="stable")]
            picks = np.unique(np.round(np.linspace(0, len(by_first) - 1, min(size, len(by_first)))).astype(int))
            order += [int(by_first[i]) for i in picks if int(by_first[i]) not in order]
        remaining = alive.copy()
        while len(order) < size and remaining.any():
            i = int(lexicographic(values, remaining, eps))
            if i not in order:
                order.append(i)
            remaining[i] = False
        return order[:size]

    def _variants(self, design: dict[str, Any]) -> list[dict[str, Any]]:
        """The design and each design with one categorical at another choice."""
        return [design] + [{**design, k: c} for k, p in self.params.items() if p.kind == "categorical"
                           for c in p.choices if c != design[k]]

    def _neighbours(self, design: dict[str, Any]) -> list[dict[str, Any]]:
        """Every variant moved by -h, 0 or +h along every numeric range (a categorical change often needs a
        numeric one with it: a cooler memory leaves power for a faster clock)."""
        unit = {k: _to_unit(self.params[k], design[k]) for k in self.numeric}
        out = []
        for moves in itertools.product((0, -1, 1), repeat=len(self.numeric)):
            for variant in self._variants(design):
                moved = dict(variant)
                for k, m in zip(self.numeric, moves, strict=True):
                    moved[k] = _from_unit(self.params[k], unit[k] + m * self.step)
                out.append(moved)
        return out
