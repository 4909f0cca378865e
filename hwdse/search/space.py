"""The search space: dotted paths -> a design (arch + scenario), evaluated by the kind-agnostic evaluator.

``arch.<path>`` goes through :func:`hwdse.hardware.with_overrides`, ``scenario.<field>`` through
:meth:`Scenario.with_`, ``serving.<field>`` (a study with a ``[serving]`` table) into
:func:`hwdse.serving.serve`, which then replaces the static-batch evaluator. Values may be numbers or
DataArrays; :func:`evaluate_design` is the one function behind a trial, a batch of trials, a grid
sweep and a dask chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import optuna
import xarray as xr

from hwdse._catalog import validate
from hwdse._errors import HwdseError
from hwdse.hardware import load_arch, with_overrides
from hwdse.perf import evaluate, evaluate_mix, resolve
from hwdse.search.operating import is_operating
from hwdse.search.spec import SERVING_PATHS, Param, Serving, StudySpec, joint_values
from hwdse.serving import load_engine, serve, serve_disaggregated
from hwdse.workload import Scenario
from hwdse.workload import scenario as named_scenario

__all__ = ["Space", "distribution", "grid_values"]

_SCENARIO_FIELDS = ("batch", "prompt", "gen", "weights", "activations", "kv", "flash_attention")
_SERVING_SCENARIO_FIELDS = ("weights", "activations", "kv")  # a serving study's lengths are serving.isl/osl


def distribution(p: Param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of one parameter."""
    if p.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(p.choices)
    if p.kind == "int":
        return optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
    return optuna.distributions.FloatDistribution(float(p.low), float(p.high), log=p.log, step=p.step)


def grid_values(p: Param) -> np.ndarray:
    """Grid points of one parameter: the choices, every int step, or ``num`` (log-)spaced floats / ``step``."""
    if p.kind == "categorical":
        return np.asarray(p.choices, dtype=object)
    if p.kind == "int":
        if p.log:
            return np.unique(np.round(np.geomspace(p.low, p.high, p.num)).astype(np.int64))
        return np.arange(int(p.low), int(p.high) + 1, int(p.step or 1), dtype=np.int64)
    if p.step is not None:
        n = int(np.floor((p.high - p.low) / p.step + 1e-9))
        return p.low + p.step * np.arange(n + 1, dtype=float)
    return (np.geomspace if p.log else np.linspace)(float(p.low), float(p.high), p.num)


@dataclass(frozen=True)
class Space:
    """A validated study spec bound to its loaded model/arch/scenario, ready to evaluate designs.

    ``looped`` lists the parameters evaluated one value at a time (categoricals, and numeric
    paths the device model cannot take as arrays); every other parameter is vectorized.
    """

    spec: StudySpec
    where: str
    looped: tuple[str, ...]

    @cached_property
    def base_arch(self) -> Any:
        return load_arch(self.spec.arch)

    @cached_property
    def decode_arch(self) -> Any:
        """The decode pool's arch of a disaggregated serving study (else None)."""
        s = self.spec.serving
        return load_arch(s.decode_arch) if s is not None and s.decode_arch is not None else None

    @cached_property
    def base_fields(self) -> dict[str, Any]:
        w = self.spec.workload
        fields = {k: getattr(w, k) for k in ("batch", "weights", "activations", "kv", "flash_attention")}
        fields.update({k: getattr(w, k) for k in ("prompt", "gen") if getattr(w, k) is not None})
        return fields

    @cached_property
    def mix(self) -> dict[Scenario, float] | None:
        if self.spec.workload.mix is None:
            return None
        out: dict[Scenario, float] = {}
        for i, m in enumerate(self.spec.workload.mix):
            lengths = {k: getattr(m, k) for k in ("prompt", "gen") if getattr(m, k) is not None}
            scen = named_scenario(m.scenario, **lengths) if m.scenario else Scenario(name=f"mix{i}", **lengths)
            out[scen] = m.weight
        return out

    @property
    def params(self) -> dict[str, Param]:
        return self.spec.search

    @property
    def vectorized(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if p not in self.looped)

    @cached_property
    def inner(self) -> tuple[str, ...]:
        """Operating parameters, solved for each design (:mod:`hwdse.search.operating`)."""
        return tuple(k for k, p in self.params.items() if is_operating(k, p))

    @property
    def outer(self) -> tuple[str, ...]:
        """Design parameters: what the search samples."""
        return tuple(k for k in self.params if k not in self.inner)

    def split(self, values: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """(arch with the ``arch.*`` values applied, scenario fields with the ``scenario.*`` values)."""
        arch_over = {k.removeprefix("arch."): v for k, v in values.items() if k.startswith("arch.")}
        arch = with_overrides(self.base_arch, arch_over, where=self.where) if arch_over else self.base_arch
        return arch, self.split_fields(values)

    def split_fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The scenario fields with the ``scenario.*`` values applied."""
        fields = dict(self.base_fields)
        fields.update({k.removeprefix("scenario."): v for k, v in values.items() if k.startswith("scenario.")})
        return fields

    def traffic(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of :func:`hwdse.serving.serve` (or ``serve_disaggregated``) with the
        ``serving.*`` values applied."""
        s = self.spec.serving
        assert s is not None
        out: dict[str, Any] = {k: getattr(s, k) for k in SERVING_PATHS if getattr(s, k) is not None}
        out.update({k.removeprefix("serving."): v for k, v in values.items() if k.startswith("serving.")})
        slo = {"ttft_slo_s": s.ttft_slo_ms, "tpot_slo_s": s.tpot_slo_ms}
        return {**out, **{k: np.inf if v is None else v / 1e3 for k, v in slo.items()}}

    def _serve(self, values: Mapping[str, Any], detail: bool) -> xr.Dataset:
        """Serve the design; ``detail``: the per-operator detail of one static batch of the requests that
        decode at once in its steady state (prompt isl, gen osl; on the decode pool when disaggregated),
        for the roofline of the best design."""
        arch_over = {k.removeprefix("arch."): v for k, v in values.items() if k.startswith("arch.")}
        decode_over = {k.removeprefix("decode_arch."): v for k, v in values.items() if k.startswith("decode_arch.")}
        fields = self.split_fields(values)
        formats = {k: fields[k] for k in ("weights", "activations", "kv")}
        traffic = self.traffic(values)
        model, mode = self.spec.workload.model, self.spec.mode
        with np.errstate(divide="ignore", invalid="ignore"):  # a point holding no request: rate 0, TTFT inf
            if self.decode_arch is None:
                ds = serve(model, self.base_arch, **traffic, **formats, mode=mode, overrides=arch_over or None)
            else:
                ds = serve_disaggregated(model, self.base_arch, self.decode_arch, **traffic, **formats, mode=mode,
                                         prefill_overrides=arch_over or None, decode_overrides=decode_over or None)
        if not detail:
            return ds
        base, over = (self.base_arch, arch_over) if self.decode_arch is None else (self.decode_arch, decode_over)
        arch = with_overrides(base, over, where=self.where) if over else base
        batch = max(1.0, float(np.round(ds.requests_decoding.values / traffic.get("decode_instances", 1.0))))
        return evaluate(model, arch, mode=mode, detail=True, batch=batch, prompt=traffic["isl"],
                        gen=traffic["osl"], **formats)

    def evaluate_design(self, values: Mapping[str, Any], detail: bool = False) -> xr.Dataset:
        """Evaluate the base design with ``values`` (path -> number/DataArray/choice) applied."""
        values = self.expand(values)
        if self.spec.serving is not None:
            return self._serve(values, detail)
        arch, fields = self.split(values)
        mode, model = self.spec.mode, self.spec.workload.model
        if self.mix is not None:
            fields = {k: v for k, v in fields.items() if k not in ("prompt", "gen")}
            if detail:  # the roofline of a mix is drawn for its first scenario
                return evaluate(model, arch, next(iter(self.mix)).with_(**fields), mode=mode, detail=True)
            return evaluate_mix(model, arch, self.mix, mode=mode, **fields)
        scen = self.spec.workload.scenario
        if scen is not None:
            return evaluate(model, arch, scen, mode=mode, detail=detail, **fields)
        return evaluate(model, arch, mode=mode, detail=detail, **fields)

    def expand(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with each table choice of a joint param replaced by its sub-paths' values."""
        out: dict[str, Any] = {}
        for k, v in values.items():
            p = self.params.get(k)
            out.update(joint_values(k, v) if p is not None and p.joint else {k: v})
        return out

    def resolve_one(self, path: str, value: Any, label: str) -> None:
        """Apply one value at one path (a table choice: its sub-paths together) on top of the base design
        and validate it (no evaluation)."""
        items = self.expand({path: value})
        serving = self.spec.serving is not None
        prefixes = ("arch.", "scenario.") + (("serving.",) if serving else ()) + (
            ("decode_arch.",) if self.decode_arch is not None else ())
        fields = _SERVING_SCENARIO_FIELDS if serving else _SCENARIO_FIELDS
        for key in items:
            if not key.startswith(prefixes):
                raise HwdseError(self.where, f"search.{path}", f"paths start with {' or '.join(map(repr, prefixes))}"
                                 + (f" (table key {key.removeprefix(path + '.')!r})" if key != path else ""))
            if key.startswith("scenario.") and key.removeprefix("scenario.") not in fields:
                extra = "; a serving study's lengths are serving.isl and serving.osl" if serving else ""
                raise HwdseError(self.where, f"search.{path}",
                                 f"unknown scenario field; expected one of {', '.join(fields)}{extra}")
            if self.mix is not None and key in ("scenario.prompt", "scenario.gen"):
                raise HwdseError(self.where, f"search.{path}", "prompt/gen are fixed per scenario of a mix")
        for key in [k for k in items if k.startswith(("serving.", "decode_arch."))]:
            check = self._resolve_serving if key.startswith("serving.") else self._resolve_decode
            check(key, items.pop(key), label, path)
        if not items:
            return
        try:
            arch, fields = self.split(items)
            scen = (next(iter(self.mix)) if self.mix else None)
            if self.spec.workload.scenario is not None and scen is None:
                scen = named_scenario(self.spec.workload.scenario)
            if self.mix:
                fields = {k: v for k, v in fields.items() if k not in ("prompt", "gen")}
            resolve(self.spec.workload.model, arch, scen, **fields)
        except HwdseError as exc:
            raise HwdseError(self.where, f"search.{path}", f"{label} {value!r}: {_reason(exc, path)}") from None

    def _resolve_decode(self, path: str, value: Any, label: str, param: str) -> None:
        """Validate one ``decode_arch.<path>`` value on the decode pool's arch (``param``: the search key)."""
        try:
            with_overrides(self.decode_arch, {path.removeprefix("decode_arch."): value}, where=self.where)
        except HwdseError as exc:
            raise HwdseError(self.where, f"search.{param}", f"{label} {value!r}: {_reason(exc, path)}") from None

    def _resolve_serving(self, path: str, value: Any, label: str, param: str) -> None:
        """Validate one ``serving.<field>`` value with the [serving] table's own rules (engine: a catalog entry)."""
        field = path.removeprefix("serving.")  # a known field: check_spec lists the others
        try:
            if field == "engine":
                load_engine(value)
            else:
                validate(Serving, {field: value}, self.where)
        except HwdseError as exc:
            reason = exc.reason if field == "engine" else _reason(exc, path)
            raise HwdseError(self.where, f"search.{param}", f"{label} {value!r}: {reason}") from None


def _reason(exc: HwdseError, path: str) -> str:
    if exc.field is None or path.endswith(exc.field):
        return exc.reason
    return f"{exc.field}: {exc.reason}"
