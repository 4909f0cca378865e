"""PIM versus GPU for decode as it is deployed: continuous batching, each system at its best operating point.

For each model x context x traffic tier, every candidate system is served (:func:`hwdse.serving.serve`)
aggregated, and disaggregated (:func:`hwdse.serving.serve_disaggregated`) with a GPU prefill pool and
the candidate as the decode pool, over its mappings (GPU layouts; AiM tensor-parallel, layer-per-card,
replicas), the client concurrency and, disaggregated, the prefill:decode pool ratio. Each system's best
point maximizes goodput per kW under the tier's TTFT and TPOT objectives (ties within 1 % go to the
lower TPOT). Every system is on one basis: one mode for all (``auto``: achieved where each has a
basis), power = static + dynamic with a host server charged per node to every system, and a build
cost from the same cost model. A verdict compares the best system with the runner-up against both
energy bands (:func:`hwdse.perf.uncertainty.exceeds`): a win inside them is no win, and a system that
is the only one to serve a cell is "only serves", never a winner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from hwdse.hardware import load_arch, with_overrides
from hwdse.hardware._base import DEFAULT_MODE, resolve_mode
from hwdse.perf import evaluate, fit_reason
from hwdse.report.pim_study import binding_limit
from hwdse.search.operating import lexicographic
from hwdse.serving import serve, serve_disaggregated

__all__ = ["Candidate", "CANDIDATES", "TRAFFIC", "PREFILL", "serving_comparison"]


@dataclass(frozen=True)
class Candidate:
    """A system of the comparison: its arch, the 16-bit format it computes in, its mappings (name ->
    overrides) and the overrides that put it on the common power basis."""

    arch: str
    fmt: str
    mappings: Mapping[str, Mapping[str, Any]]
    basis: Mapping[str, Any] = field(default_factory=dict)


def _host_w() -> float:
    """The host server's power charged per node to every system: the figure AiM's model already carries."""
    return float(load_arch("gddr6-aim").cards.host_W)


def _candidates() -> dict[str, Candidate]:
    hosts = {"host_W": _host_w()}
    return {
        "GPU": Candidate("dgx-a100-x2", "fp16", {
            "TP4": {"tp": 4}, "TP8": {"tp": 8}, "TP16 (2 nodes)": {"tp": 16}, "TP8 x PP2 (2 nodes)": {"tp": 8, "pp": 2}},
            hosts),
        "GPU+HBM-PIM": Candidate("dgx-a100-attacc", "fp16", {"AttAcc (TP8 + 8 PIM devices)": {},
                                                             "AttAcc, routed experts in PIM": {"experts": "pim"}},
                                 {f"xpu.{k}": v for k, v in hosts.items()}),
        "AiM": Candidate("gddr6-aim", "bf16", {
            "tensor over 1280 chips": {}, "layer per card (40 stages)": {"stages": 40},
            "5 replicas (one host each)": {"replicas": 5},
            "5 replicas x 8 stages (a card each)": {"replicas": 5, "stages": 8}}),
    }


CANDIDATES = _candidates()
# the GPU prefill pool of the disaggregated options: one DGX node of the GPU system (TP 8)
PREFILL = ("dgx-a100-x2", {"tp": 8, "host_W": _host_w()})
# traffic tiers: (TTFT, TPOT) objectives in s, on means (percentiles: a later serving issue)
TRAFFIC: dict[str, tuple[float, float]] = {"offline": (np.inf, np.inf), "server": (2.0, 0.2),
                                           "interactive": (0.45, 0.04)}
TRAFFIC_SOURCE = ("MLPerf Inference Llama-2-70B scenarios: offline (no latency constraint), server (TTFT 2 s, "
                  "TPOT 200 ms) and interactive (TTFT 450 ms, TPOT 40 ms); p99 there, means here")
CONCURRENCY = np.unique(np.round(np.geomspace(1, 4096, 40)))
PREFILL_INSTANCES = np.array([1.0, 2.0, 3.0, 4.0, 6.0, 8.0])
DECODE_INSTANCES = np.array([1.0, 2.0, 4.0])
EPSILON = 0.01  # goodput per kW within 1 % of the best: the lower TPOT wins
_FIELDS = ("goodput_per_kw", "goodput_tok_s_per_device", "usd_per_mtoken", "energy_j_per_token", "avg_power_w",
           "tpot_s", "ttft_s", "throughput_tok_s", "requests_decoding", "energy_band", "tpot_band")


def _options(candidate: Candidate) -> list[tuple[str, str, dict[str, Any]]]:
    """(deployment, mapping, overrides) of every way the candidate serves."""
    return [(deployment, name, {**candidate.basis, **overrides})
            for deployment in ("aggregated", "disaggregated") for name, overrides in candidate.mappings.items()]


def _served(model: str, candidate: Candidate, deployment: str, overrides: dict[str, Any], isl: float, osl: float,
            mode: str) -> xr.Dataset:
    """One option over its operating grid: (concurrency) aggregated, (concurrency, prefill, decode) pools."""
    fmt = dict(weights=candidate.fmt, activations=candidate.fmt, kv=candidate.fmt, mode=mode, isl=isl, osl=osl)
    c = xr.DataArray(CONCURRENCY, dims="concurrency", coords={"concurrency": CONCURRENCY})
    if deployment == "aggregated":
        return serve(model, candidate.arch, concurrency=c, overrides=overrides, **fmt)
    arch, pre = PREFILL
    return serve_disaggregated(
        model, with_overrides(load_arch(arch), pre), with_overrides(load_arch(candidate.arch), overrides),
        concurrency=c, prefill_instances=xr.DataArray(PREFILL_INSTANCES, dims="prefill_instances",
                                                      coords={"prefill_instances": PREFILL_INSTANCES}),
        decode_instances=xr.DataArray(DECODE_INSTANCES, dims="decode_instances",
                                      coords={"decode_instances": DECODE_INSTANCES}), **fmt)


def _best(ds: xr.Dataset, ttft_slo: float, tpot_slo: float) -> dict[str, Any]:
    """The operating point of most goodput per kW under the objectives (its values and coordinates)."""
    ds = ds.assign(goodput_per_kw=ds.throughput_tok_s / ds.avg_power_w * 1e3)
    flat = ds.stack(point=[d for d in ds.dims]).reset_index("point")
    meets = (flat.stable & (flat.ttft_s <= ttft_slo) & (flat.tpot_s <= tpot_slo)).values.astype(bool)
    values = np.stack([-flat.goodput_per_kw.values, flat.tpot_s.values], axis=-1)
    with np.errstate(invalid="ignore"):  # no point meets: index 0, reported as not serving
        i = int(lexicographic(values, meets, [EPSILON, 0.0]))
    row = flat.isel(point=i)
    out = {k: float(row[k]) for k in _FIELDS if k in row}
    out["goodput_per_kw"] = out["goodput_per_kw"] if meets[i] else 0.0
    out["goodput_tok_s_per_device"] = float(row.goodput_tok_s_per_device) if meets[i] else 0.0
    out.update(serves=bool(meets[i]), fits=bool((flat.max_requests >= 1).any()),
               concurrency=float(row.concurrency),
               prefill_instances=float(row.prefill_instances) if "prefill_instances" in row.coords else 0.0,
               decode_instances=float(row.decode_instances) if "decode_instances" in row.coords else 1.0)
    return out


def _limit_at(model: str, candidate: Candidate, overrides: dict[str, Any], isl: float, osl: float, mode: str,
              decoding: float) -> str:
    """The binding limit of the decode step at the chosen point (a static batch of the requests one decode
    instance holds)."""
    ds = evaluate(model, candidate.arch, batch=max(round(decoding), 1), prompt=isl, gen=osl, weights=candidate.fmt,
                  activations=candidate.fmt, kv=candidate.fmt, mode=mode, overrides=overrides, detail=True)
    return str(binding_limit(ds).values)


def _unfit_reason(model: str, candidate: Candidate, isl: float, osl: float, mode: str) -> str:
    """Why not even one request fits (the most compact mapping's reason)."""
    overrides = {**candidate.basis, **next(iter(candidate.mappings.values()))}
    ds = evaluate(model, candidate.arch, batch=1, prompt=isl, gen=osl, weights=candidate.fmt,
                  activations=candidate.fmt, kv=candidate.fmt, mode=mode, overrides=overrides)
    return fit_reason(ds) or "the engine's KV budget holds no request next to the weights"


def serving_comparison(models: Sequence[str], contexts: Sequence[float], osl: float = 128,
                       candidates: Mapping[str, Candidate] | None = None,
                       traffic: Mapping[str, tuple[float, float]] | None = None,
                       mode: str = DEFAULT_MODE) -> xr.Dataset:
    """Dataset over (model, context, traffic, system): each system's best operating point (the variables of
    ``_FIELDS``, ``serves``, ``fits``, ``deployment``, ``mapping``, ``concurrency``, pool sizes, ``limit``,
    ``reason``), all systems in one mode."""
    candidates = dict(candidates or CANDIDATES)
    traffic = dict(traffic or TRAFFIC)
    mode = resolve_mode(mode, *(load_arch(c.arch) for c in candidates.values()), load_arch(PREFILL[0]))
    cells: dict[tuple, dict[str, Any]] = {}
    for model in models:
        for isl in contexts:
            for label, cand in candidates.items():
                served = [(d, name, o, _served(model, cand, d, o, isl, osl, mode)) for d, name, o in _options(cand)]
                for tier, (ttft_slo, tpot_slo) in traffic.items():
                    options = [(d, name, o, _best(ds, ttft_slo, tpot_slo)) for d, name, o, ds in served]
                    d, name, o, best = max(options, key=lambda x: (x[3]["serves"], x[3]["goodput_per_kw"],
                                                                   -x[3]["tpot_s"]))
                    fits = any(b["fits"] for *_, b in options)
                    best.update(fits=fits, deployment=d, mapping=name, **{
                        f"best_{dep}": max((b["goodput_per_kw"] for dd, _, _, b in options if dd == dep), default=0.0)
                        for dep in ("aggregated", "disaggregated")})
                    per_instance = best["requests_decoding"] / best["decode_instances"]
                    best["limit"] = (_limit_at(model, cand, o, isl, osl, mode, per_instance)
                                     if best["serves"] else "")
                    if not best["serves"]:  # no chosen point: nothing to name
                        best.update(deployment="", mapping="")
                    best["reason"] = ("" if best["serves"] else "no operating point meets the objectives" if fits
                                      else _unfit_reason(model, cand, isl, osl, mode))
                    cells[(model, isl, tier, label)] = best
    return _dataset(cells, models, contexts, traffic, candidates, mode, osl)


def _dataset(cells: dict[tuple, dict[str, Any]], models: Sequence[str], contexts: Sequence[float],
             traffic: Mapping[str, tuple[float, float]], candidates: Mapping[str, Candidate], mode: str,
             osl: float) -> xr.Dataset:
    dims = ("model", "context", "traffic", "system")
    coords = {"model": list(models), "context": np.asarray(contexts, dtype=float), "traffic": list(traffic),
              "system": list(candidates)}
    keys = [(m, c, t, s) for m in models for c in contexts for t in traffic for s in candidates]
    shape = tuple(len(v) for v in coords.values())
    names = next(iter(cells.values())).keys()
    data = {k: (dims, np.array([cells[key][k] for key in keys]).reshape(shape)) for k in names}
    ds = xr.Dataset(data, coords=coords)
    ds["arch"] = ("system", [c.arch for c in candidates.values()])
    ds["ttft_slo_s"] = ("traffic", [traffic[t][0] for t in traffic])
    ds["tpot_slo_s"] = ("traffic", [traffic[t][1] for t in traffic])
    ds.attrs.update(mode=mode, osl=osl, prefill_pool=json.dumps(PREFILL), traffic_source=TRAFFIC_SOURCE,
                    candidates=json.dumps({k: {"arch": c.arch, "fmt": c.fmt, "mappings": c.mappings, "basis": c.basis}
                                           for k, c in candidates.items()}))
    return ds
