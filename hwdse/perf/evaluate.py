"""``evaluate``: a workload on a device -> TTFT, TPOT, throughput, memory, utilization (xarray)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hwdse._array import maximum_of, to_dataarray
from hwdse._errors import HwdseError
from hwdse._params import Number
from hwdse._version import __version__
from hwdse.formats import get
from hwdse.hardware import Mode, load_arch, with_overrides
from hwdse.hardware._base import DEFAULT_MODE, basis_of, resolve_mode
from hwdse.perf.economics import Economics, ownership, server_slots
from hwdse.perf.footprint import Footprint, footprint
from hwdse.perf.memo import Identity, items_key, value_key
from hwdse.perf.phases import PhaseOps, decode_phase, prefill_phase
from hwdse.perf.power_cap import Work, capped, over_budget
from hwdse.perf.record import Record
from hwdse.perf.roofline import bound
from hwdse.perf.uncertainty import energy_band, phase_band
from hwdse.workload import ModelConfig, Scenario, load_model, operator_table
from hwdse.workload.scenario import scenario as named_scenario

__all__ = ["evaluate", "evaluate_record", "evaluate_mix", "resolve", "resolve_cached", "fit_reason"]

GB = 1e9


def resolve(model: Any, arch: Any, scenario: Scenario | str | None = None,
            overrides: Mapping[str, Any] | None = None, **fields: Any) -> tuple[ModelConfig, Any, Scenario]:
    """Turn names/paths/specs into validated objects (the boundary of every entry point)."""
    return resolve_cached(model, arch, scenario, overrides, fields)[:3]


def resolve_cached(model: Any, arch: Any, scenario: Scenario | str | None, overrides: Mapping[str, Any] | None,
                   fields: Mapping[str, Any]) -> tuple[ModelConfig, Any, Scenario, bool]:
    """:func:`resolve`, and whether its objects came from the cache of scalar design points (an arch named
    in the catalog, hashable scenario, overrides and fields): then they are shared, and so are the
    caches keyed on them (:func:`_phases`)."""
    named = isinstance(arch, (str, Path))
    model, arch = load_model(model), load_arch(arch)
    key = (value_key(model), value_key(scenario), items_key(overrides), items_key(fields)) if named else (None,)
    if None in key:
        return *_resolve(model, arch, scenario, overrides, fields), False
    return *_resolved(Identity(arch), *key), True


@lru_cache(maxsize=256)
def _resolved(arch: Identity, model: tuple, scenario: tuple, overrides: tuple, fields: tuple) -> tuple:
    """:func:`_resolve` of scalar inputs given as keys (:mod:`hwdse.perf.memo`), once per process."""
    return _resolve(model[1], arch.obj, scenario[1], {k: v for k, (_, v) in overrides},
                    {k: v for k, (_, v) in fields})


def _resolve(model: ModelConfig, arch: Any, scenario: Scenario | str | None, overrides: Mapping[str, Any] | None,
             fields: Mapping[str, Any]) -> tuple[ModelConfig, Any, Scenario]:
    if overrides:
        arch = with_overrides(arch, overrides)
    scenario = _scenario(scenario, fields) if scenario is not None else Scenario(**fields)
    for field in ("weights", "activations", "kv") + (("expert_weights",) if scenario.expert_weights else ()):
        try:
            get(getattr(scenario, field))
        except HwdseError as exc:
            raise HwdseError("scenario", field, exc.reason) from None
    bind = getattr(arch, "for_workload", None)  # systems sized by the workload (spatial chip count)
    if bind is not None:
        arch = bind(model, scenario)
    return model, arch, scenario


@dataclass(frozen=True)
class _Design:
    """What a result reads of one design point (model, scenario, arch, mode) before the power budget: the
    prefill pass and mean decode step and their totals, the footprint (one device's share)."""

    prefill: PhaseOps
    decode: PhaseOps
    prefill_work: Work
    decode_work: Work
    unrunnable: str          # operators a unit cannot run ("" if none)
    ttft_band: Number
    tpot_band: Number
    prefill_totals: tuple[Number, Number, Number, Number]   # ops, bytes, peak ops/s, peak bytes/s
    decode_totals: tuple[Number, Number, Number, Number]
    mem: Footprint
    scenario_json: str


def _design(model: ModelConfig, arch: Any, scen: Scenario, mode: Mode, shared: bool) -> _Design:
    """:func:`_schedule`; ``shared`` (objects of :func:`resolve_cached`'s cache): from a bounded cache of
    scalar design points."""
    if shared:
        return _scheduled(Identity(arch), model, scen, mode)
    return _schedule(model, arch, scen, mode)


@lru_cache(maxsize=256)
def _scheduled(arch: Identity, model: ModelConfig, scen: Scenario, mode: Mode) -> _Design:
    return _schedule(model, arch.obj, scen, mode)


def _schedule(model: ModelConfig, arch: Any, scen: Scenario, mode: Mode) -> _Design:
    """Time both phases' operator tables on ``arch`` in ``mode`` (resolved); size the footprint."""
    prefill = prefill_phase(arch.schedule(operator_table(model, scen, "prefill"), mode))
    decode = decode_phase(lambda kv: arch.schedule(operator_table(model, scen, "decode", kv), mode),
                          scen.prompt, scen.gen,
                          model.sliding_window if model.windowed_layers == model.num_layers else None)
    basis = basis_of(arch, mode)
    mem = footprint(model, scen)
    shares = getattr(arch, "footprint_shares", None)  # multi-device systems: one device's share
    if shares is not None:
        mem = mem.scaled(*shares(model))
    return _Design(prefill, decode, prefill.work(), decode.work(), _unrunnable(prefill, decode),
                   phase_band(arch, basis, prefill, False), phase_band(arch, basis, decode, True),
                   _totals(prefill), _totals(decode), mem, json.dumps(_jsonable(scen.model_dump())))


def _totals(phase: PhaseOps) -> tuple[Number, Number, Number, Number]:
    """A phase's ops and bytes, and the highest matrix peak (ops/s) and bandwidth (B/s) of its operators."""
    return (phase.total(phase.flops), phase.total(phase.bytes),
            maximum_of([t.peak_ops_per_s for t in phase.timings if t.op.operands] or [np.nan]),
            maximum_of([t.bandwidth_Bps for t in phase.timings]))


def _utilization(totals: tuple[Number, Number, Number, Number], time: Any) -> tuple[Any, Any]:
    """Achieved over peak matrix ops and bandwidth of a phase (:func:`_totals`) taking ``time`` seconds."""
    flops, nbytes, peak, bw = totals
    return flops / (time * peak), nbytes / (time * bw)


def evaluate(model: Any, arch: Any, scenario: Scenario | str | None = None, *, mode: str = DEFAULT_MODE,
             overrides: Mapping[str, Any] | None = None, detail: bool = False, economics: Economics | None = None,
             **fields: Any) -> xr.Dataset:
    """Evaluate one static batch: prefill of ``batch x prompt`` tokens, then ``gen`` decode steps.

    ``model``/``arch`` are catalog names, paths or specs; ``scenario`` a :class:`Scenario`, a
    named scenario or None (then ``fields`` such as ``batch=16, prompt=1024, gen=128`` build
    one). ``overrides`` sets dotted arch paths (``{"memory.bandwidth_GBps": da}``). Any number
    may be an ``xarray.DataArray``: the result is a Dataset over its dims. With ``detail`` the
    Dataset adds per-operator variables over dims ``(phase, op)``. ``mode``: ``roofline``,
    ``achieved`` (calibrated efficiencies) or ``auto`` (the default: achieved where the arch has an
    achieved basis, else roofline); ``attrs["basis"]`` says which the result rests on.
    ``economics``: the ownership scenario of ``cost_usd`` / ``usd_per_mtoken`` (default
    :class:`hwdse.perf.economics.Economics`).
    """
    record, prefill, decode = _evaluate(model, arch, scenario, mode, overrides, economics, fields)
    ds = xr.Dataset({k: to_dataarray(v).assign_attrs(units=u, long_name=d)
                     for k, (v, u, d) in record.variables.items()})
    if detail:
        ds = ds.merge(_detail(prefill, decode))
    ds.attrs.update(record.attrs)
    return ds


def evaluate_record(model: Any, arch: Any, scenario: Scenario | str | None = None, *, mode: str = DEFAULT_MODE,
                    overrides: Mapping[str, Any] | None = None, economics: Economics | None = None,
                    **fields: Any) -> Record:
    """:func:`evaluate` without xarray: the same variables and attrs as a :class:`hwdse.perf.Record` of
    numbers (arrays where an input is one: numpy arrays broadcast by numpy's rules, no named dims).

    The light path for loops over scalar design points: a catalog arch (by name) with scalar
    ``overrides`` and fields is resolved and scheduled once per process (bounded caches, keyed on the
    catalog objects and the values), so a repeated point costs the phase arithmetic only.
    """
    return _evaluate(model, arch, scenario, mode, overrides, economics, fields)[0]


def _evaluate(model: Any, arch: Any, scenario: Scenario | str | None, mode: str,
              overrides: Mapping[str, Any] | None, economics: Economics | None,
              fields: Mapping[str, Any]) -> tuple[Record, PhaseOps, PhaseOps]:
    """The record of :func:`evaluate` and its phases (for ``detail``)."""
    model, arch, scen, shared = resolve_cached(model, arch, scenario, overrides, fields)
    mode = resolve_mode(mode, arch)
    basis = basis_of(arch, mode)
    design = _design(model, arch, scen, mode, shared)
    ttft, prefill_j, prefill_clock = capped(arch, design.prefill_work)  # hwdse.perf.power_cap: the budget's clock
    tpot, decode_j, decode_clock = capped(arch, design.decode_work)
    e2e = ttft + scen.gen * tpot
    mem = design.mem
    devices = getattr(arch, "devices", 1)
    capacity = arch.capacity_bytes
    infeasible = getattr(arch, "infeasible_reason", "") or design.unrunnable
    runs = infeasible == ""
    reachable = getattr(arch, "reachable", True)  # PE accelerators: V(f) curve, reticle, beachfront
    if not bool(np.all(reachable)):
        where_not = "" if np.ndim(reachable) == 0 else " (at some points)"
        infeasible = "; ".join(filter(None, [infeasible, "clock beyond the PE node's V(f) curve, die over the "
                                             f"reticle, more memory stacks than its edges hold or an interposer over the package limit{where_not}"]))
    if over_budget(arch):
        infeasible = "; ".join(filter(None, [infeasible, "static power at or above the power budget"]))
    p_cu, p_bu = _utilization(design.prefill_totals, ttft)
    d_cu, d_bu = _utilization(design.decode_totals, tpot)
    static = getattr(arch, "static_power_W", None)  # hwdse.hardware.power; None: dynamic energy only
    charged = 0.0 if static is None else static
    dynamic = prefill_j + scen.gen * decode_j
    energy = dynamic + charged * e2e
    decode_j = decode_j + charged * tpot
    ttft_band, tpot_band = design.ttft_band, design.tpot_band
    data = {
        "ttft_s": (ttft, "s", "time to first token (prefill of the whole batch)"),
        "tpot_s": (tpot, "s", "time per output token: mean decode step over the generated tokens"),
        "ttft_band": (ttft_band, "1", "p90 relative error of TTFT from the held-out kernel errors of its basis (NaN: "
                      "a roofline bound, or no held-out data)"),
        "tpot_band": (tpot_band, "1", "p90 relative error of TPOT, as ttft_band"),
        "energy_band": (energy_band(arch, (ttft * ttft_band + scen.gen * tpot * tpot_band) / e2e), "1",
                        "p90 relative error of the energies: their time's band plus the power model's held-out band "
                        "(NaN: a roofline bound, or a kind with no measured power)"),
        "e2e_s": (e2e, "s", "end-to-end latency of the static batch"),
        "throughput_tok_s": (scen.batch * scen.gen / e2e, "token/s", "generated tokens per second"),
        "decode_tok_s": (scen.batch / tpot, "token/s", "decode-phase generation rate"),
        "prefill_tok_s": (scen.batch * scen.prompt / ttft, "token/s", "prompt tokens processed per second"),
        "memory_bytes": (mem.total_bytes, "B", "weights + KV cache + peak activations"),
        "weights_bytes": (mem.weights_bytes, "B", "weights"),
        "kv_cache_bytes": (mem.kv_cache_bytes, "B", "KV cache at the end of generation"),
        "activation_bytes": (mem.activation_bytes, "B", "peak activations"),
        "capacity_bytes": (capacity, "B", "device memory capacity"),
        "fits": (_fits(arch, mem, capacity), "", "footprint fits in memory"),
        "feasible": (np.isfinite(ttft) & np.isfinite(tpot) & reachable & runs, "",
                     "the hardware can run every operator (attrs['infeasible_reason'] says why not)"),
        "prefill_compute_util": (p_cu, "1", "achieved / peak matrix ops, prefill"),
        "prefill_bw_util": (p_bu, "1", "achieved / peak memory bandwidth, prefill"),
        "decode_compute_util": (d_cu, "1", "achieved / peak matrix ops, decode"),
        "decode_bw_util": (d_bu, "1", "achieved / peak memory bandwidth, decode"),
        "prefill_flops": (design.prefill_totals[0], "op", "ops of the prefill pass"),
        "decode_flops": (design.decode_totals[0], "op", "mean ops of one decode step"),
        "area_mm2": (getattr(arch, "area_mm2", np.nan), "mm^2", "silicon area of the system (NaN if not modelled)"),
        "power_w": (getattr(arch, "power_W", np.nan), "W", "power budget (TDP) of the system"),
        "devices": (devices, "1", "devices (GPUs, chips, PIM boards) of the system; memory_bytes and capacity_bytes "
                                "are per device (the whole system's where a gpu-pim system pools its memories)"),
        "chips": (getattr(arch, "chips", devices), "1", "chips of the system"),
        "tok_s_per_user": (1 / tpot, "token/s", "decode rate one sequence sees (1 / TPOT)"),
        "prefill_clock": (prefill_clock, "1", "core clock of the prefill pass over the rated clock (below 1: "
                          "throttled to the power budget)"),
        "decode_clock": (decode_clock, "1", "core clock of the decode phase over the rated clock"),
        "static_power_w": (np.nan if static is None else static, "W", "static power charged over the wall time (NaN: the device models "
                                         "dynamic energy only)"),
        "dynamic_energy_j": (dynamic, "J", "operators' energy of the static batch (NaN: no energy model)"),
        "energy_j": (energy, "J", "energy of the static batch: dynamic + static power x (TTFT + gen x TPOT)"),
        "avg_power_w": (energy / e2e, "W", "mean power over the static batch"),
        "energy_j_per_token": (energy / (scen.batch * scen.gen), "J/token",
                               "energy per generated token (prefill included)"),
        "decode_energy_j_per_token": (decode_j / scen.batch, "J/token",
                                      "energy per generated token of the decode phase alone (static included)"),
        **ownership(getattr(arch, "cost_usd", np.nan), server_slots(arch), energy / e2e, scen.batch * scen.gen / e2e,
                    economics),
    }
    attrs = dict(hwdse_version=__version__, model=model.name, arch=arch.name, mode=mode, basis=basis,
                 infeasible_reason=infeasible, fit_rule=getattr(arch, "fit_rule", "footprint <= capacity"),
                 fit_reason=_placement_reason(arch, mem),
                 scenario=design.scenario_json,
                 overrides=json.dumps({k: _jsonable(v) for k, v in (overrides or {}).items()}))
    return Record(data, attrs), design.prefill, design.decode


def _fits(arch: Any, mem: Footprint, capacity: Any) -> Any:
    """Footprint against capacity; a system with several memories checks them its own way (``fits``)."""
    rule = getattr(arch, "fits", None)
    if rule is None:
        return mem.total_bytes <= capacity
    return rule(mem)


def _placement_reason(arch: Any, mem: Footprint) -> str:
    """Why ``mem`` does not fit a system with several memories, from its own rule (``fit_reason``); "" where it
    fits or the system has one memory (:func:`fit_reason` words that case from the result)."""
    reason = getattr(arch, "fit_reason", None)
    return "" if reason is None else reason(mem)


def _unrunnable(*phases: PhaseOps) -> str:
    """Operators a unit cannot run (infinite time), e.g. a format its datapath lacks; "" if none."""
    names = []
    for phase in phases:
        for t in phase.timings:
            if np.isinf(np.asarray(t.compute_s)).any() or np.isinf(np.asarray(t.memory_s)).any():
                label = f"{t.op.name} on {t.unit} ({t.compute_class})"
                if label not in names:
                    names.append(label)
    return f"cannot run {', '.join(names)}" if names else ""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (xr.DataArray, np.ndarray)):
        return f"<array over {', '.join(getattr(value, 'dims', ())) or value.shape}>"
    return value


def _detail(prefill: PhaseOps, decode: PhaseOps) -> xr.Dataset:
    """Per-operator variables over ``(phase, op)``; decode values are means over the steps. An operator
    of one phase only (MLA: prefill decompresses, decode absorbs) is NaN (or "") in the other."""
    names = list(dict.fromkeys([t.op.name for t in prefill.timings] + [t.op.name for t in decode.timings]))
    columns: dict[str, list[xr.DataArray]] = {}
    for phase in (prefill, decode):
        own = [t.op.name for t in phase.timings]
        rows = {
            "op_count": [t.op.count for t in phase.timings],
            "op_flops": phase.flops,
            "op_bytes": phase.bytes,
            "op_time_s": phase.time_s,
            "op_compute_s": phase.compute_s,
            "op_memory_s": phase.memory_s,
            "op_bound": [bound(t) for t in phase.timings],
            "op_unit": [t.unit for t in phase.timings],
            "op_compute_class": [t.compute_class for t in phase.timings],
        }
        for key, values in rows.items():
            column = xr.concat([to_dataarray(v) for v in values], dim="op", coords="minimal", compat="override")
            column = column.assign_coords(op=own)
            if own != names:
                fill = "" if column.dtype.kind in "OUS" else np.nan
                column = column.reindex(op=names, fill_value=fill)
            columns.setdefault(key, []).append(column)
    ds = xr.Dataset({k: xr.concat(v, dim="phase", coords="minimal", compat="override") for k, v in columns.items()})
    ds = ds.assign_coords(phase=["prefill", "decode"], op=names)
    ds["op_intensity"] = ds.op_flops / ds.op_bytes
    ds["op_attainable_ops_per_s"] = ds.op_flops / ds.op_time_s
    return ds


def _scenario(scenario: Scenario | str, fields: Mapping[str, Any]) -> Scenario:
    if isinstance(scenario, str):
        return named_scenario(scenario, **fields)
    return scenario.with_(**fields) if fields else scenario


def evaluate_mix(model: Any, arch: Any, mix: Mapping[str | Scenario, float], *, mode: str = DEFAULT_MODE,
                 overrides: Mapping[str, Any] | None = None, **fields: Any) -> xr.Dataset:
    """Evaluate a weighted mix of scenarios (weights = share of requests).

    Per-scenario results lie along dim ``scenario``; ``mix_*`` variables aggregate them:
    request-weighted TTFT and latency, token-weighted TPOT, tokens over time for throughput.
    ``fields`` (e.g. ``batch=16``) apply to every scenario of the mix.
    """
    if not mix:
        raise HwdseError("mix", None, "needs at least one scenario")
    scenarios = [_scenario(s, fields) for s in mix]
    weights = np.asarray(list(mix.values()), dtype=float)
    if (weights < 0).any() or weights.sum() <= 0:
        raise HwdseError("mix", "weights", f"must be >= 0 with a positive sum, got {weights.tolist()}")
    results = [evaluate(model, arch, s, mode=mode, overrides=overrides) for s in scenarios]
    ds = xr.concat(results, dim="scenario", combine_attrs="drop_conflicts")
    ds = ds.assign_coords(scenario=[s.name for s in scenarios])
    w = xr.DataArray(weights / weights.sum(), dims="scenario", coords={"scenario": ds.scenario})
    gen = xr.concat([to_dataarray(s.gen) for s in scenarios], dim="scenario").assign_coords(scenario=ds.scenario)
    batch = xr.concat([to_dataarray(s.batch) for s in scenarios], dim="scenario").assign_coords(scenario=ds.scenario)
    ds["weight"] = w
    ds["mix_ttft_s"] = (w * ds.ttft_s).sum("scenario")
    ds["mix_tpot_s"] = (w * gen * ds.tpot_s).sum("scenario") / (w * gen).sum("scenario")
    ds["mix_e2e_s"] = (w * ds.e2e_s).sum("scenario")
    ds["mix_throughput_tok_s"] = (w * batch * gen).sum("scenario") / (w * ds.e2e_s).sum("scenario")
    ds["mix_energy_j_per_token"] = (w * ds.energy_j).sum("scenario") / (w * batch * gen).sum("scenario")
    ds["mix_fits"] = ds.fits.all("scenario")
    return ds


def fit_reason(ds: xr.Dataset) -> str:
    """Why a (scalar) result does not fit, in GB; empty when it fits. A system with several memories (gpu-pim)
    names the memory over capacity and what it holds (``attrs["fit_reason"]``; over a sweep, at its worst point)."""
    if bool(ds.fits):
        return ""
    if ds.attrs.get("fit_reason"):
        return ds.attrs["fit_reason"]
    if float(ds.memory_bytes) <= float(ds.capacity_bytes):
        return f"fails the system's placement rule: {ds.attrs.get('fit_rule', '')}"
    f = {k: float(ds[k]) / GB for k in ("memory_bytes", "weights_bytes", "kv_cache_bytes", "activation_bytes",
                                         "capacity_bytes")}
    return (f"needs {f['memory_bytes']:.1f} GB (weights {f['weights_bytes']:.1f} + KV cache "
            f"{f['kv_cache_bytes']:.1f} + activations {f['activation_bytes']:.1f}) > capacity "
            f"{f['capacity_bytes']:.1f} GB")
