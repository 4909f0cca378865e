"""Steady state of a continuous-batching engine under closed-loop or open-loop traffic.

Requests have ``isl`` prompt and ``osl`` output tokens; the first output token comes with the end of
the prompt's prefill, the other ``D = osl - 1`` from decode steps. With ``g`` requests decoding, each
step adds one token to each, and prompts are prefilled in chunks of ``c`` tokens (the step's token
budget less its decode tokens when ``chunked_prefill``, else a whole prompt) inside some steps. Rate
balance gives the share of steps that carry a chunk, ``f = g isl / (D c)``; TPOT is the mean step,
``(1 - f) t(g, 0) + f t(g, c)``. TTFT is the rest of the step an arrival falls in (its residual
life, ``E[t^2] / 2 E[t]``: long prefill steps catch more arrivals), the prompt's
``ceil(isl / c)`` steps (each a decode step plus its chunk's share of ``t(g, c) - t(g, 0)``: the
last chunk carries only the rest of the prompt), and an M/D/1 wait for the prompts ahead of it (the
prompts' server is busy ``lambda x`` those steps' time, one prompt at a time). Closed loop
(``concurrency`` C, as ``aiperf --concurrency``): Little's law on the C requests cycling through client wait, TTFT and decode, ``lambda = C / (w + TTFT + D TPOT)``, ``g = lambda D
TPOT``, solved by bisection on ``g`` (a fixed number of array steps, no loop over points); a benchmark
client's own terms (:mod:`hwdse.serving.harness`) are zero unless given. Open loop (Poisson
``arrival_rate``): ``g = lambda D TPOT``, stable while the prompts' server is not saturated and
``g`` fits. Requests in flight
are capped by the engine's ``max_batch`` and by the paged KV cache that fits next to the weights;
extra requests queue (closed loop: TTFT from Little's law).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any

import numpy as np
import xarray as xr

from hwdse._array import maximum_of, where
from hwdse._errors import HwdseError
from hwdse._version import __version__
from hwdse.hardware._base import DEFAULT_MODE, basis_of, resolve_mode
from hwdse.perf.economics import Economics, ownership, server_slots
from hwdse.perf.evaluate import resolve_cached
from hwdse.perf.memo import Identity, value_key
from hwdse.perf.power_cap import Work, clocked_at, power_budget
from hwdse.perf.record import Record
from hwdse.perf.uncertainty import energy_band
from hwdse.serving.engine import Engine, load_engine
from hwdse.serving.harness import SERVER, Harness
from hwdse.serving.speculative import Speculative, tokens_per_step
from hwdse.serving.step import StepModel
from hwdse.serving.table import Tabulated, extent
from hwdse.workload.footprint import footprint

__all__ = ["serve", "serve_record", "kv_limit", "solve", "md1_wait", "metrics", "dataset", "power", "on_plain_arrays",
           "design_ndim"]

BISECTIONS = 20   # the requests decoding are found to 2^-20 of their range (1e-6: no noise on a saturated plateau)


def kv_limit(model: Any, arch: Any, scenario: Any, engine: Engine, isl: Any, osl: Any) -> Any:
    """Requests whose full paged KV cache (``isl + osl`` tokens) fits in one device's memory share,
    next to its weights and one step's activations (``token_budget`` tokens), in ``kv_memory_fraction``
    of its memory. A system with several memories says how much room its placement leaves the KV cache
    (``kv_room``: GPU + PIM, the KV cache in PIM next to what else PIM holds)."""
    shares = getattr(arch, "footprint_shares", None)
    w_share, kv_share, act_share = shares(model) if shares is not None else (1.0, 1.0, 1.0)
    per_request = footprint(model, scenario.with_(batch=1, prompt=isl, gen=osl)).kv_cache_bytes * kv_share
    step = footprint(model, scenario.with_(batch=1, prompt=engine.token_budget, gen=1)).scaled(w_share, kv_share,
                                                                                                act_share)
    room = getattr(arch, "kv_room", None)
    free = (room(step, engine.kv_memory_fraction) if room is not None else
            arch.capacity_bytes * engine.kv_memory_fraction - step.weights_bytes - step.activation_bytes)
    return np.maximum(np.floor(free / per_request), 0.0)


def solve(exceeds: Callable[[Any], Any], hi: Any) -> Any:
    """The ``x`` in ``(0, hi]`` where the monotone test ``exceeds(x)`` (the load the traffic puts on the
    decode phase is above ``x``'s) turns false, by bisection: a fixed number of array steps, robust where
    a plain fixed point oscillates (prefill server near saturation). ``x`` is the requests decoding or
    any monotone coordinate of them (a table position). The bracket's lower end is returned: the last
    ``x`` the traffic still exceeds, where the load is consistent (near prefill saturation the queue
    past the crossing is orders larger, so a point beyond it would misstate the rate). A point whose
    step time is not finite (a format its units cannot run) goes to zero load and comes out infeasible."""
    lo = np.zeros_like(hi * 1.0)
    hi = hi * 1.0
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        up = exceeds(mid)
        lo, hi = where(up, mid, lo), where(up, hi, mid)
    return lo


def md1_wait(busy: Any) -> Any:
    """Mean M/D/1 queueing wait in service times at server utilisation ``busy`` (inf from 1 on)."""
    with np.errstate(divide="ignore"):
        return np.where(busy < 1, busy / (2 * (1 - busy)), np.inf)


def on_plain_arrays(func: Callable[..., xr.Dataset]) -> Callable[..., xr.Dataset]:
    """Run a serving model on numpy arrays: DataArray keyword arguments (and DataArray values of the
    ``*overrides`` mappings) become plain arrays on one axis order, each keeping length 1 on the dims it
    lacks (numpy broadcasts them, nothing is expanded to the full grid), and the result gets the dims
    and coords back. On DataArrays each of the operator model's thousands of small array operations
    pays xarray's overhead (about 50x slower)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> xr.Dataset:
        slots = [(k, None) for k, v in kwargs.items() if isinstance(v, xr.DataArray)]
        slots += [(k, p) for k, v in kwargs.items() if k.endswith("overrides") and v
                  for p, x in v.items() if isinstance(x, xr.DataArray)]
        if not slots:
            return func(*args, **kwargs)
        arrays = [kwargs[k] if p is None else kwargs[k][p] for k, p in slots]
        dims = list(dict.fromkeys(d for a in arrays for d in a.dims))
        plain = {**kwargs, **{k: dict(kwargs[k]) for k, p in slots if p is not None}}
        for (k, p), a in zip(slots, arrays):
            value = a.expand_dims([d for d in dims if d not in a.dims]).transpose(*dims).values
            if p is None:
                plain[k] = value
            else:
                plain[k][p] = value
        ds = func(*args, **plain)
        ds = ds.rename_dims({f"dim_{i}": d for i, d in enumerate(dims) if f"dim_{i}" in ds.dims})
        coords = {k: c for a in arrays for k, c in a.coords.items()}
        return ds.assign_coords({k: c for k, c in coords.items() if set(c.dims) <= set(ds.dims)})

    return wrapper


def design_ndim(*values: Any) -> int:
    """Axes of a design point's arrays: the most of any number in ``values`` or in a mapping among them."""
    flat = [x for v in values for x in (v.values() if isinstance(v, Mapping) else [v])]
    return max((np.ndim(x) for x in flat if not isinstance(x, str)), default=0)


@on_plain_arrays
def serve(model: Any, arch: Any, *, concurrency: Any = None, arrival_rate: Any = None, isl: Any = 1024,
          osl: Any = 1024, engine: str | Engine = "trtllm", weights: str = "bf16", activations: str | None = None,
          kv: str | None = None, mode: str = DEFAULT_MODE, overrides: Mapping[str, Any] | None = None,
          engine_overrides: Mapping[str, Any] | None = None, ttft_slo_s: Any = np.inf,
          tpot_slo_s: Any = np.inf, harness: Harness = SERVER, economics: Economics | None = None,
          expert_weights: str | None = None, speculative: Speculative | None = None) -> xr.Dataset:
    """Serving metrics of ``model`` on ``arch`` (any kind) under an engine and traffic.

    Exactly one of ``concurrency`` (closed loop, requests in flight at the client) and
    ``arrival_rate`` (open loop, requests/s) is given. Any number may be an array or DataArray.
    Goodput counts the tokens of a design point only where mean TTFT <= ``ttft_slo_s`` and TPOT <=
    ``tpot_slo_s``. Throughputs are output tokens per second. ``harness``: a benchmark client's terms
    in TTFT (default none, TTFT as the server sees it; open loop takes its ``latency_s`` only).
    ``economics``: the ownership scenario of ``usd_per_mtoken`` (:class:`hwdse.perf.economics.Economics`).
    ``expert_weights``: the MoE experts' weight format (default: ``weights``). ``speculative``: draft
    depth and acceptance (:class:`hwdse.serving.speculative.Speculative`): each step verifies ``k + 1``
    tokens per sequence and keeps the expected accepted run, so TPOT is the mean step over that run.
    """
    return dataset(serve_record(
        model, arch, concurrency=concurrency, arrival_rate=arrival_rate, isl=isl, osl=osl, engine=engine,
        weights=weights, activations=activations, kv=kv, mode=mode, overrides=overrides,
        engine_overrides=engine_overrides, ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s, harness=harness,
        economics=economics, expert_weights=expert_weights, speculative=speculative))


@np.errstate(divide="ignore", invalid="ignore")  # a point that cannot serve comes out inf / 0, stable false
def serve_record(model: Any, arch: Any, *, concurrency: Any = None, arrival_rate: Any = None, isl: Any = 1024,
                 osl: Any = 1024, engine: str | Engine = "trtllm", weights: str = "bf16",
                 activations: str | None = None, kv: str | None = None, mode: str = DEFAULT_MODE,
                 overrides: Mapping[str, Any] | None = None, engine_overrides: Mapping[str, Any] | None = None,
                 ttft_slo_s: Any = np.inf,
                 tpot_slo_s: Any = np.inf, harness: Harness = SERVER, economics: Economics | None = None,
                 expert_weights: str | None = None, speculative: Speculative | None = None) -> Record:
    """:func:`serve` without xarray: the same variables and attrs as a :class:`hwdse.perf.Record` of numbers
    or numpy arrays (numpy broadcasting; DataArrays: use :func:`serve`).

    The light path for scalar design points and for one design's frontier over a traffic array: a catalog
    arch (by name) with scalar overrides, formats and lengths (no ``engine_overrides``) is resolved, and its
    step-time table built, once per process (bounded caches keyed on the catalog objects and the values);
    a repeated design costs the steady-state solve and one step's error band only.
    """
    if (concurrency is None) == (arrival_rate is None):
        raise HwdseError("traffic", None, "give exactly one of concurrency (closed loop) and arrival_rate (open loop)")
    if np.any(np.asarray(osl) < 2):
        raise HwdseError("traffic", "osl", f"must be >= 2 (one prefill token and at least one decode step), got {osl}")
    model, arch, scen, shared = resolve_cached(model, arch, None, overrides, dict(
        batch=1, prompt=isl, gen=osl, weights=weights, activations=activations or weights,
        kv=kv or activations or weights, expert_weights=expert_weights, flash_attention=True))
    mode = resolve_mode(mode, arch)
    eng = load_engine(engine)
    if engine_overrides:
        eng = eng.model_copy(update=dict(engine_overrides))
        eng = Engine.model_validate(eng.model_dump())
    key = ((Identity(arch), model, scen, mode, Identity(eng), value_key(speculative), value_key(isl), value_key(osl))
           if shared and not engine_overrides else (None,))
    design = _design(*key) if None not in key else _Design.of(model, arch, scen, mode, eng, speculative, isl, osl)
    steps, cap = design.steps, design.cap
    decode_steps = osl - 1.0
    gain = tokens_per_step(speculative)    # tokens each decoding sequence keeps per step
    kv_len = isl + osl / 2
    closed = concurrency is not None
    hi = np.minimum(concurrency, cap) if closed else cap
    ndim = design_ndim(concurrency, arrival_rate, isl, osl, overrides or {}, engine_overrides or {})
    table = _table(*key, extent(hi), ndim) if None not in key else design.table(hi, ndim)

    limit = power_budget(arch)

    def state(u: Any) -> dict[str, Any]:
        """The steady state at table position ``u`` (requests decoding ``g``), at the clock its mix of
        steps runs at under the power budget."""
        g, *columns = table.at(u)
        chunk = _chunk(eng, isl, g)
        chunks = isl / chunk                     # chunk steps' worth of prefill per prompt
        share = np.minimum(g * chunks * gain / decode_steps, 1.0)
        alone, mix = Work(*columns[0::2]), Work(*columns[1::2])
        clock, [(t_dec, e_dec), (t_mix, e_mix)] = clocked_at(limit, alone.scaled(1 - share) + mix.scaled(share), alone,
                                                             mix)
        extra = t_mix - t_dec                    # what a full chunk adds to a step
        step = t_dec + share * extra
        tpot = step / gain
        service = np.ceil(chunks) * t_dec + extra * chunks  # the last chunk: the rest only
        busy = np.minimum(g * service / (decode_steps * tpot), 1.0)  # time share the prompts' server is busy
        queue = md1_wait(busy)
        wave = 0.0
        if closed:
            queue, wave = np.minimum(queue, concurrency), harness.wave_s(service, concurrency)
        residual = (t_dec**2 + share * extra * (t_mix + t_dec)) / (2 * step)  # of the step an arrival falls in
        ttft = residual + service * (1 + queue) + wave
        return {"g": g, "step": step, "tpot": tpot, "ttft": ttft, "share": share, "busy": busy, "chunk": chunk,
                "step_j": e_dec + share * (e_mix - e_dec), "clock": clock}

    def exceeds(u: Any) -> Any:
        s = state(u)
        if closed:
            decode_s = decode_steps * s["tpot"]
            return harness.rate(s["ttft"], decode_s, concurrency) * decode_s > s["g"]
        return arrival_rate * decode_steps * s["tpot"] > s["g"]

    s = state(solve(exceeds, table.position(hi)))  # searched along the table: no locating per step
    g = s["g"]
    if closed:
        decode_s = decode_steps * s["tpot"]
        rate = np.minimum(harness.rate(s["ttft"], decode_s, concurrency), g / decode_s)  # beyond g: queued
        ttft = concurrency / rate - decode_s
        stable = np.isfinite(ttft) & np.isfinite(s["tpot"])
    else:
        rate = arrival_rate * 1.0
        stable = (s["busy"] < 1) & (rate * decode_steps * s["tpot"] <= cap) & np.isfinite(s["tpot"])
        ttft = where(stable, s["ttft"] + harness.latency_s, np.inf)
    data = metrics(ttft, s["tpot"], rate, osl, g, cap, stable, getattr(arch, "devices", 1), ttft_slo_s, tpot_slo_s, {
        **power(getattr(arch, "static_power_W", None), s["step_j"] / s["step"], rate * osl,
                getattr(arch, "cost_usd", np.nan), server_slots(arch), economics),
        **silicon(getattr(arch, "area_mm2", np.nan), getattr(arch, "power_W", np.nan)),
        "prefill_step_share": (s["share"], "1", "share of steps that carry a prefill chunk"),
        "clock": (s["clock"], "1", "core clock over the rated clock (below 1: throttled to the power budget)"),
        **bands(design.prefill_band, _step_band(key, steps, g, s["share"] * s["chunk"], kv_len), (arch,)),
        "prefill_chunk_tokens": (s["chunk"], "tokens", "prompt tokens per chunk step"),
    })
    return Record(data, dict(
        hwdse_version=__version__, model=model.name, arch=arch.name, mode=mode, basis=basis_of(arch, mode),
        engine=eng.name, speculative=json.dumps(speculative.model_dump(exclude={"sources"})) if speculative else "",
        traffic="closed" if closed else "open",
        formats=json.dumps({"weights": scen.weights, "activations": scen.activations, "kv": scen.kv})))


def _chunk(eng: Engine, isl: Any, g: Any) -> Any:
    """Prompt tokens per chunk step with ``g`` requests decoding (a whole prompt without chunked prefill)."""
    if np.ndim(eng.chunked_prefill) == 0:  # one scheduler for the whole sweep (the usual case)
        return np.clip(eng.token_budget - g, 1.0, isl) if eng.chunked_prefill else np.asarray(isl, dtype=float)
    return where(eng.chunked_prefill, np.clip(eng.token_budget - g, 1.0, isl), isl)


@dataclass(frozen=True)
class _Design:
    """What a serving solve reads of one design point (model, formats, arch, mode, engine, prompt and output
    lengths) before the traffic: its step model, in-flight cap, a prompt's attention and prefill band."""

    steps: StepModel
    isl: Any
    kv_len: Any
    cap: Any
    prompt_attention: Work
    prefill_band: Any

    @classmethod
    def of(cls, model: Any, arch: Any, scen: Any, mode: str, eng: Engine, speculative: Speculative | None,
           isl: Any, osl: Any) -> _Design:
        steps = StepModel(model, arch, scen, mode, eng, speculative)
        return cls(steps, isl, isl + osl / 2, np.minimum(eng.max_batch, kv_limit(model, arch, scen, eng, isl, osl)),
                   steps.prefill_attention(isl), steps.prefill_band(isl))

    def table(self, hi: Any, ndim: int) -> Tabulated:
        """Step works (:func:`_columns`: decode-only and with a chunk) tabulated over the requests decoding
        to ``hi`` (:class:`hwdse.serving.table.Tabulated`)."""
        steps, isl = self.steps, self.isl
        return Tabulated(lambda g: _columns(*steps.pair(g, _chunk(steps.engine, isl, g), isl, self.kv_len,
                                                        self.prompt_attention)), hi, ndim)


@lru_cache(maxsize=64)
def _design(arch: Identity, model: Any, scen: Any, mode: str, eng: Identity, speculative: tuple, isl: tuple,
            osl: tuple) -> _Design:
    """:meth:`_Design.of` of a scalar design point given as keys (:mod:`hwdse.perf.memo`), once per process."""
    return _Design.of(model, arch.obj, scen, mode, eng.obj, speculative[1], isl[1], osl[1])


@lru_cache(maxsize=64)
def _table(arch: Identity, model: Any, scen: Any, mode: str, eng: Identity, speculative: tuple, isl: tuple,
           osl: tuple, top: float, ndim: int) -> Tabulated:
    """:meth:`_Design.table` of a cached design to ``top`` (a grid extent: :func:`extent`), once per process."""
    return _design(arch, model, scen, mode, eng, speculative, isl, osl).table(top, ndim)


def _step_band(key: tuple, steps: StepModel, decode: Any, prefill: Any, kv_len: Any) -> Any:
    """:meth:`StepModel.band` of the solved step; of a cached design (``key``: :func:`_design`'s) at scalar
    values, once per process (keyed on the exact values)."""
    values = (value_key(decode), value_key(prefill), value_key(kv_len))
    if None in key or None in values:
        return steps.band(decode, prefill, kv_len)
    return _cached_band(Identity(steps), *values)


@lru_cache(maxsize=256)
def _cached_band(steps: Identity, decode: tuple, prefill: tuple, kv_len: tuple) -> Any:
    """:meth:`StepModel.band` of a cached design's step model at scalar values given as keys."""
    return steps.obj.band(decode[1], prefill[1], kv_len[1])


def bands(ttft_band: Any, tpot_band: Any, systems: tuple[Any, ...]) -> dict[str, tuple]:
    """The result's error bands: TTFT's from a prompt's prefill, TPOT's (and the throughput's, whose
    decode steps set it) from the mean step (:meth:`hwdse.serving.StepModel.band`), the energies' from
    TPOT's and the widest power band of ``systems`` (:func:`hwdse.perf.uncertainty.energy_band`)."""
    energy = maximum_of([energy_band(arch, tpot_band) for arch in systems])
    return {"ttft_band": (ttft_band, "1", "p90 relative error of TTFT from the held-out kernel errors of its basis "
                          "(NaN: a roofline bound)"),
            "tpot_band": (tpot_band, "1", "p90 relative error of TPOT and of the throughput, as ttft_band"),
            "energy_band": (energy, "1", "p90 relative error of power and energy per token: TPOT's band plus the "
                            "power model's held-out band (NaN: a roofline bound, or no measured power)")}


def _columns(*works: Work) -> tuple[Any, ...]:
    """The fields of ``works`` as table columns: seconds, clocked seconds, joules, core joules, each
    field's works side by side."""
    return tuple(getattr(w, f) for f in ("seconds", "clocked_s", "joules", "core_j") for w in works)


def silicon(area_mm2: Any, power_w: Any) -> dict[str, tuple]:
    """The system's silicon area and power budget (what a study's area and power constraints read)."""
    return {"area_mm2": (area_mm2, "mm^2", "silicon area of the system (NaN if not modelled)"),
            "power_w": (power_w, "W", "power budget (TDP) of the system")}


def power(static: Any, dynamic_w: Any, throughput: Any, cost_usd: Any, slots: Any,
          economics: Economics | None) -> dict[str, tuple]:
    """Power, energy per token and ownership cost of a system that steps all the time: its static
    power (None: the kind models none, charged as 0 W and reported NaN) plus the operators' energy
    per second; build cost amortized plus electricity (:mod:`hwdse.perf.economics`)."""
    total = (0.0 if static is None else static) + dynamic_w
    return {
        "static_power_w": (np.nan if static is None else static, "W", "static power of the system while serving "
                           "(NaN: the kind models dynamic energy only)"),
        "dynamic_power_w": (dynamic_w, "W", "operators' energy per second of the system"),
        "avg_power_w": (total, "W", "mean power of the system while serving: static + dynamic"),
        "energy_j_per_token": (total / throughput, "J/token", "energy per output token (prefill included)"),
        **ownership(cost_usd, slots, total, throughput, economics),
    }


def _on_axes(value: np.ndarray, full: tuple[int, ...]) -> xr.DataArray:
    """``value`` (broadcastable to ``full``) on the dims ``dim_i`` of the axes it varies along."""
    value = value.reshape((1,) * (len(full) - value.ndim) + value.shape)
    keep = [i for i, n in enumerate(full) if value.shape[i] == n]
    return xr.DataArray(value.reshape([full[i] for i in keep]), dims=[f"dim_{i}" for i in keep])


def metrics(ttft: Any, tpot: Any, rate: Any, osl: Any, decoding: Any, cap: Any, stable: Any, devices: Any,
            ttft_slo_s: Any, tpot_slo_s: Any, extra: Mapping[str, tuple]) -> dict[str, tuple]:
    """The serving result's variables (value, units, long name): latencies, throughputs, goodput under the SLOs
    (mean TTFT and TPOT), ``extra``."""
    throughput = rate * osl
    meets = stable & (ttft <= ttft_slo_s) & (tpot <= tpot_slo_s)
    data = {
        "ttft_s": (ttft, "s", "mean time to first token (queueing, client wait in closed loop, prefill)"),
        "tpot_s": (tpot, "s", "mean time per output token after the first (mean engine step)"),
        "throughput_tok_s": (throughput, "token/s", "output tokens per second of the system"),
        "tok_s_per_device": (throughput / devices, "token/s", "output tokens per second per device"),
        "tok_s_per_user": (1 / tpot, "token/s", "decode rate one request sees (1 / TPOT)"),
        "request_rate": (rate, "request/s", "completed requests per second"),
        "requests_decoding": (decoding, "requests", "mean requests in the decode phase (tokens per step)"),
        "max_requests": (cap, "requests", "in-flight limit: engine max_batch and the paged KV cache"),
        "stable": (stable, "", "the engine keeps up with the offered load"),
        "meets_slo": (meets, "", "mean TTFT and TPOT within their objectives"),
        "goodput_tok_s": (where(meets, throughput, 0.0), "token/s", "output tokens/s of SLO-meeting operation"),
        "goodput_tok_s_per_device": (where(meets, throughput, 0.0) / devices, "token/s", "goodput per device"),
        "devices": (devices, "1", "devices of the system (both pools when disaggregated)"),
        **extra,
    }
    return data


def dataset(record: Record) -> xr.Dataset:
    """A serving record as a Dataset: each variable on the dims ``dim_i`` of the axes it varies along (of
    the broadcast shape of all of them), the record's attrs."""
    values = [np.asarray(v) for v, _, _ in record.variables.values()]
    full = np.broadcast_shapes(*(v.shape for v in values))
    ds = xr.Dataset({k: _on_axes(v, full).assign_attrs(units=u, long_name=d)
                     for v, (k, (_, u, d)) in zip(values, record.variables.items())})
    ds.attrs.update(record.attrs)
    return ds
