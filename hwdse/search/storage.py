"""Optuna storage and samplers: SQLite by default, PostgreSQL for many workers; the spec lives in the study.

A study created here carries its spec JSON in the user attr ``hwdse_spec``, so a worker needs
only the storage URL and the study name.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import event

from hwdse._errors import HwdseError
from hwdse.search.space import Space, distribution, grid_values
from hwdse.search.spec import spec_json

__all__ = ["make_storage", "has_study", "make_sampler", "distributions", "create_or_load", "stored_spec", "SPEC_ATTR"]

SPEC_ATTR = "hwdse_spec"


def make_storage(url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 max_retry: int = 2, origin: tuple[str, str | None] = ("--storage", None),
                 ) -> optuna.storages.RDBStorage:
    """An RDB storage. SQLite runs in WAL mode with ``synchronous=NORMAL`` (a committed trial survives a
    killed process) and serializable transactions (:func:`_sqlite_begin`); with ``heartbeat_interval``
    (seconds) stale trials of dead workers are failed and retried up to ``max_retry`` times. Errors name
    ``origin`` (where the URL came from)."""
    kwargs: dict[str, Any] = {}
    if heartbeat_interval:
        kwargs.update(heartbeat_interval=heartbeat_interval, grace_period=grace_period or 2 * heartbeat_interval,
                      heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry))
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}
    try:
        storage = _open(url, engine, kwargs)
    except (ImportError, ModuleNotFoundError) as exc:
        raise HwdseError(*origin, f"{url.split(':')[0]}: driver missing ({exc.name}); "
                                  "pip install 'hwdse[postgres]'") from None
    except Exception as exc:  # noqa: BLE001 - connection errors of any driver become one line
        raise HwdseError(*origin, f"cannot open {url}: {str(exc).splitlines()[0]}") from None
    if url.startswith("sqlite"):
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        event.listen(storage.engine, "begin", _sqlite_begin)
        storage.engine.dispose()
    return storage


def has_study(url: str, name: str, origin: tuple[str, str | None] = ("--storage", None)) -> bool:
    """Whether the storage at ``url`` holds study ``name``, without creating a SQLite file that is not there."""
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1].split("?", 1)[0]).is_file():
        return False
    return name in optuna.get_all_study_names(make_storage(url, origin=origin))


def _open(url: str, engine: dict[str, Any], kwargs: dict[str, Any], attempts: int = 5) -> optuna.storages.RDBStorage:
    """``RDBStorage(url)``, retried when another process is creating the same database's tables at
    the same moment (Optuna's table creation and version stamp are not atomic: the loser sees
    "table ... already exists" or a unique-constraint failure on the alembic version)."""
    from sqlalchemy.exc import DatabaseError

    races = ("already exists", "UNIQUE constraint failed", "duplicate key")
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **kwargs)
        except DatabaseError as exc:
            if not any(r in str(exc) for r in races) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver's own BEGIN: see _sqlite_begin
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    """Start every transaction with ``BEGIN IMMEDIATE``. Python's sqlite3 driver begins a transaction only
    at the first write, so Optuna's read-then-write (pop a WAITING trial, tell a RUNNING one) was two
    steps: two workers could both read the enqueued trial as WAITING and both run it. Holding the write
    lock from the start makes each one transaction; the other worker waits (busy timeout)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sampler(space: Space, seed: int | None, concurrent: bool = False) -> optuna.samplers.BaseSampler:
    """The spec's sampler with every behaviour-changing argument pinned (Optuna 5 changed defaults);
    ``sampler.args`` in the spec overrides the pinned values. ``refine`` proposes each generation from
    the whole history in one process (its asks only draw enqueued designs); ``concurrent`` workers on
    a refine study sample with TPE instead."""
    name, args = space.spec.sampler.name, dict(space.spec.sampler.args)
    if name == "refine" and concurrent:
        name, args = "tpe", {}
    s = optuna.samplers
    if name == "tpe":
        pinned = dict(multivariate=True, constant_liar=True, n_startup_trials=10, n_ei_candidates=24, group=False)
        return s.TPESampler(seed=seed, **{**pinned, **args})
    if name == "nsga2":
        return s.NSGAIISampler(seed=seed, **{**dict(population_size=50, mutation_prob=None, crossover_prob=0.9,
                                                      swapping_prob=0.5), **args})
    if name == "gp":
        return s.GPSampler(seed=seed, **{**dict(deterministic_objective=True, n_startup_trials=10), **args})
    if name == "cmaes":
        return s.CmaEsSampler(seed=seed, **{**dict(n_startup_trials=1), **args})
    if name in ("random", "refine"):
        return s.RandomSampler(seed=seed)
    if name == "qmc":
        return s.QMCSampler(seed=seed, **{**dict(qmc_type="sobol", scramble=True), **args})
    if name == "grid":
        grid = {k: [v.item() if hasattr(v, "item") else v for v in grid_values(space.params[k])] for k in space.outer}
        return s.GridSampler(grid, seed=seed)
    raise HwdseError(space.where, "sampler.name", f"unknown sampler {name!r}")  # unreachable: spec validates it


def distributions(space: Space) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna distributions of the design parameters (operating ones are solved per design)."""
    return {k: distribution(space.params[k]) for k in space.outer}


def create_or_load(space: Space, storage: Any, name: str, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """Create the study (directions, metric names, spec JSON) or resume it; a different spec is an error."""
    spec = space.spec
    directions = [o.direction for o in spec.objectives]
    study = optuna.create_study(storage=storage, study_name=name, sampler=sampler, directions=directions,
                                load_if_exists=True)
    stored = study.user_attrs.get(SPEC_ATTR)
    mine = _search_identity(spec_json(spec))
    if stored is None:
        study.set_user_attr(SPEC_ATTR, spec_json(spec))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.metric for o in spec.objectives])
    elif _search_identity(stored) != mine:
        raise HwdseError(space.where, None, f"study {name!r} in the storage was created from a different spec "
                                            "(search, objectives, constraints or workload differ); use another "
                                            "--out/--storage or rename the study")
    return study


def _search_identity(text: str) -> str:
    """The part of a spec that must match to resume a study (trial budget and storage may change)."""
    data = json.loads(text)
    for key in ("n_trials", "storage", "batch", "description", "sources", "enqueue"):
        data.pop(key, None)
    return json.dumps(data, sort_keys=True)


def stored_spec(storage: Any, name: str) -> dict[str, Any]:
    """The spec JSON a study was created with (workers recover the study from the storage alone)."""
    text = optuna.load_study(study_name=name, storage=storage).user_attrs.get(SPEC_ATTR)
    if text is None:
        raise HwdseError("--study", None, f"study {name!r} was not created by hwdse (no {SPEC_ATTR} user attr)")
    return json.loads(text)
