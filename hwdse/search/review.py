"""What a design review asks of a study beyond its Pareto front: how the best design compares with
shipping products, which constraints bind, and how sensitive the objective is to each parameter.

* :func:`baselines`: each ``baselines`` entry of the spec (a catalog arch in its own formats) run on
  the best design's workload and traffic, scored against the study's constraints;
* :func:`binding`: per constraint, how many completed trials violate it and its slack at the best
  design (binding: within ``BINDING_SLACK`` of its limit);
* :func:`tornado`: one-at-a-time sensitivity of the first objective around the best design, each
  parameter moved to the ends of its range (numeric) or to each of its choices (categorical), the
  others held at the best design's values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from hwdse.search.points import score
from hwdse.search.results import best_design, best_rows
from hwdse.search.space import Space
from hwdse.search.spec import DISAGG_PATHS, Baseline

__all__ = ["baselines", "binding", "tornado", "BINDING_SLACK"]

BINDING_SLACK = 0.05   # a constraint within 5 % of its limit at the best design binds it
DISAGG_ONLY = {f"serving.{k}" for k in DISAGG_PATHS}  # pool fields: a baseline serves aggregated


def baseline_space(space: Space, b: Baseline) -> Space:
    """The study with its base arch replaced by the baseline's (aggregated serving) and its formats."""
    spec = space.spec
    formats = {t: getattr(b, t) for t in ("weights", "activations", "kv") if getattr(b, t) is not None}
    update: dict[str, Any] = {"arch": b.arch, "workload": spec.workload.model_copy(update=formats)}
    if spec.serving is not None and spec.serving.decode_arch is not None:
        update["serving"] = spec.serving.model_copy(update={"decode_arch": None})
    return Space(spec.model_copy(update=update), f"{space.where}: baseline {b.arch}", ())


def baselines(space: Space, ds: xr.Dataset) -> list[tuple[Baseline, xr.Dataset]]:
    """Each baseline's result with the study's ``constraint_*`` and ``feasible`` variables, on the best
    design's workload and traffic values (``scenario.*``, ``serving.*``; the baseline's own formats
    where it gives them)."""
    design = best_design(space, ds) or {}
    out = []
    for b in space.spec.baselines:
        base = baseline_space(space, b)
        own = {f"scenario.{t}" for t in ("weights", "activations", "kv") if getattr(b, t) is not None}
        values = {k: v for k, v in design.items() if k.startswith(("scenario.", "serving.")) and k not in own
                  and k not in DISAGG_ONLY}
        out.append((b, score(base, base.evaluate_design(values), values)))
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


def _objective(space: Space, values: dict[str, Any], metric: str) -> tuple[float, bool]:
    """The metric and feasibility of one design."""
    r = score(space, space.evaluate_design(values), values)
    return float(np.asarray(r[metric].values, dtype=float).mean()), bool(np.asarray(r.feasible.values).all())


def tornado(space: Space, ds: xr.Dataset) -> dict[str, Any] | None:
    """The first objective around the best design: per parameter the values tried (the ends of a
    numeric range, every choice of a categorical), the objective and whether each point is feasible;
    ``best`` is the objective at the best design. None without a feasible design."""
    design = best_design(space, ds)
    if design is None:
        return None
    metric = space.spec.objectives[0].metric
    rows = {}
    for path, p in space.params.items():
        tried = list(p.choices) if p.choices is not None else (
            [int(p.low), int(p.high)] if p.kind == "int" else [float(p.low), float(p.high)])
        points = [_objective(space, {**design, path: v}, metric) for v in tried]
        rows[path] = {"values": tried, "objective": [v for v, _ in points], "feasible": [ok for _, ok in points]}
    return {"metric": metric, "best": _objective(space, design, metric)[0], "design": design, "params": rows}
