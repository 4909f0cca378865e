"""Study results as xarray: one row per trial (dim ``trial``), params as coords, metrics as variables.

Metrics are recomputed from the stored parameters with the same vectorized evaluator (the
storage keeps params, objective values and constraints; everything else is derived).
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import xarray as xr

from hwdse._errors import HwdseError
from hwdse._version import __version__
from hwdse.search.operating import choose, signs
from hwdse.search.points import evaluate_points
from hwdse.search.select import best_index, duplicates, epsilon_front
from hwdse.search.space import Space
from hwdse.search.spec import spec_json

__all__ = ["trials_dataset", "grid_as_trials", "finalize", "write_results", "git_sha", "best_rows", "best_design",
           "best_detail", "best_serving_curves"]


def git_sha() -> str:
    """The source tree's commit, or '' when not in a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def trials_dataset(space: Space, study: optuna.Study) -> xr.Dataset:
    """Finished trials of ``study`` (complete and failed) re-evaluated into one Dataset over ``trial``."""
    keys = list(space.outer)
    trials = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                  optuna.trial.TrialState.FAIL))
              if all(k in t.params for k in keys)]
    if not trials:
        raise HwdseError(f"study {study.study_name}", None, "no finished trials yet (run some with --trials N)")
    cols = {k: [t.params[k] for t in trials] for k in keys}
    ds = evaluate_points(space, cols, dim="trial")
    ds = ds.assign_coords(trial=[t.number for t in trials])
    coords = {k: ("trial", np.asarray(v, dtype=object if space.params[k].kind == "categorical" else float))
              for k, v in cols.items()}
    coords["state"] = ("trial", np.asarray([t.state.name for t in trials], dtype=object))
    coords["reference"] = ("trial", np.asarray([bool(t.user_attrs.get("reference", False)) for t in trials]))
    coords["fail_reason"] = ("trial", np.asarray([t.user_attrs.get("fail_reason", "") for t in trials], dtype=object))
    ds = ds.assign_coords(coords)
    ds.attrs.update(evaluation="optuna", study_name=study.study_name, sampler=space.spec.sampler.name)
    return finalize(space, ds)


def grid_as_trials(space: Space, grid: xr.Dataset) -> xr.Dataset:
    """A grid sweep flattened to one row per design (dim ``trial``), params as coords; with operating
    parameters each design at its chosen operating point (:func:`hwdse.search.operating.choose`)."""
    rows = list(space.outer) if space.outer else list(space.params)
    flat = grid.stack(trial=rows).reset_index("trial")
    if len(rows) < len(space.params):
        flat = choose(space.spec, flat, [k for k in space.params if k not in rows], "trial")
    flat = flat.assign_coords(trial=np.arange(flat.sizes["trial"]))
    n = flat.sizes["trial"]
    flat = flat.assign_coords(state=("trial", np.full(n, "COMPLETE", dtype=object)),
                              reference=("trial", np.zeros(n, dtype=bool)),
                              fail_reason=("trial", np.full(n, "", dtype=object)))
    flat.attrs.update(evaluation="grid")
    return finalize(space, flat)


def finalize(space: Space, ds: xr.Dataset) -> xr.Dataset:
    """Add ``duplicate`` (a design already in an earlier row), ``pareto`` (the epsilon front among
    feasible complete rows, :mod:`hwdse.search.select`), ``best`` (the spec's ``select`` rule) and
    provenance attrs."""
    spec = space.spec
    metrics = [o.metric for o in spec.objectives]
    dims = [d for d in ds[metrics[0]].dims]
    sign = signs(spec)
    values = np.stack([ds[m].transpose(*dims).values.reshape(-1) for m in metrics], axis=1) * sign
    shape = ds[metrics[0]].shape
    valid = np.broadcast_to(ds.feasible.values, shape).reshape(-1).copy()
    if "state" in ds.coords:
        valid &= np.broadcast_to(ds.state.values == "COMPLETE", shape).reshape(-1)
    dup = np.zeros(valid.shape, dtype=bool)
    if dims == ["trial"]:
        keys = [k for k in space.params if k in ds.coords or k in ds]
        dup = duplicates(list(zip(*[[repr(x) for x in np.asarray(ds[k].values).reshape(-1)] for k in keys])))
        ds["duplicate"] = ("trial", dup)
        ds.duplicate.attrs.update(long_name="the same design as an earlier row (merged into it)")
    eps = [o.epsilon for o in spec.objectives]
    best = best_index(values, valid & ~dup, eps, spec.select)
    front = epsilon_front(values, valid & ~dup, eps, sign, keep=best)
    ds["pareto"] = (dims, front.reshape(shape))
    ds.pareto.attrs.update(long_name="on the epsilon front: non-dominated among feasible points, one design per "
                                     "box of the objectives' epsilons")
    flag = np.zeros(values.shape[0], dtype=bool)
    if best is not None:
        flag[best] = True
    ds["best"] = (dims, flag.reshape(shape))
    ds.best.attrs.update(long_name=f"the best design ({spec.select} selection)")
    ds.attrs.update(hwdse_version=__version__, git_sha=git_sha(), study_spec=spec_json(spec),
                    study=spec.name, mode=spec.mode, objectives=" ".join(metrics),
                    directions=" ".join(o.direction for o in spec.objectives),
                    created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    for k in ("overrides",):
        ds.attrs.pop(k, None)
    return ds


def best_rows(ds: xr.Dataset, limit: int = 20) -> xr.Dataset:
    """The front rows: the best design first, then the others by the first objective."""
    metrics = ds.attrs["objectives"].split()
    on = np.flatnonzero(ds.pareto.values)
    front = ds.isel(trial=on)
    order = np.argsort(front[metrics[0]].values, kind="stable")
    if ds.attrs["directions"].split()[0] == "maximize":
        order = order[::-1]
    if "best" in ds:
        flags = np.asarray(front.best.values, dtype=bool)[order]
        order = np.concatenate([order[flags], order[~flags]])
    return front.isel(trial=order[:limit])


def best_design(space: Space, ds: xr.Dataset) -> dict[str, Any] | None:
    """Parameter values of the best (first Pareto) row; None when no point is feasible."""
    best = best_rows(ds, limit=1)
    if best.sizes["trial"] == 0:
        return None
    row = best.isel(trial=0)
    out: dict[str, Any] = {}
    for k, p in space.params.items():
        v = row[k].values.item()
        out[k] = int(v) if p.kind == "int" else v
    return out


def best_detail(space: Space, ds: xr.Dataset) -> xr.Dataset | None:
    """Per-operator detail (``evaluate(detail=True)``) of the best design, for its roofline plot."""
    design = best_design(space, ds)
    return None if design is None else space.evaluate_design(design, detail=True)


CURVE_POINTS = 24


def best_serving_curves(space: Space, ds: xr.Dataset) -> dict[str, xr.Dataset]:
    """A serving study's best design swept over its load (``load``: concurrency or arrival rate from
    1/8 of the best value to 8x, one vectorized call); empty for other studies."""
    design = best_design(space, ds)
    s = space.spec.serving
    if design is None or s is None:
        return {}
    key = "serving.concurrency" if (s.concurrency is not None or "serving.concurrency" in design) else "serving.arrival_rate"
    best = float(design.get(key, getattr(s, key.removeprefix("serving."))))
    dim = key.removeprefix("serving.")
    loads = np.geomspace(max(best / 8, 1.0) if dim == "concurrency" else best / 8, best * 8, CURVE_POINTS)
    return {"load": space.evaluate_design({**design, key: xr.DataArray(loads, dims=dim, coords={dim: loads})})}


def write_results(ds: xr.Dataset, out: Path, space: Space) -> dict[str, Path]:
    """``results.nc`` (all rows) and ``best.csv`` (Pareto rows: params, objectives, constraints)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.nc", "best": out / "best.csv"}
    clean = ds.copy()
    for k in list(clean.variables):
        if clean[k].dtype == bool:
            clean[k] = clean[k].astype("i1").assign_attrs(clean[k].attrs, flag="boolean")
    clean.to_netcdf(paths["results"], engine="netcdf4")
    best = best_rows(ds, limit=10**9)
    cols = ["trial", *space.params, *ds.attrs["objectives"].split(),
            *[str(k) for k in ds.data_vars if str(k).startswith("constraint_")], "feasible"]
    lines = [",".join(cols)]
    for i in range(best.sizes["trial"]):
        row = best.isel(trial=i)
        lines.append(",".join(_cell(row[c].values) for c in cols))
    paths["best"].write_text("\n".join(lines) + "\n")
    return paths


def _cell(v: np.ndarray) -> str:
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
