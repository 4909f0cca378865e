"""Load a study: parse the file, apply every path once, probe the evaluator, check objectives.

Everything that can be wrong with a study file fails here, before any output or storage exists.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.hardware import load_arch
from hwdse.hardware._base import resolve_mode
from hwdse.search.operating import with_inner_grid
from hwdse.search.space import Space
from hwdse.search.spec import StudySpec, check_spec, parse_study

__all__ = ["load_study", "space_from_spec"]

_NEEDS = {"gp": "torch", "cmaes": "cmaes"}


def load_study(path_or_name: str | Path) -> Space:
    """A checked study from a file path or a ``studies/`` catalog name."""
    spec, where = parse_study(path_or_name)
    return space_from_spec(spec, where)


def space_from_spec(spec: StudySpec | dict[str, Any], where: str = "study") -> Space:
    """Check a parsed spec (or its JSON mapping, e.g. recovered from a storage) and bind it."""
    if not isinstance(spec, StudySpec):
        spec = check_spec(spec, where)
    _check_sampler(spec, where)
    spec = with_inner_grid(_one_mode(spec, where))
    space = Space(spec, where, tuple(k for k, p in spec.search.items() if p.kind == "categorical"))
    for path, p in spec.search.items():
        trials = [("choice", c) for c in p.choices] if p.choices is not None else [("low", p.low), ("high", p.high)]
        for label, value in trials:
            space.resolve_one(path, value, label)
    space = Space(spec, where, space.looped + _scalar_only(space))
    probe = space.evaluate_design(_probe_values(space, space.vectorized))
    _check_metrics(space, probe)
    _check_enqueue(space)
    return space


def _one_mode(spec: StudySpec, where: str) -> StudySpec:
    """The spec with its mode resolved once for every system the study compares: the design, its decode
    pool and its baselines (``auto``: achieved only if each has an achieved basis)."""
    names = [spec.arch, *([spec.serving.decode_arch] if spec.serving and spec.serving.decode_arch else []),
             *(b.arch for b in spec.baselines)]
    archs = [load_arch(name) for name in names]
    try:
        return spec.model_copy(update={"mode": resolve_mode(spec.mode, *archs)})
    except HwdseError as exc:
        raise HwdseError(where, "mode", f"{exc.where}: {exc.reason}") from None


def _check_sampler(spec: StudySpec, where: str) -> None:
    name = spec.sampler.name
    if name in _NEEDS and importlib.util.find_spec(_NEEDS[name]) is None:
        raise HwdseError(where, "sampler.name", f"sampler {name!r} needs the {_NEEDS[name]!r} package (pip install "
                                                f"{_NEEDS[name]}); choose another sampler or install it")
    if name == "cmaes" and len(spec.objectives) > 1:
        raise HwdseError(where, "sampler.name", "cmaes is single-objective; use tpe, nsga2 or random")
    if name == "cmaes" and any(p.kind == "categorical" for p in spec.search.values()):
        raise HwdseError(where, "sampler.name", "cmaes samples numeric ranges only; categorical paths need tpe")


def _probe_values(space: Space, vectorized: tuple[str, ...], labelled: bool = True) -> dict[str, Any]:
    """low/high of the ``vectorized`` paths as arrays (named dims, or plain numpy of length 2); others scalar."""
    values: dict[str, Any] = {}
    for k, p in space.params.items():
        if k in vectorized:
            pair = np.array([float(p.low), float(p.high)])
            values[k] = xr.DataArray(pair, dims=k) if labelled else pair
        else:
            values[k] = p.choices[0] if p.choices is not None else p.low
    return values


def _vectorizes(space: Space, vectorized: tuple[str, ...]) -> bool:
    """Whether the device model takes these paths as arrays, in both forms the evaluation uses."""
    try:
        space.evaluate_design(_probe_values(space, vectorized, labelled=True))
        space.evaluate_design(_probe_values(space, vectorized, labelled=False))
        return True
    except HwdseError:
        raise
    except Exception:  # noqa: BLE001 - any array failure means: evaluate this path one value at a time
        return False


def _scalar_only(space: Space) -> tuple[str, ...]:
    """Numeric paths the device model cannot take as arrays (they are looped like categoricals)."""
    if _vectorizes(space, space.vectorized):
        return ()
    return tuple(k for k in space.vectorized if not _vectorizes(space, (k,)))


def _check_metrics(space: Space, probe: xr.Dataset) -> None:
    spec, where = space.spec, space.where
    known = sorted(v for v in probe.data_vars if probe[v].dtype.kind in "fiub")
    hint = "mix_* variables (this workload is a mix)" if space.mix else ", ".join(known)
    source = "serving output" if spec.serving is not None else "evaluator output"
    for i, o in enumerate(spec.objectives):
        if o.metric not in probe.data_vars or probe[o.metric].dtype.kind not in "fiub":
            raise HwdseError(where, f"objectives[{i}].metric", f"unknown {source} {o.metric!r}; known: {hint}")
        if "scenario" in probe[o.metric].dims:
            raise HwdseError(where, f"objectives[{i}].metric",
                             f"{o.metric!r} varies per scenario of the mix; use mix_{o.metric.removeprefix('mix_')}")
    for i, c in enumerate(spec.constraints):
        if c.metric is None or c.resolved_kind not in ("max", "min"):
            continue
        if c.metric not in probe.data_vars:
            raise HwdseError(where, f"constraints[{i}].metric", f"unknown {source} {c.metric!r}; known: {hint}")
        if np.isnan(np.asarray(probe[c.metric].values, dtype=float)).all():
            raise HwdseError(where, f"constraints[{i}].metric", f"{c.metric} is NaN for arch {spec.arch!r} (the "
                                                                "device kind does not model it); every design would "
                                                                "be infeasible")


def _check_enqueue(space: Space) -> None:
    for i, design in enumerate(space.spec.enqueue):
        for path, value in design.items():
            if path not in space.params:
                raise HwdseError(space.where, f"enqueue[{i}].{path}", "not a searched path")
            if path in space.inner:
                raise HwdseError(space.where, f"enqueue[{i}].{path}", "an operating parameter: solved for each "
                                                                      "design, not enqueued; remove it")
            p = space.params[path]
            if p.choices is not None and value not in p.choices:
                raise HwdseError(space.where, f"enqueue[{i}].{path}", f"{value!r} is not one of {p.choices}")
            if p.choices is None and not p.low <= value <= p.high:
                raise HwdseError(space.where, f"enqueue[{i}].{path}", f"{value!r} outside [{p.low}, {p.high}]")
