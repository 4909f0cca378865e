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

from hwdse._version import __version__
from hwdse._errors import HwdseError
from hwdse.search.points import evaluate_points, pareto_mask
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
    keys = list(space.params)
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
    """A grid sweep flattened to one row per point (dim ``trial``), params as coords."""
    flat = grid.stack(trial=list(space.params)).reset_index("trial")
    flat = flat.assign_coords(trial=np.arange(flat.sizes["trial"]))
    n = flat.sizes["trial"]
    flat = flat.assign_coords(state=("trial", np.full(n, "COMPLETE", dtype=object)),
                              reference=("trial", np.zeros(n, dtype=bool)),
                              fail_reason=("trial", np.full(n, "", dtype=object)))
    flat.attrs.update(evaluation="grid")
    return finalize(space, flat)


def finalize(space: Space, ds: xr.Dataset) -> xr.Dataset:
    """Add the ``pareto`` flag (non-dominated among feasible complete points) and provenance attrs."""
    metrics = [o.metric for o in space.spec.objectives]
    dims = [d for d in ds[metrics[0]].dims]
    values = np.stack([ds[m].transpose(*dims).values.reshape(-1) for m in metrics], axis=1)
    valid = np.broadcast_to(ds.feasible.values, ds[metrics[0]].shape).reshape(-1).copy()
    if "state" in ds.coords:
        valid &= np.broadcast_to(ds.state.values == "COMPLETE", ds[metrics[0]].shape).reshape(-1)
    mask = pareto_mask(values, [o.direction for o in space.spec.objectives], valid)
    ds["pareto"] = (dims, mask.reshape(ds[metrics[0]].shape))
    ds.pareto.attrs.update(long_name="non-dominated among feasible points")
    ds.attrs.update(hwdse_version=__version__, git_sha=git_sha(), study_spec=spec_json(space.spec),
                    study=space.spec.name, mode=space.spec.mode, objectives=" ".join(metrics),
                    directions=" ".join(o.direction for o in space.spec.objectives),
                    created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    for k in ("overrides",):
        ds.attrs.pop(k, None)
    return ds


def best_rows(ds: xr.Dataset, limit: int = 20) -> xr.Dataset:
    """The Pareto rows (the best for one objective), sorted by the first objective."""
    metrics = ds.attrs["objectives"].split()
    front = ds.isel(trial=np.flatnonzero(ds.pareto.values))
    order = np.argsort(front[metrics[0]].values)
    if ds.attrs["directions"].split()[0] == "maximize":
        order = order[::-1]
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
    1/8 of the best value to 8x, one vectorized call) and, when pool sizes are searched (disaggregated),
    over every integer size of the searched ranges at the best load (``pools``); empty for other studies."""
    design = best_design(space, ds)
    s = space.spec.serving
    if design is None or s is None:
        return {}
    key = "serving.concurrency" if (s.concurrency is not None or "serving.concurrency" in design) else "serving.arrival_rate"
    best = float(design.get(key, getattr(s, key.removeprefix("serving."))))
    dim = key.removeprefix("serving.")
    loads = np.geomspace(max(best / 8, 1.0) if dim == "concurrency" else best / 8, best * 8, CURVE_POINTS)
    out = {"load": space.evaluate_design({**design, key: xr.DataArray(loads, dims=dim, coords={dim: loads})})}
    axes = {}
    for field in ("prefill_instances", "decode_instances"):
        p = space.spec.search.get(f"serving.{field}")
        if p is not None and p.low is not None:
            sizes = np.arange(int(p.low), int(p.high) + 1, dtype=float)
            axes[f"serving.{field}"] = xr.DataArray(sizes, dims=field, coords={field: sizes})
    if axes:
        out["pools"] = space.evaluate_design({**design, **axes}).assign_coords({dim: best})
    return out


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
