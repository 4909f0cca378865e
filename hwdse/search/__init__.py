"""Studies: a declarative search space over dotted paths, Optuna trials or vectorized grid sweeps,
results as xarray Datasets (``results.nc``, ``best.csv``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import optuna
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.search.load import load_study, space_from_spec
from hwdse.search.points import evaluate_grid, evaluate_points, pareto_mask
from hwdse.search.results import grid_as_trials, trials_dataset, write_results
from hwdse.search.runner import default_storage, run_trials, run_worker, spawn_workers
from hwdse.search.space import Space
from hwdse.search.spec import StudySpec, schema
from hwdse.search.storage import create_or_load, has_study, make_storage
from hwdse.search.sweep import grid_size, sweep

__all__ = ["StudyRun", "Space", "StudySpec", "load_study", "space_from_spec", "run_study", "run_worker", "sweep",
           "evaluate_points", "evaluate_grid", "pareto_mask", "schema", "grid_size"]


@dataclass
class StudyRun:
    """What a run produced: the results Dataset, the Optuna study (None for a grid) and the files."""

    results: xr.Dataset
    study: optuna.Study | None
    out: Path
    space: Space
    files: dict[str, Path] = field(default_factory=dict)


def run_study(study: str | Path | Space, out: str | Path | None = None, *, n_trials: int | None = None,
              storage: str | None = None, jobs: int = 1, batch: int | None = None, dask: str | None = None,
              heartbeat_interval: int = 60, progress: Callable[[int, float | None], None] | None = None) -> StudyRun:
    """Run (or resume) a study and write ``results.nc`` and ``best.csv`` into ``out`` (default results/<name>).

    Grid studies (``sampler = "grid"``), and studies whose every parameter is an operating one, are
    evaluated as one vectorized sweep (``dask`` for chunks on dask.distributed); a grid with design and
    operating parameters keeps each design at its best operating point. Others run the sampler's trials
    on ``storage`` (default ``sqlite:///OUT/study.db``), each design at its best operating point.
    """
    space = study if isinstance(study, Space) else load_study(study)
    spec = space.spec
    out = Path(out if out is not None else Path("results") / spec.name)
    if spec.sampler.name == "grid" or not space.outer:  # no design to search: every operating point is a row
        grid = sweep(space, dask=dask)
        out.mkdir(parents=True, exist_ok=True)
        ds = grid_as_trials(space, grid)
        if ds.sizes["trial"] == grid.feasible.size:  # one row per grid point: its front flags on the grid
            grid = grid.assign(pareto=(tuple(space.params), ds.pareto.values.reshape(grid.feasible.shape)))
        grid.pipe(_bools_to_int).to_netcdf(out / "sweep.nc", engine="netcdf4")
        files = write_results(ds, out, space)
        files["sweep"] = out / "sweep.nc"
        return StudyRun(ds, None, out, space, files)
    n = n_trials if n_trials is not None else spec.n_trials
    url = storage or spec.storage or default_storage(out)
    origin = (space.where, "storage") if storage is None and spec.storage else ("--storage", None)
    if n == 0 and not has_study(url, spec.name, origin):
        raise HwdseError("--trials", None, f"0 on a new study ({spec.name!r} is not stored in {url}): nothing was "
                                           "run or created")
    out.mkdir(parents=True, exist_ok=True)
    if jobs > 1:
        st = make_storage(url, heartbeat_interval=heartbeat_interval, origin=origin)
        opt = create_or_load(space, st, spec.name, optuna.samplers.RandomSampler())
        for design in spec.enqueue:
            opt.enqueue_trial(design, user_attrs={"reference": True}, skip_if_exists=True)
        before = len(opt.get_trials(deepcopy=False))
        procs = spawn_workers(url, spec.name, n, jobs, heartbeat_interval=heartbeat_interval, seed=spec.sampler.seed)
        while any(p.poll() is None for p in procs):
            time.sleep(0.5)
            if progress:
                progress(len(opt.get_trials(deepcopy=False)) - before, None)
        if progress:
            progress(len(opt.get_trials(deepcopy=False)) - before, None)
        failed = sum(bool(p.returncode) for p in procs)
        if failed and not opt.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                                  optuna.trial.TrialState.FAIL)):
            raise HwdseError("--jobs", None, f"{failed} of {len(procs)} workers failed (their errors are above) "
                                             "and no trial is stored")
    else:
        failed = 0
        opt = run_trials(space, make_storage(url, origin=origin), spec.name, n, batch or spec.batch, progress)
    ds = trials_dataset(space, opt)
    run = StudyRun(ds, opt, out, space, write_results(ds, out, space))
    if failed:  # what the others stored is written first: a failed worker loses no result
        raise HwdseError("--jobs", None, f"{failed} of {len(procs)} workers failed (their errors are above); the "
                                         f"{ds.sizes.get('trial', 0)} stored trials are written to {out}")
    return run


def _bools_to_int(ds: xr.Dataset) -> xr.Dataset:
    for k in list(ds.variables):
        if ds[k].dtype == bool:
            ds[k] = ds[k].astype("i1").assign_attrs(ds[k].attrs, flag="boolean")
    return ds
