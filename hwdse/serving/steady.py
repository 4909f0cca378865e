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

from hwdse._array import bisect, ceil, maximum, maximum_of, minimum, where
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
    step time is not finite (a format its units cannot run) goes to zero load and comes out infeasible.
    ``exceeds`` answers each point on its own (:func:`hwdse._array.bisect`: few points take several
    halvings per call, with the same answer); a Python float ``hi`` is solved in Python floats."""
    lo = 0.0 if type(hi) is float else np.zeros_like(hi * 1.0)
    return bisect(exceeds, lo, hi * 1.0, BISECTIONS)


def md1_wait(busy: Any) -> Any:
    """Mean M/D/1 queueing wait in service times at server utilisation ``busy`` (inf from 1 on)."""
    if type(busy) is float:  # one point: the same in Python floats
        return busy / (2 * (1 - busy)) if busy < 1 else np.inf
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
    system, cap = design.system, design.cap
    closed = concurrency is not None
    hi = np.minimum(concurrency, cap) if closed else cap
    ndim = design_ndim(concurrency, arrival_rate, isl, osl, overrides or {}, engine_overrides or {})
    table = _table(*key, extent(hi), ndim) if None not in key else design.table(hi, ndim)
    steady = _Steady(table, eng, system.budget, isl, osl - 1.0, tokens_per_step(speculative), harness, concurrency,
                     arrival_rate)
    position = table.position(hi)  # searched along the table: no locating per step
    try:  # one point is bisected in Python floats; where they raise (x / 0, overflow), numpy answers (inf, NaN)
        u = solve(steady.exceeds, float(position) if np.ndim(position) == 0 else position)
    except ArithmeticError:
        u = solve(steady.exceeds, position)
    s = steady.state(np.float64(u) if type(u) is float else u)  # the result in numpy numbers
    g, tpot, decode_steps = s["g"], s["tpot"], steady.decode_steps
    if closed:
        decode_s = decode_steps * tpot
        rate = np.minimum(harness.rate(s["ttft"], decode_s, concurrency), g / decode_s)  # beyond g: queued
        ttft = concurrency / rate - decode_s
        stable = np.isfinite(ttft) & np.isfinite(tpot)
    else:
        rate = arrival_rate * 1.0
        stable = (s["busy"] < 1) & (rate * decode_steps * tpot <= cap) & np.isfinite(tpot)
        ttft = where(stable, s["ttft"] + harness.latency_s, np.inf)
    step_band = _step_band(key, design.steps, g, s["share"] * s["chunk"], isl + osl / 2)
    data = metrics(ttft, tpot, rate, osl, g, cap, stable, system.devices, ttft_slo_s, tpot_slo_s, {
        **power(system.static_w, s["step_j"] / s["step"], rate * osl, system.cost_usd, system.slots, economics),
        **silicon(system.area_mm2, system.power_w),
        "prefill_step_share": (s["share"], "1", "share of steps that carry a prefill chunk"),
        "clock": (s["clock"], "1", "core clock over the rated clock (below 1: throttled to the power budget)"),
        **bands(design.prefill_band, step_band, (arch,)),
        "prefill_chunk_tokens": (s["chunk"], "tokens", "prompt tokens per chunk step"),
    })
    return Record(data, dict(
        hwdse_version=__version__, model=model.name, arch=arch.name, mode=mode, basis=basis_of(arch, mode),
        engine=eng.name, speculative=json.dumps(speculative.model_dump(exclude={"sources"})) if speculative else "",
        traffic="closed" if closed else "open",
        formats=json.dumps({"weights": scen.weights, "activations": scen.activations, "kv": scen.kv})))


@dataclass(frozen=True)
class _Steady:
    """The steady state of one design point under its traffic (closed loop at ``concurrency`` or open loop at
    ``arrival_rate``) as a function of the position ``u`` along its step table (the requests decoding:
    :meth:`hwdse.serving.table.Tabulated.position`), which :func:`solve` searches."""

    table: Tabulated       # the design's step works over the requests decoding (:meth:`_Design.table`)
    engine: Engine
    budget: Any            # the system's power budget (:func:`hwdse.perf.power_cap.power_budget`)
    isl: Any
    decode_steps: Any      # output tokens after the first, osl - 1
    gain: Any              # tokens each decoding sequence keeps per step (:func:`tokens_per_step`)
    harness: Harness
    concurrency: Any = None
    arrival_rate: Any = None

    def state(self, u: Any) -> dict[str, Any]:
        """The steady state at table position ``u``, at the clock its mix of steps runs at under the power
        budget: requests decoding ``g``, mean ``step`` and ``tpot`` (s), the server's ``ttft`` (s), the
        ``share`` of steps carrying a chunk of ``chunk`` prompt tokens, the time share the prompts' server is
        ``busy``, the mean step's energy ``step_j`` (J) and the ``clock`` (fraction of the rated one)."""
        s = self._steps(u)
        s["ttft"], s["busy"] = self._ttft(s)
        s["step_j"] = s["e_dec"] + s["share"] * (s["e_mix"] - s["e_dec"])
        return s

    def exceeds(self, u: Any) -> Any:
        """Whether the load the traffic puts on the decode phase at ``u`` (Little's law) is above ``u``'s
        requests decoding: true below the steady state, false above it."""
        s = self._steps(u)
        if self.concurrency is None:
            return self.arrival_rate * self.decode_steps * s["tpot"] > s["g"]
        decode_s = self.decode_steps * s["tpot"]
        return self.harness.rate(self._ttft(s)[0], decode_s, self.concurrency) * decode_s > s["g"]

    def _steps(self, u: Any) -> dict[str, Any]:
        """The steps at table position ``u``: requests decoding ``g``, prompt tokens per ``chunk`` and
        ``chunks`` (chunk steps' worth of prefill) per prompt, ``share`` of steps carrying a chunk, the
        ``clock``, the decode-only and chunk steps' seconds and joules there (``t_dec``, ``t_mix``, ``e_dec``,
        ``e_mix``), what a full chunk adds to a step (``extra``, s), mean ``step`` and ``tpot`` (s)."""
        rows = self.table.at(u)
        g, isl = rows[0], self.isl
        alone, mix = Work(*rows[1::2]), Work(*rows[2::2])  # a decode-only step's, a chunk step's (:func:`_columns`)
        chunk = _chunk(self.engine, isl, g)
        chunks = isl / chunk
        share = minimum(g * chunks * self.gain / self.decode_steps, 1.0)
        clock, [(t_dec, e_dec), (t_mix, e_mix)] = clocked_at(self.budget, alone.scaled(1 - share) + mix.scaled(share),
                                                             alone, mix)
        extra = t_mix - t_dec
        step = t_dec + share * extra
        return {"g": g, "chunk": chunk, "chunks": chunks, "share": share, "clock": clock, "t_dec": t_dec,
                "t_mix": t_mix, "e_dec": e_dec, "e_mix": e_mix, "extra": extra, "step": step,
                "tpot": step / self.gain}

    def _ttft(self, s: Mapping[str, Any]) -> tuple[Any, Any]:
        """The server's TTFT (s) of the steps ``s`` (:meth:`_steps`) and the time share the prompts' server is busy."""
        chunks, t_dec, t_mix, extra, share = s["chunks"], s["t_dec"], s["t_mix"], s["extra"], s["share"]
        service = ceil(chunks) * t_dec + extra * chunks  # the last chunk: the rest only
        busy = minimum(s["g"] * service / (self.decode_steps * s["tpot"]), 1.0)
        queue, wave = md1_wait(busy), 0.0
        if self.concurrency is not None:
            queue, wave = minimum(queue, self.concurrency), self.harness.wave_s(service, self.concurrency)
        residual = (t_dec**2 + share * extra * (t_mix + t_dec)) / (2 * s["step"])  # of the step an arrival falls in
        return residual + service * (1 + queue) + wave, busy


def _chunk(eng: Engine, isl: Any, g: Any) -> Any:
    """Prompt tokens per chunk step with ``g`` requests decoding (a whole prompt without chunked prefill)."""
    if np.ndim(eng.chunked_prefill) == 0:  # one scheduler for the whole sweep (the usual case)
        return minimum(maximum(eng.token_budget - g, 1.0), isl) if eng.chunked_prefill else isl * 1.0
    return where(eng.chunked_prefill, np.clip(eng.token_budget - g, 1.0, isl), isl)


@dataclass(frozen=True)
class _System:
    """What a serving result reads of its system, once per design (some kinds compute these on every read):
    its devices, static power (W; None: not modelled), build cost (USD), server slots, silicon area (mm^2),
    power budget (W), and the budget its steady state throttles to (:func:`hwdse.perf.power_cap.power_budget`)."""

    devices: Any
    static_w: Any
    cost_usd: Any
    slots: Any
    area_mm2: Any
    power_w: Any
    budget: Any

    @classmethod
    def of(cls, arch: Any) -> _System:
        return cls(getattr(arch, "devices", 1), getattr(arch, "static_power_W", None),
                   getattr(arch, "cost_usd", np.nan), server_slots(arch), getattr(arch, "area_mm2", np.nan),
                   getattr(arch, "power_W", np.nan), power_budget(arch))


@dataclass(frozen=True)
class _Design:
    """What a serving solve reads of one design point (model, formats, arch, mode, engine, prompt and output
    lengths) before the traffic: its step model, in-flight cap, a prompt's attention and prefill band, and
    the system's figures."""

    steps: StepModel
    isl: Any
    kv_len: Any
    cap: Any
    prompt_attention: Work
    prefill_band: Any
    system: _System

    @classmethod
    def of(cls, model: Any, arch: Any, scen: Any, mode: str, eng: Engine, speculative: Speculative | None,
           isl: Any, osl: Any) -> _Design:
        steps = StepModel(model, arch, scen, mode, eng, speculative)
        return cls(steps, isl, isl + osl / 2, np.minimum(eng.max_batch, kv_limit(model, arch, scen, eng, isl, osl)),
                   steps.prefill_attention(isl), steps.prefill_band(isl), _System.of(arch))

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
    """:meth:`StepModel.band` of the solved step. Of a cached design (``key``: :func:`_design`'s, one design
    point): at scalar values once per process (keyed on the exact values); over a traffic array once per
    distinct step (a step's band reads its tokens, ``decode + prefill``: the points past the in-flight cap
    share one)."""
    if None in key:
        return steps.band(decode, prefill, kv_len)
    values = (value_key(decode), value_key(prefill), value_key(kv_len))
    if None not in values:
        return _cached_band(Identity(steps), *values)
    tokens = np.asarray(decode + prefill)
    distinct, at = np.unique(tokens.ravel(), return_inverse=True)
    band = steps.band(distinct, 0.0, kv_len)
    return band[at].reshape(tokens.shape) if np.ndim(band) else band


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


def _on_axes(value: np.ndarray, full: tuple[int, ...], units: str, long_name: str) -> xr.Variable:
    """``value`` (broadcastable to ``full``) on the dims ``dim_i`` of the axes it varies along."""
    value = value.reshape((1,) * (len(full) - value.ndim) + value.shape)
    keep = [i for i, n in enumerate(full) if value.shape[i] == n]
    return xr.Variable([f"dim_{i}" for i in keep], value.reshape([full[i] for i in keep]),
                       {"units": units, "long_name": long_name})


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
    return xr.Dataset({k: _on_axes(v, full, u, d) for v, (k, (_, u, d)) in zip(values, record.variables.items())},
                      attrs=dict(record.attrs))
