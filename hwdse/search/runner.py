"""Run a study: batched ask/tell in one process, or Optuna workers (heartbeat) on a shared storage.

Single process (``jobs=1``): the sampler works on an in-memory mirror of the stored study;
``batch`` asked trials are evaluated in one vectorized call, told, and immediately committed to
the RDB storage (``add_trials``). The storage only ever holds finished trials, so Ctrl-C or
SIGKILL loses at most the batch being evaluated and never leaves a trial RUNNING.
Workers (``jobs > 1`` or ``hwdse study worker``) run ``study.optimize`` on the storage itself
with heartbeats: a killed worker's trial is failed and retried by the others.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.search.load import space_from_spec
from hwdse.search.operating import signs
from hwdse.search.points import evaluate_points
from hwdse.search.refine import Refine
from hwdse.search.space import Space
from hwdse.search.storage import (
    create_or_load,
    distributions,
    has_study,
    make_sampler,
    make_storage,
    stored_spec,
)

__all__ = ["outcomes", "run_trials", "run_worker", "spawn_workers", "suggest"]

Progress = Callable[[int, float | None], None]


def outcomes(space: Space, ds: xr.Dataset) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """Per point: objective values (N x k), constraint values, and a failure reason ('' when fine)."""
    metrics = [o.metric for o in space.spec.objectives]
    values = np.stack([np.asarray(ds[m].values, dtype=float).reshape(-1) for m in metrics], axis=1)
    cons = {str(k).removeprefix("constraint_"): np.array(ds[k].values, dtype=float).reshape(-1)
            for k in ds.data_vars if str(k).startswith("constraint_")}
    reasons = [""] * len(values)
    for i in np.flatnonzero(~np.all(np.isfinite(values), axis=1)):  # bookkeeping of failed points only
        bad = [m for m, v in zip(metrics, values[i], strict=True) if not np.isfinite(v)]
        why = ("infinite: an unstable serving point, over the engine's capacity or with a format it cannot run"
               if np.isinf(values[i]).any() and space.spec.serving is not None else
               "NaN: the device model does not provide it, e.g. energy without an energy model")
        reasons[i] = f"objective {', '.join(bad)} is not finite ({why})"
    for v in cons.values():
        v[np.isnan(v)] = np.inf  # a constraint that cannot be evaluated is violated, not ignored
    return values, cons, reasons


def _best(space: Space, values: np.ndarray, cons: dict[str, np.ndarray]) -> float | None:
    ok = np.all(np.isfinite(values), axis=1)
    for v in cons.values():
        ok &= v <= 0
    if not ok.any():
        return None
    col = values[ok, 0]
    return float(col.min() if space.spec.objectives[0].direction == "minimize" else col.max())


def run_trials(space: Space, storage: Any, name: str, n_trials: int, batch: int,
               progress: Progress | None = None) -> optuna.Study:
    """Run ``n_trials`` more trials of the study in this process (see the module docstring)."""
    study = create_or_load(space, storage, name, optuna.samplers.RandomSampler())
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    # a resumed study continues the seed sequence instead of replaying it (no duplicate designs)
    sampler = make_sampler(space, space.spec.sampler.seed + len(finished))
    mirror = optuna.create_study(directions=[o.direction for o in space.spec.objectives], sampler=sampler)
    mirror.add_trials(finished)
    for design in space.spec.enqueue:
        mirror.enqueue_trial(design, user_attrs={"reference": True}, skip_if_exists=True)
    dists = distributions(space)
    refine = Refine(space, space.spec.sampler.seed) if space.spec.sampler.name == "refine" else None
    history = [_record(space, t) for t in finished]  # refine: design, signed values, ok, violation
    done, best = 0, None
    if progress:  # the storage is open and the study checked: show the bar
        progress(0, None)
    while done < n_trials:
        size = min(batch, n_trials - done)
        if refine is not None:
            waiting = len(mirror.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))
            designs = [] if waiting else refine.propose(
                [h[0] for h in history], np.array([h[1] for h in history]).reshape(len(history), len(space.spec.objectives)),
                np.array([h[2] for h in history], dtype=bool), np.array([h[3] for h in history]), n_trials - done)
            for design in designs:
                mirror.enqueue_trial(design)
            size = waiting or len(designs)
            if not size:
                break  # converged: no new design near the best ones
        trials = [mirror.ask(dists) for _ in range(size)]
        values, cons, reasons = outcomes(space, evaluate_points(space, {k: [t.params[k] for t in trials]
                                                                         for k in dists}))
        for i, t in enumerate(trials):
            for cname, v in cons.items():
                t.set_constraint(cname, float(v[i]))
            if reasons[i]:
                t.set_user_attr("fail_reason", reasons[i])
                mirror.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                mirror.tell(t, values[i].tolist())
        all_trials = mirror.get_trials(deepcopy=False)
        study.add_trials([all_trials[t.number] for t in trials])  # committed: this batch is safe now
        done += len(trials)
        signed = values * signs(space.spec)
        violation = sum((np.maximum(v, 0.0) for v in cons.values()), np.zeros(len(trials)))
        history += [(t.params, signed[i], not reasons[i] and violation[i] == 0, float(violation[i]))
                    for i, t in enumerate(trials)]
        b = _best(space, values, cons)
        if b is not None:
            best = b if best is None else (min(best, b) if space.spec.objectives[0].direction == "minimize"
                                           else max(best, b))
        if progress:
            progress(done, best)
    return study


def _record(space: Space, t: optuna.trial.FrozenTrial) -> tuple[dict[str, Any], np.ndarray, bool, float]:
    """A stored trial as refine's history entry: design, signed objectives, feasible, total violation."""
    sign = signs(space.spec)
    values = np.asarray(t.values, dtype=float) * sign if t.values is not None else np.full(len(sign), np.nan)
    cons = [float(v) for k, v in t.system_attrs.items() if k.startswith("constraints:")]
    violation = float(sum(max(v, 0.0) for v in cons))
    return t.params, values, bool(t.values is not None and violation == 0), violation


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Suggest every parameter of the space on ``trial``."""
    out: dict[str, Any] = {}
    for k in space.outer:
        p = space.params[k]
        if p.kind == "categorical":
            out[k] = trial.suggest_categorical(k, p.choices)
        elif p.kind == "int":
            out[k] = trial.suggest_int(k, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            out[k] = trial.suggest_float(k, float(p.low), float(p.high), step=p.step, log=p.log)
    return out


def run_worker(url: str, name: str, n_trials: int, *, heartbeat_interval: int = 60, grace_period: int | None = None,
               seed: int | None = None, progress: Progress | None = None) -> optuna.Study:
    """Join a stored study from any machine: the spec is read from the storage; heartbeats on."""
    if not has_study(url, name):
        raise HwdseError("--study", None, f"no study named {name!r} in the storage")
    storage = make_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    space = space_from_spec(stored_spec(storage, name), f"study {name}")
    study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(space, seed, concurrent=True))
    _fail_orphans(study, storage.get_heartbeat_interval() or heartbeat_interval, grace_period or 2 * heartbeat_interval)
    count = [0]
    if progress:
        progress(0, None)

    def objective(trial: optuna.Trial) -> Any:
        params = suggest(trial, space)
        values, cons, reasons = outcomes(space, evaluate_points(space, {k: [v] for k, v in params.items()}))
        for cname, v in cons.items():
            trial.set_constraint(cname, float(v[0]))
        if reasons[0]:
            trial.set_user_attr("fail_reason", reasons[0])
            return [float("nan")] * values.shape[1] if values.shape[1] > 1 else float("nan")
        return values[0].tolist() if values.shape[1] > 1 else float(values[0, 0])

    def tick(_study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        count[0] += 1
        if progress:
            progress(count[0], None)

    study.optimize(objective, n_trials=n_trials, callbacks=[tick], gc_after_trial=False)
    return study


def _fail_orphans(study: optuna.Study, interval: int, grace: int) -> None:
    """Fail RUNNING trials that never drew a parameter and are older than the grace period.

    Optuna's heartbeat covers a trial from its first heartbeat on; a worker killed in the few
    milliseconds between creating a trial and starting its heartbeat leaves a RUNNING trial with
    no heartbeat and no parameters, which no stale check ever fails. A live worker draws its
    first parameter immediately, so such a trial older than the grace period is an orphan.
    """
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        start = t.datetime_start.replace(tzinfo=None) if t.datetime_start else now
        if not t.params and (now - start).total_seconds() > max(grace, interval):
            try:
                study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                pass  # another worker got there first


def spawn_workers(url: str, name: str, n_trials: int, jobs: int, *, heartbeat_interval: int = 60,
                  seed: int = 0) -> list[subprocess.Popen]:
    """Start ``jobs`` ``hwdse study worker`` processes sharing ``n_trials`` (the runner's --jobs)."""
    shares = [n_trials // jobs + (i < n_trials % jobs) for i in range(jobs)]
    procs = []
    for i, share in enumerate(s for s in shares if s):
        cmd = [sys.executable, "-m", "hwdse.cli", "study", "worker", "--storage", url,
               "--study", name, "--trials", str(share), "--heartbeat", str(heartbeat_interval),
               "--seed", str(seed + 7919 * (i + 1)), "--quiet"]
        procs.append(subprocess.Popen(cmd))
    return procs


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"
