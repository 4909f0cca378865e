"""Disaggregated serving: a prefill pool and a decode pool, each any system of the catalog.

``prefill_instances`` copies of the prefill system each serve prompts one at a time (M/D/1 queue of
whole-prompt prefills); the KV cache of a prompt (``isl`` tokens in the KV format) then crosses a
link (``link_latency_us + bytes / link_bandwidth_GBps``) to one of ``decode_instances`` copies of
the decode system, whose steps are decode-only (no prefill chunks interfere). Each pool runs its work
(a prompt, a decode step) at the clock its power budget allows (:mod:`hwdse.perf.power_cap`). The first output
token comes from the prefill pool, so TTFT = queue + prefill + transfer; TPOT is the decode system's
step at its requests in flight. Power: both pools' static power (prefill instances charged at their
running level, an upper bound while they wait for prompts), the prompts' energy at the request rate
and the decode steps' energy over TPOT. Closed loop: Little's law over the ``concurrency`` requests, as in
:mod:`hwdse.serving.steady`. Pool sizes may be arrays: the pool ratio is a searchable field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from hwdse._array import where
from hwdse._errors import HwdseError
from hwdse._version import __version__
from hwdse.hardware._base import DEFAULT_MODE, basis_of, resolve_mode
from hwdse.perf.economics import Economics, server_slots
from hwdse.perf.evaluate import resolve
from hwdse.perf.power_cap import capped
from hwdse.perf.record import Record
from hwdse.serving.engine import Engine, load_engine
from hwdse.serving.harness import SERVER, Harness
from hwdse.serving.speculative import Speculative, tokens_per_step
from hwdse.serving.steady import (
    bands,
    dataset,
    design_ndim,
    kv_limit,
    md1_wait,
    metrics,
    on_plain_arrays,
    power,
    silicon,
    solve,
)
from hwdse.serving.step import StepModel
from hwdse.serving.table import Tabulated
from hwdse.workload.footprint import footprint

__all__ = ["serve_disaggregated", "LINK_BANDWIDTH_GBPS", "LINK_LATENCY_US"]

# One 400 Gb/s NIC per GPU (ConnectX-7, as in DGX H100: 8 x 400 Gb/s) = 50 GB/s; RDMA one-way latency.
LINK_BANDWIDTH_GBPS = 50.0
LINK_LATENCY_US = 10.0  # assumption: RDMA write of a registered buffer, one switch hop (a few us) plus setup


def _pools(model: Any, archs: tuple[Any, Any], overrides: tuple[Mapping[str, Any] | None, ...], fields: dict,
           mode: str, engine: Engine, speculative: Speculative | None) -> tuple[StepModel, StepModel]:
    """The prefill and decode pools' step models, both in one mode (one basis for the whole result)."""
    resolved = [resolve(model, arch, None, more, **fields) for arch, more in zip(archs, overrides)]
    mode = resolve_mode(mode, *(arch for _, arch, _ in resolved))
    (pm, pa, ps), (dm, da, dscen) = resolved
    return StepModel(pm, pa, ps, mode, engine), StepModel(dm, da, dscen, mode, engine, speculative)


@on_plain_arrays
@np.errstate(divide="ignore", invalid="ignore")  # a point that cannot serve comes out inf / 0, stable false
def serve_disaggregated(model: Any, prefill_arch: Any, decode_arch: Any, *, concurrency: Any = None,
                        arrival_rate: Any = None, isl: Any = 1024, osl: Any = 1024, prefill_instances: Any = 1,
                        decode_instances: Any = 1, engine: str | Engine = "trtllm", weights: str = "bf16",
                        activations: str | None = None, kv: str | None = None, mode: str = DEFAULT_MODE,
                        link_bandwidth_GBps: Any = LINK_BANDWIDTH_GBPS, link_latency_us: Any = LINK_LATENCY_US,
                        prefill_overrides: Mapping[str, Any] | None = None,
                        decode_overrides: Mapping[str, Any] | None = None, ttft_slo_s: Any = np.inf,
                        tpot_slo_s: Any = np.inf, harness: Harness = SERVER,
                        economics: Economics | None = None, speculative: Speculative | None = None) -> xr.Dataset:
    """Serving metrics of a prefill pool + decode pool (see the module docstring); throughput per
    device counts the devices of both pools. ``harness``, ``economics``, ``speculative``: as for
    :func:`hwdse.serving.serve` (speculation runs in the decode pool, its draft on the decode system)."""
    if (concurrency is None) == (arrival_rate is None):
        raise HwdseError("traffic", None, "give exactly one of concurrency (closed loop) and arrival_rate (open loop)")
    eng = load_engine(engine)
    fields = dict(batch=1, prompt=isl, gen=osl, weights=weights, activations=activations or weights,
                  kv=kv or activations or weights, flash_attention=True)
    pre, dec = _pools(model, (prefill_arch, decode_arch), (prefill_overrides, decode_overrides), fields, mode, eng,
                      speculative)
    gain = tokens_per_step(speculative)  # tokens each decoding sequence keeps per step
    decode_steps = osl - 1.0
    kv_len = isl + osl / 2
    prefill_s, prefill_j, _ = capped(pre.arch, pre.pair(0.0, isl, isl, isl, decode_only=False)[1])
    kv_bytes = footprint(pre.model, pre.scenario.with_(batch=1, prompt=isl, gen=1)).kv_cache_bytes * isl / (isl + 1)
    transfer_s = link_latency_us * 1e-6 + kv_bytes / (link_bandwidth_GBps * 1e9)
    per_instance = np.minimum(eng.max_batch, kv_limit(dec.model, dec.arch, dec.scenario, eng, isl, osl))
    cap = per_instance * decode_instances
    closed = concurrency is not None
    ndim = design_ndim(concurrency, arrival_rate, isl, osl, prefill_instances, decode_instances, link_bandwidth_GBps,
                       link_latency_us, prefill_overrides or {}, decode_overrides or {})
    decode_table = Tabulated(lambda g: capped(dec.arch, dec.pair(g, 0.0, isl, kv_len, decode_only=False)[1])[:2],
                             per_instance, ndim)

    def tpot_at(g: Any) -> Any:
        return decode_table(g / decode_instances)[0] / gain

    def ttft_at(rate: Any) -> Any:
        rho = rate / prefill_instances * prefill_s
        queue = md1_wait(rho)
        if not closed:
            return prefill_s * (1 + queue) + transfer_s, rho
        wave = harness.wave_s(prefill_s / prefill_instances, concurrency)
        return prefill_s * (1 + np.minimum(queue, concurrency)) + transfer_s + wave, rho

    def exceeds(g: Any) -> Any:
        tpot = tpot_at(g)
        if not closed:
            return arrival_rate * decode_steps * tpot > g
        decode_s = decode_steps * tpot
        return harness.rate(ttft_at(g / decode_s)[0], decode_s, concurrency) * decode_s > g

    g = solve(exceeds, np.minimum(concurrency, cap) if closed else cap)
    tpot = tpot_at(g)
    if closed:
        decode_s = decode_steps * tpot
        ttft, rho = ttft_at(g / decode_s)
        rate = np.minimum(harness.rate(ttft, decode_s, concurrency), g / decode_s)  # beyond g: queued
        ttft = concurrency / rate - decode_s
        stable = np.isfinite(ttft) & np.isfinite(tpot)
    else:
        rate = arrival_rate * 1.0
        ttft, rho = ttft_at(rate)
        stable = (rho < 1) & (rate * decode_steps * tpot <= cap) & np.isfinite(tpot)
        ttft = where(stable, ttft + harness.latency_s, np.inf)
    devices = (prefill_instances * getattr(pre.arch, "devices", 1) + decode_instances * getattr(dec.arch, "devices", 1))
    statics = [getattr(p.arch, "static_power_W", None) for p in (pre, dec)]
    static = None if None in statics else prefill_instances * statics[0] + decode_instances * statics[1]
    dynamic_w = rate * prefill_j + decode_instances * decode_table(g / decode_instances)[1] / (tpot * gain)
    data = metrics(ttft, tpot, rate, osl, g, cap, stable, devices, ttft_slo_s, tpot_slo_s, {
        **power(static, dynamic_w, rate * osl, prefill_instances * getattr(pre.arch, "cost_usd", np.nan)
                + decode_instances * getattr(dec.arch, "cost_usd", np.nan),
                prefill_instances * server_slots(pre.arch) + decode_instances * server_slots(dec.arch), economics),
        **silicon(*(prefill_instances * getattr(pre.arch, k, np.nan) + decode_instances * getattr(dec.arch, k, np.nan)
                    for k in ("area_mm2", "power_W"))),
        **bands(pre.prefill_band(isl), dec.band(g / decode_instances, 0.0, kv_len), (pre.arch, dec.arch)),
        "prefill_utilization": (rho, "1", "busy share of each prefill instance"),
        "kv_transfer_s": (transfer_s, "s", "KV cache of one prompt over the prefill -> decode link"),
        "kv_transfer_bytes": (kv_bytes, "B", "KV cache bytes of one prompt"),
    })
    return dataset(Record(data, dict(
        hwdse_version=__version__, model=pre.model.name, prefill_arch=pre.arch.name, decode_arch=dec.arch.name,
        arch=f"{pre.arch.name} -> {dec.arch.name}", mode=pre.mode, engine=eng.name,
        basis=f"{basis_of(pre.arch, pre.mode)}/{basis_of(dec.arch, dec.mode)}",
        prefill_basis=basis_of(pre.arch, pre.mode), decode_basis=basis_of(dec.arch, dec.mode),
        traffic="closed" if closed else "open",
        speculative=json.dumps(speculative.model_dump(exclude={"sources"})) if speculative else "")))
