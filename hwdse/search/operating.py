"""The inner problem: each hardware design scored at its best operating point.

Studies search hardware; the workload knobs that a deployment tunes per design (the serving load,
the prefill:decode pool sizes, the static batch, the parallelism layout) are *operating* parameters
(:func:`is_operating`). For every design they are solved exhaustively over their grid (``num``
points of a range, default :data:`INNER_POINTS`; every integer of a short int range; every layout)
in the same vectorized evaluator call as the design, and the design keeps the point that
:func:`lexicographic` picks among the feasible ones: the best first objective, ties within its
epsilon broken by the next objectives. A design with no feasible operating point keeps its least
violating one, so a search still sees how far it misses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from hwdse.search.spec import Param, StudySpec, joint_values

__all__ = ["OPERATING_PATHS", "LAYOUT_KEYS", "INNER_POINTS", "is_operating", "with_inner_grid", "lexicographic",
           "choose", "signs"]

OPERATING_PATHS = ("serving.concurrency", "serving.arrival_rate", "serving.prefill_instances",
                   "serving.decode_instances", "scenario.batch")
LAYOUT_KEYS = frozenset({"tp", "ep", "attention_dp", "pp", "dp"})  # joint choices of these are parallelism layouts
INNER_POINTS = 48  # grid points of an operating range without its own num (about 14 % apart over 8-4096)


def is_operating(path: str, p: Param) -> bool:
    """Whether ``path`` is an operating-point knob: ``operating`` when the spec says, else the serving
    load, pool sizes, batch, and joint choices made only of parallelism-layout keys."""
    if p.operating is not None:
        return p.operating
    if path in OPERATING_PATHS:
        return True
    return p.joint and all(k.removeprefix(f"{path}.") in LAYOUT_KEYS
                           for c in p.choices or () for k in joint_values(path, str(c)))


def with_inner_grid(spec: StudySpec) -> StudySpec:
    """The spec with every operating range that sets no ``num`` at :data:`INNER_POINTS` grid points."""
    search = {k: p.model_copy(update={"num": INNER_POINTS})
              if is_operating(k, p) and p.choices is None and "num" not in p.model_fields_set else p
              for k, p in spec.search.items()}
    return spec.model_copy(update={"search": search})


def signs(spec: StudySpec) -> np.ndarray:
    """Per objective +1 (minimized) or -1 (maximized): objectives times these are smaller-is-better."""
    return np.array([1.0 if o.direction == "minimize" else -1.0 for o in spec.objectives])


def lexicographic(values: np.ndarray, ok: np.ndarray, epsilon: Sequence[float]) -> np.ndarray:
    """Index along the last axis of ``ok`` of the best candidate per leading index.

    ``values`` ``(..., n, k)`` are signed objectives (smaller is better), ``ok`` ``(..., n)`` marks
    the candidates; candidates within ``epsilon[j]`` (relative) of the best on objective ``j`` stay
    in the race for objective ``j + 1``; the first remaining candidate wins. Where no candidate is
    ok, index 0 (the caller decides what that means)."""
    alive = ok & np.all(np.isfinite(values), axis=-1)
    for j, eps in enumerate(epsilon):
        v = np.where(alive, values[..., j], np.inf)
        best = v.min(axis=-1, keepdims=True)
        alive &= v <= best + eps * np.abs(best)
    return np.argmax(alive, axis=-1)


def choose(spec: StudySpec, ds: xr.Dataset, dims: Sequence[str], lead: str) -> xr.Dataset:
    """Each ``lead`` row of a scored Dataset at its chosen operating point over ``dims``.

    The operating parameters' chosen values become coordinates of ``lead`` (their dim names are the
    parameter paths); ``operating_points`` counts the points each design was solved over."""
    dims = list(dims)
    flat = ds.transpose(lead, *dims, ...).stack(operating=dims).reset_index("operating")
    n = flat.sizes["operating"]
    shape = (flat.sizes[lead], n)

    def at(name: str) -> np.ndarray:
        """``name`` as a (design, operating point) array, broadcast where it depends on neither."""
        v = flat[name]
        v = v.expand_dims({d: flat.sizes[d] for d in (lead, "operating") if d not in v.dims})
        return np.asarray(v.transpose(lead, "operating").values, dtype=float)

    values = np.stack([at(o.metric) for o in spec.objectives], axis=-1) * signs(spec)
    feasible = at("feasible").astype(bool)
    pick = lexicographic(values, feasible, [o.epsilon for o in spec.objectives])
    none = ~np.any(feasible & np.all(np.isfinite(values), axis=-1), axis=-1)
    if none.any():  # no feasible operating point: the least violating one
        cons = [k for k in flat.data_vars if str(k).startswith("constraint_")]
        violation = sum((np.maximum(np.nan_to_num(at(k), nan=np.inf), 0.0) for k in cons), np.zeros(shape))
        pick = np.where(none, np.argmin(violation, axis=-1), pick)
    return flat.isel(operating=xr.DataArray(pick, dims=lead)).assign(operating_points=((), n))
