"""What a design review asks of a study beyond its Pareto front: how the best design compares with
shipping products, which constraints bind, and how sensitive the objective is to each parameter.

* :func:`baselines`: each ``baselines`` entry of the spec (a catalog arch in its own formats) run on
  the best design's workload and traffic, scored against the study's constraints;
* :func:`binding`: per constraint, how many completed trials violate it and its slack at the best
  design (binding: within ``BINDING_SLACK`` of its limit);
* :func:`gap`: the best design's first objective against the optimum of a dense grid of the same
  space (:data:`DENSE` levels per numeric design range, every choice, each design at its best
  operating point; a seeded sample of :data:`MAX_REFERENCE` designs where the grid is larger), and
  the evaluations each used;
* :func:`tornado`: one-at-a-time sensitivity of the first objective around the best design, each
  parameter moved to the ends of its range (numeric) or to each of its choices (categorical), the
  others held at the best design's values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from hwdse.search.operating import signs
from hwdse.search.points import evaluate_points
from hwdse.search.results import best_design, best_rows
from hwdse.search.space import Space, grid_values
from hwdse.search.spec import DISAGG_PATHS, Baseline, Param

__all__ = ["baselines", "binding", "gap", "pools", "tornado", "dense_values", "score_rows", "BINDING_SLACK", "DENSE",
           "MAX_REFERENCE"]

BINDING_SLACK = 0.05   # a constraint within 5 % of its limit at the best design binds it
DENSE = 32             # levels per numeric design range of the reference grid
MAX_REFERENCE = 400_000  # reference designs evaluated at most (a seeded sample of a larger grid)
DISAGG_ONLY = {f"serving.{k}" for k in DISAGG_PATHS}  # pool fields: a baseline serves aggregated


def baseline_space(space: Space, b: Baseline) -> Space:
    """The study with its base arch replaced by the baseline's (its decode pool, or aggregated serving)
    and its formats."""
    spec = space.spec
    formats = {t: getattr(b, t) for t in ("weights", "activations", "kv") if getattr(b, t) is not None}
    update: dict[str, Any] = {"arch": b.arch, "workload": spec.workload.model_copy(update=formats)}
    if spec.serving is not None and spec.serving.decode_arch is not None:
        update["serving"] = spec.serving.model_copy(update={"decode_arch": b.decode_arch})
    if b.decode_arch is None:  # aggregated: the pool sizes are no parameter of it
        update["search"] = {k: p for k, p in spec.search.items() if k not in DISAGG_ONLY}
    search = update.get("search", spec.search)
    return Space(spec.model_copy(update=update), f"{space.where}: baseline {b.arch}",
                 tuple(k for k, p in search.items() if p.kind == "categorical"))


def baselines(space: Space, ds: xr.Dataset) -> list[tuple[Baseline, xr.Dataset]]:
    """Each baseline's result with the study's ``constraint_*`` and ``feasible`` variables, on the best
    design's workload values (``scenario.*``, ``serving.*`` design values; the baseline's own formats
    where it gives them), at its own best operating point (like for like: each system at its best)."""
    design = best_design(space, ds) or {}
    out = []
    for b in space.spec.baselines:
        base = baseline_space(space, b)
        own = {f"scenario.{t}" for t in ("weights", "activations", "kv") if getattr(b, t) is not None}
        values = {k: [v] for k, v in design.items() if k.startswith(("scenario.", "serving.")) and k not in own
                  and k in base.outer}
        out.append((b, evaluate_points(base, values).isel(trial=0)))
    return out


POOLS = tuple(f"serving.{k}" for k in ("prefill_instances", "decode_instances"))


def pools(space: Space, ds: xr.Dataset) -> dict[str, xr.Dataset]:
    """A disaggregated study's pool sizes, each pair at its own best operating point (the other operating
    parameters solved for it): the study's decode pool, and each baseline that names a decode pool, as
    Datasets over ``pool`` with ``prefill_instances``/``decode_instances`` coords; empty when the pool
    sizes are not operating parameters."""
    searched = [k for k in POOLS if k in space.inner]
    if not searched:
        return {}
    design = {k: v for k, v in (best_design(space, ds) or {}).items() if k in space.outer}
    grids = np.meshgrid(*[grid_values(space.params[k]) for k in searched], indexing="ij")
    sizes = {k: g.reshape(-1).astype(float).tolist() for k, g in zip(searched, grids, strict=True)}
    n = len(next(iter(sizes.values())))
    out = {}
    systems = [(f"decode on {space.spec.serving.decode_arch}", space)]
    systems += [(f"decode on {b.decode_arch} (baseline)", baseline_space(space, b))
                for b in space.spec.baselines if b.decode_arch is not None]
    for label, system in systems:
        cols = {**{k: [v] * n for k, v in design.items() if k in system.outer}, **sizes}
        r = evaluate_points(system, cols, dim="pool")
        out[label] = r.assign_coords({k.removeprefix("serving."): ("pool", v) for k, v in sizes.items()})
    return out


def binding(space: Space, ds: xr.Dataset) -> list[dict[str, Any]]:
    """Per constraint (``constraint_*`` of the results): trials violating it among the completed ones,
    its value at the best design (<= 0 feasible) and whether it binds there."""
    done = ds.state.values == "COMPLETE" if "state" in ds.coords else np.ones(ds.sizes["trial"], bool)
    front = best_rows(ds, limit=1)
    best = front.isel(trial=0) if front.sizes["trial"] else None
    rows = []
    for name in (str(k) for k in ds.data_vars if str(k).startswith("constraint_")):
        values = np.asarray(ds[name].values, dtype=float).reshape(ds.sizes["trial"], -1).max(axis=1)
        at_best = float(np.asarray(best[name].values, dtype=float).max()) if best is not None else float("nan")
        rows.append({"constraint": name.removeprefix("constraint_"), "violated": int((values[done] > 0).sum()),
                     "trials": int(done.sum()), "at_best": at_best,
                     "binds": bool(-BINDING_SLACK <= at_best <= 0)})
    return sorted(rows, key=lambda r: -r["violated"])


def dense_values(p: Param, levels: int = DENSE) -> np.ndarray:
    """``levels`` values of a numeric range (every value of a shorter int range), or every choice."""
    if p.kind == "categorical":
        return np.asarray(p.choices, dtype=object)
    if p.kind == "int" and (int(p.high) - int(p.low)) // int(p.step or 1) + 1 <= levels:
        return np.arange(int(p.low), int(p.high) + 1, int(p.step or 1), dtype=np.int64)
    v = (np.geomspace if p.log else np.linspace)(float(p.low), float(p.high), levels)
    return np.unique(np.round(v).astype(np.int64)) if p.kind == "int" else v


def gap(space: Space, ds: xr.Dataset, levels: int = DENSE, seed: int = 0) -> dict[str, Any] | None:
    """The search's best first objective against a dense grid's (None: no design parameter to search).

    ``gap`` is relative and signed so that > 0 means the search fell short (< 0: it found a design
    between the grid's levels that beats them all); ``designs``/``points``: designs evaluated by the
    search and by the reference (each times its operating points)."""
    if not space.outer:
        return None
    axes = [dense_values(space.params[k], levels) for k in space.outer]
    total = int(np.prod([len(a) for a in axes]))
    index = np.arange(total) if total <= MAX_REFERENCE else np.sort(
        np.random.default_rng(seed).choice(total, MAX_REFERENCE, replace=False))
    picks = np.unravel_index(index, [len(a) for a in axes])
    cols = {k: a[i].tolist() for k, a, i in zip(space.outer, axes, picks, strict=True)}
    ref = score_rows(space, cols)
    objective = space.spec.objectives[0]
    sign = float(signs(space.spec)[0])

    def best_of(rows: xr.Dataset) -> float:
        ok = np.asarray(rows.feasible.values, dtype=bool)
        if "state" in rows.coords:
            ok &= rows.state.values == "COMPLETE"
        v = np.asarray(rows[objective.metric].values, dtype=float) * sign
        v = v[ok & np.isfinite(v)]
        return float(v.min() * sign) if v.size else float("nan")

    found, reference = best_of(ds), best_of(ref)
    inner = int(ds.operating_points.max()) if "operating_points" in ds else 1
    return {"metric": objective.metric, "direction": objective.direction, "found": found, "reference": reference,
            "gap": sign * (found - reference) / abs(reference) if reference else float("nan"),
            "designs": ds.sizes["trial"], "reference_designs": len(index), "grid_designs": total,
            "sampled": total > MAX_REFERENCE, "levels": levels, "operating_points": inner}


def score_rows(space: Space, cols: dict[str, list]) -> xr.Dataset:
    """Designs given as columns of design values, each at its best operating point, in chunks."""
    n = len(next(iter(cols.values())))
    step = max(1, 200_000 // max(1, _operating_points(space)))
    parts = [evaluate_points(space, {k: v[i:i + step] for k, v in cols.items()}) for i in range(0, n, step)]
    keep = ["feasible", *(o.metric for o in space.spec.objectives)]
    return xr.concat([p[keep].drop_vars("trial") for p in parts], dim="trial")


def _operating_points(space: Space) -> int:
    return int(np.prod([len(grid_values(space.params[k])) for k in space.inner])) if space.inner else 1


def tornado(space: Space, ds: xr.Dataset) -> dict[str, Any] | None:
    """The first objective around the best design: per design parameter the values tried (the ends of a
    numeric range, every choice of a categorical), each at its best operating point, the objective and
    whether each point is feasible; ``best`` is the objective at the best design. None without a
    feasible design or without a design parameter."""
    design = best_design(space, ds)
    if design is None or not space.outer:
        return None
    metric = space.spec.objectives[0].metric
    fixed = {k: design[k] for k in space.outer}
    tried = {path: list(p.choices) if p.choices is not None else (
        [int(p.low), int(p.high)] if p.kind == "int" else [float(p.low), float(p.high)])
        for path, p in ((k, space.params[k]) for k in space.outer)}
    points = [{**fixed, path: v} for path, values in tried.items() for v in values] + [fixed]
    r = evaluate_points(space, {k: [d[k] for d in points] for k in space.outer})
    objective = np.asarray(r[metric].values, dtype=float).reshape(len(points), -1).mean(axis=1)
    feasible = np.asarray(r.feasible.values, dtype=bool).reshape(len(points), -1).all(axis=1)
    rows, i = {}, 0
    for path, values in tried.items():
        n = len(values)
        rows[path] = {"values": values, "objective": objective[i:i + n].tolist(),
                      "feasible": feasible[i:i + n].tolist()}
        i += n
    return {"metric": metric, "best": float(objective[-1]), "design": design, "params": rows}
