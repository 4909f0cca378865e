"""``hwdse calibrate``: fit each GPU's achieved-mode efficiencies to measured kernels.

Per GPU, in order (each stage holds the earlier ones fixed), on the training rows (four in
five, by shape hash) of every kernel set marked ``fit`` in :mod:`hwdse.calibration.data`:

1. GEMM: compute fraction and fixed overhead per arithmetic class, off-chip bandwidth fraction,
   compute/memory overlap exponent, split-K reduction cost, dynamic-quantisation passes per
   low-precision class, and for classes whose kernels never split K (``NO_SPLIT_K``) a per-k
   main-loop step;
2. prefill attention: compute fraction per class, fixed and per-wave overheads;
3. decode attention: bandwidth fraction, half-bandwidth occupancy, per-block and fixed overheads,
   and where the framework's tensor-core kernel has a GQA group limit (``DECODE_MAX_GROUP``, read
   from its source, not fit) the vector-peak fraction of its per-query-head fallback kernel;
4. vector: bandwidth fraction (A100: LLMCompass kernels; else the GPU's GEMM streaming fraction);
   the per-kernel overhead is the GEMM's (CUDA-graph timed; LLMCompass host timing adds its own);
5. all-reduce: bandwidth fraction of the scale-up link and latency (NCCL tables).

A GPU without data for a stage takes the stage from a sibling (H200 and B200 attention from H100,
H200 all-reduce from H100) and says so in ``efficiency.source``; a GPU that never existed
(``DERIVED``: the HBM3 A100 of AttAcc) takes its sibling's whole block. The fit minimises a robust
(soft-L1) loss of ``log(predicted / measured)`` with ``scipy.optimize.least_squares``, from several
start points (the tile/wave model is piecewise, so a single run can stop at a kink), and reports
each parameter's standard error from the Jacobian (:class:`Estimate`).

Well-posedness: every fitted parameter must be determined by the data (relative standard error
<= ``DETERMINED``, not at a bound), otherwise the fit wanders between machines. An L2 operand-stream
limit per GEMM tile was dropped for that reason: on all four GPUs the fit with it re-optimised over a
grid of L2 bandwidths (5-300 TB/s) is best where it never binds, so its fitted value (20-120 TB/s,
3-17x the physical L2 bandwidth) was a flat direction that traded off against the compute fractions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import least_squares

from hwdse._catalog import locate
from hwdse.calibration.data import KernelSet, kernel_sets
from hwdse.hardware import load_arch
from hwdse.hardware._base import operand_class
from hwdse.hardware.gpu.efficiency import GPUEfficiency, gpu_collective_s
from hwdse.perf.roofline import op_time

__all__ = ["calibrate", "Calibration", "Estimate", "estimate_lines", "predict", "errors", "kernel_points", "kernel_table", "write_catalog", "host_floors", "predict_timed", "ARCHS"]

ARCHS = ("a100-sxm-80gb", "h100-sxm", "h200", "b200")
WIDE = ("fp32", "tf32", "bf16", "fp16")  # classes whose measured GEMMs quantise nothing
# Largest GQA group of a framework's tensor-core decode kernel (not fit: read from its source).
# TensorRT-LLM XQA (HMMA and Hopper QGMMA): head_grp_size x beam_width <= 32
# (cpp/tensorrt_llm/kernels/decoderMaskedMultiheadAttention/decoderXQAImplJIT/kernelUtils.cpp);
# larger groups run the masked multi-head attention kernel. vLLM's flash-attn decode has no limit.
DECODE_MAX_GROUP = {"trtllm": 32.0}
# Classes whose measured GEMMs never split K (TensorRT-LLM 1.3 NVFP4: at one wave of tiles the time is
# independent of N and linear in K, so one tile marches through all of K); they get a fitted k_step_ns.
NO_SPLIT_K = ("fp4",)
BORROW = {"h200": {"attention": "h100-sxm", "collective": "h100-sxm"}, "b200": {"attention": "h100-sxm"}}
# GPUs that were never built to measure take a measured sibling's whole block (same die and kernels; the
# fractions apply to their own peaks and memory): the AttAcc paper's HBM3 A100.
DERIVED = {"a100-hbm3": "a100-sxm-80gb"}
START: dict[str, Any] = {
    "source": "starting point",
    "gemm": {"compute_fraction": {}, "bandwidth_fraction": 0.8, "overlap_exponent": 3.0,
             "split_k_us": 1.0, "overhead_us": {}},
    "attention": {"prefill_compute_fraction": {}, "prefill_overhead_us": 10.0, "prefill_wave_us": 1.0,
                  "decode_bandwidth_fraction": 0.8, "decode_half_bandwidth_ctas": 10.0, "decode_cta_us": 1.0,
                  "decode_overhead_us": 8.0},
    "vector": {"bandwidth_fraction": 0.7, "overhead_us": 4.0},
    "collective": None,
}
# (path, start, low, high); "{cls}" expands to every arithmetic class of the stage's data. Fractions of a
# datasheet peak are bounded by 1 (the peaks are at boost clock: no kernel exceeds them).
STAGES: dict[str, list[tuple[str, float, float, float]]] = {
    "gemm": [("gemm.compute_fraction.{cls}", 0.8, 0.05, 1.0), ("gemm.overhead_us.{cls}", 4.0, 0.0, 100.0),
             ("gemm.bandwidth_fraction", 0.8, 0.05, 1.0),
             ("gemm.overlap_exponent", 3.0, 1.0, 30.0), ("gemm.split_k_us", 1.0, 0.0, 100.0),
             ("gemm.quantize_passes.{lowcls}", 1.0, 0.0, 20.0), ("gemm.k_step_ns.{scaledcls}", 1.0, 0.0, 50.0)],
    "prefill_attention": [("attention.prefill_compute_fraction.{cls}", 0.5, 0.02, 1.0),
                          ("attention.prefill_overhead_us", 10.0, 0.0, 200.0),
                          ("attention.prefill_wave_us", 1.0, 0.0, 200.0)],
    "decode_attention": [("attention.decode_bandwidth_fraction", 0.8, 0.05, 1.0),
                         ("attention.decode_half_bandwidth_ctas", 10.0, 0.0, 1e4),
                         ("attention.decode_cta_us", 1.0, 0.0, 100.0),
                         ("attention.decode_overhead_us", 8.0, 0.0, 200.0),
                         ("attention.decode_vector_fraction", 0.1, 0.005, 1.0)],
    "vector": [("vector.bandwidth_fraction", 0.7, 0.05, 1.0)],
    "all_reduce": [("collective.bandwidth_fraction", 0.8, 0.05, 1.0), ("collective.latency_us", 10.0, 0.0, 500.0),
                   ("collective.latency_per_peer_us", 1.0, 0.0, 100.0)],
}


F_SCALE = 0.05             # soft-L1 scale of the log residuals (errors past ~5 % count linearly, not squared)
TOL = 1e-10                # ftol = xtol = gtol of each least-squares run
STARTS = (1.0, 0.6, 1.6)   # multi-start: the start point scaled by each factor (clipped to the bounds)
DETERMINED = 0.25          # relative standard error above which a parameter is reported as not determined


def _set(data: dict, path: str, value: float) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
    data[keys[-1]] = float(value)


def with_efficiency(gpu: Any, data: dict) -> Any:
    """``gpu`` with an efficiency block built from ``data`` (validated)."""
    return gpu.model_copy(update={"efficiency": GPUEfficiency.model_validate(data)})


def predict(gpu: Any, kset: KernelSet, mode: str = "achieved") -> np.ndarray:
    """Predicted kernel seconds per measured row."""
    if kset.family == "all_reduce":
        s = kset.ops[0].shape
        if mode == "roofline":
            p = s["devices"]
            return 2 * (p - 1) / p * s["bytes"] / (gpu.scale_up.bandwidth_GBps * 1e9)
        return np.asarray(gpu_collective_s(gpu, "all_reduce", s["bytes"], s["devices"]))
    out = []
    for t in gpu.schedule(list(kset.ops), mode):
        out.append(np.broadcast_to(np.asarray(op_time(t), dtype=float), np.shape(t.op.flops)))
    return np.concatenate(out)


def errors(pred: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Absolute relative errors ``|pred / measured - 1|``."""
    return np.abs(pred / measured - 1)


def _classes(gpu: Any, sets: Sequence[KernelSet]) -> list[str]:
    return sorted({gpu.native_class(operand_class(op.operands)) for s in sets for op in s.ops if op.operands})


def host_floor_s(gpu: Any, kset: KernelSet) -> float:
    """Host-timing floor of a LLMCompass kernel set, seconds per call.

    LLMCompass timed each PyTorch call on the host around a synchronize (README), which adds a
    floor the CUDA-graph-timed aiconfigurator tables lack. It is read off the data: the measured
    minus the predicted kernel time of the set's fastest training row.
    """
    i = np.flatnonzero(kset.train)[np.argmin(kset.measured_s[kset.train])]
    return max(0.0, float(kset.measured_s[i] - predict(gpu, kset)[i]))


def host_floors(gpu: Any) -> dict[str, float]:
    """LLMCompass host-timing floors per operator (softmax, layernorm, gelu; ``torch``: plain calls)."""
    floors = {s.ops[0].name: host_floor_s(gpu, s) for s in kernel_sets() if s.family == "vector" and s.arch == gpu.name}
    return {**floors, "torch": floors["softmax"]}


def predict_timed(gpu: Any, kset: KernelSet, mode: str = "achieved") -> np.ndarray:
    """``predict`` plus the host-timing floor for LLMCompass (host-timed) kernel sets in achieved mode."""
    pred = predict(gpu, kset, mode)
    if mode != "achieved" or not kset.name.startswith("llmcompass") or kset.family == "all_reduce":
        return pred
    key = kset.ops[0].name if kset.family == "vector" else "torch"
    return pred + host_floors(gpu)[key]


@dataclass(frozen=True)
class Estimate:
    """One fitted parameter: value, standard error (same unit; ``inf`` where the data leave it free)."""

    path: str
    value: float
    sd: float
    at_bound: bool

    @property
    def determined(self) -> bool:
        """Fixed by the data to better than ``DETERMINED`` (relative standard error), not at a bound."""
        return not self.at_bound and self.sd <= DETERMINED * abs(self.value)


def _standard_errors(result: Any) -> np.ndarray:
    """Standard errors of a robust least-squares fit from its Jacobian: ``s^2 (J'WJ)^-1`` with the
    soft-L1 weights ``W``; a parameter with any weight in a (near-)null direction of ``J'WJ`` gets ``inf``."""
    z = (result.fun / F_SCALE) ** 2
    w = 1 / np.sqrt(1 + z)
    jw = result.jac * np.sqrt(w)[:, None]
    dof = max(1, result.fun.size - result.x.size)
    s2 = float(np.sum(w * result.fun**2) / dof)
    _, sv, vt = np.linalg.svd(jw, full_matrices=False)
    null = sv <= sv[0] * 1e-8
    cov = (vt[~null].T / sv[~null] ** 2) @ vt[~null] * s2
    free = np.any(np.abs(vt[null]) > 1e-6, axis=0) if null.any() else np.zeros(result.x.size, bool)
    return np.where(free, np.inf, np.sqrt(np.diag(cov)))


def _fit_stage(gpu: Any, data: dict, family: str, sets: Sequence[KernelSet]) -> tuple[dict, list[Estimate]]:
    """Fit one stage's parameters on the training rows of ``sets``: the best of ``STARTS`` (deterministic
    multi-start against local optima of the piecewise tile/wave model). Returns the updated data and the
    parameters' estimates."""
    specs = []
    for path, x0, lo, hi in STAGES[family]:
        if "{" in path:
            keep = {"{cls}": lambda c: True, "{lowcls}": lambda c: c not in WIDE, "{scaledcls}": lambda c: c in NO_SPLIT_K}
            test = next(f for key, f in keep.items() if key in path)
            specs += [(path.format(cls=c, lowcls=c, scaledcls=c), x0, lo, hi) for c in _classes(gpu, sets) if test(c)]
        elif path != "attention.decode_vector_fraction" or data["attention"].get("decode_max_group"):
            specs.append((path, x0, lo, hi))
    if family == "all_reduce" and data.get("collective") is None:
        data["collective"] = {}

    def build(x: np.ndarray) -> dict:
        trial = copy.deepcopy(data)
        for (path, *_), value in zip(specs, x):
            _set(trial, path, value)
        return trial

    def residuals(x: np.ndarray) -> np.ndarray:
        g = with_efficiency(gpu, build(x))
        return np.concatenate([np.log(predict_timed(g, s)[s.train] / s.measured_s[s.train]) for s in sets])

    x0, lo, hi = (np.array([s[i] for s in specs], dtype=float) for i in (1, 2, 3))
    pad = (hi - lo) * 1e-6
    best = None
    for factor in STARTS:
        result = least_squares(residuals, np.clip(x0 * factor, lo + pad, hi - pad), bounds=(lo, hi), loss="soft_l1",
                               f_scale=F_SCALE, x_scale="jac", ftol=TOL, xtol=TOL, gtol=TOL)
        if best is None or result.cost < best.cost * (1 - 1e-9):
            best = result
    sd = _standard_errors(best)
    at_bound = np.minimum(best.x - lo, hi - best.x) <= pad
    return build(best.x), [Estimate(p[0], float(v), float(e), bool(b)) for p, v, e, b in zip(specs, best.x, sd, at_bound)]


def held_out_band(gpu: Any, sets: Sequence[KernelSet]) -> dict[str, list[float]]:
    """Per kernel family of ``sets``: median and p90 |relative error| over their held-out rows pooled."""
    out = {}
    for family in dict.fromkeys(s.family for s in sets):
        e = np.concatenate([errors(predict_timed(gpu, s), s.measured_s)[s.held_out] for s in sets if s.family == family])
        out[family] = [round(float(np.median(e)), 4), round(float(np.percentile(e, 90)), 4)]
    return out


def _summary(gpu: Any, sets: Sequence[KernelSet]) -> str:
    parts = []
    for s in sets:
        e = errors(predict_timed(gpu, s), s.measured_s)
        parts.append(f"{s.name}: {np.median(e[s.held_out]) * 100:.1f}/{np.percentile(e[s.held_out], 90) * 100:.0f}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Calibration:
    """One GPU's fit: the ``efficiency`` block (rounded) and the estimate of every fitted parameter."""

    efficiency: dict
    estimates: tuple[Estimate, ...]


def calibrate(archs: Sequence[str] = ARCHS) -> dict[str, Calibration]:
    """Fitted efficiencies per arch name (not written; see :func:`write_catalog`)."""
    sets = [s for s in kernel_sets() if s.fit]
    fitted: dict[str, dict] = {}
    estimates: dict[str, list[Estimate]] = {}
    order = sorted(set(archs) | {b for a in archs for b in BORROW.get(a, {}).values()}, key=ARCHS.index)
    for name in order:
        gpu = load_arch(name).model_copy(update={"efficiency": None})
        data, notes, mine_estimates = copy.deepcopy(START), [], []
        mine = [s for s in sets if s.arch == name]
        for family in ("gemm", "prefill_attention", "decode_attention", "all_reduce"):
            group = [s for s in mine if s.family == family]
            borrowed = {"prefill_attention": "attention", "decode_attention": "attention",
                        "all_reduce": "collective"}.get(family)
            if group:
                unsplit = [c for c in _classes(gpu, group) if c in NO_SPLIT_K]
                if family == "gemm" and unsplit:
                    data["gemm"]["no_split_k"] = unsplit
                    notes.append(f"{', '.join(unsplit)} GEMMs never split K (time independent of N within one wave)")
                if family == "decode_attention":
                    limits = {v for k, v in DECODE_MAX_GROUP.items() if any(k in s.name for s in group)}
                    if limits:
                        data["attention"]["decode_max_group"] = min(limits)
                        notes.append(f"decode_max_group {min(limits):g} = TensorRT-LLM XQA limit, not fit (head_grp_size x "
                                     "beam_width <= 32 in cpp/tensorrt_llm/kernels/decoderMaskedMultiheadAttention/"
                                     "decoderXQAImplJIT/kernelUtils.cpp)")
                data, found = _fit_stage(gpu, data, family, group)
                mine_estimates += found
            elif borrowed and borrowed in BORROW.get(name, {}):
                donor = BORROW[name][borrowed]
                data[borrowed] = copy.deepcopy(fitted[donor][borrowed])
                if family != "decode_attention":
                    notes.append(f"{borrowed} from {donor} (no {name} data)")
        data["vector"]["overhead_us"] = data["gemm"]["overhead_us"].get("bf16", 4.0)
        vector_sets = [s for s in mine if s.family == "vector"]
        if vector_sets:
            data, found = _fit_stage(gpu, data, "vector", vector_sets)
            mine_estimates += found
            notes.append("vector bandwidth from LLMCompass A100 kernels (plus their host-timing floor, "
                         "see calibrate.host_floor_s)")
        else:
            data["vector"]["bandwidth_fraction"] = data["gemm"]["bandwidth_fraction"]
            notes.append("vector bandwidth = GEMM streaming fraction (no elementwise data)")
        g = with_efficiency(gpu, data)
        data["source"] = (f"hwdse calibrate (hwdse/calibration/kernels.py) on shared/validation {', '.join(s.source for s in mine)}"
                          f"; train = 4 of 5 rows by shape hash; held-out median/p90 |rel. error| %: "
                          f"{_summary(g, mine)}; " + "; ".join(notes))
        data = {"source": data.pop("source"), "held_out": held_out_band(g, mine), **data}
        fitted[name], estimates[name] = _rounded(data), mine_estimates
    out = {a: Calibration(fitted[a], tuple(estimates[a])) for a in archs}
    for name, donor in DERIVED.items():
        if donor in archs:
            block = {**copy.deepcopy(fitted[donor]), "source": f"{donor}'s fit (the same GA100 die and kernels; no "
                     f"{name} was built to measure): {fitted[donor]['source']}"}
            out[name] = Calibration(block, tuple(estimates[donor]))
    return out


def estimate_lines(cal: Calibration) -> list[str]:
    """One line per fitted parameter: value +- standard error, and whether the data determine it."""
    out = []
    for e in cal.estimates:
        sd = "free" if not np.isfinite(e.sd) else f"{e.sd:.2g} ({e.sd / abs(e.value) * 100:.2g} %)" if e.value else f"{e.sd:.2g}"
        flag = "" if e.determined else ("  at bound" if e.at_bound else "  not determined by the data")
        out.append(f"  {e.path} = {e.value:.4g} +- {sd}{flag}")
    return out


def _rounded(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _rounded(v) for k, v in data.items()}
    return float(f"{data:.4g}") if isinstance(data, float) else data


def kernel_points(archs: Sequence[str] = ARCHS) -> list[dict[str, Any]]:
    """Per kernel set: measured and predicted seconds per row in both modes, and the rows scored
    (held-out rows of fitted sets; every row of validation-only sets), from the catalog parameters."""
    out = []
    for s in kernel_sets():
        if s.arch not in archs:
            continue
        gpu = load_arch(s.arch)
        out.append({"set": s.name, "arch": s.arch, "family": s.family, "fit": s.fit, "measured_s": s.measured_s,
                    "scored": s.held_out if s.fit else np.ones_like(s.held_out),
                    "roofline_s": predict_timed(gpu, s, "roofline"), "achieved_s": predict_timed(gpu, s),
                    "group": np.concatenate([np.broadcast_to(op.shape["heads"] / op.shape["kv_heads"],
                                                             np.shape(op.flops)) for op in s.ops])
                    if s.family.endswith("attention") else None})
    return out


def kernel_table(points: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kernel set: points, rows scored, and median / p90 |relative error| in each mode."""
    rows = []
    for p in points:
        mask = p["scored"]
        row = {k: p[k] for k in ("set", "arch", "family", "fit")}
        row.update(points=int(p["measured_s"].size), scored=int(mask.sum()))
        for mode in ("roofline", "achieved"):
            e = errors(p[f"{mode}_s"], p["measured_s"])[mask]
            row[f"{mode}_median"], row[f"{mode}_p90"] = float(np.median(e)), float(np.percentile(e, 90))
        rows.append(row)
    return rows


def write_catalog(fitted: dict[str, dict]) -> list[Path]:
    """Replace the ``efficiency:`` block and ``sources.efficiency`` of each arch YAML (other lines kept)."""
    paths = []
    for name, data in fitted.items():
        path = locate("arch", name)
        path.write_text(efficiency_yaml(path.read_text(), data))
        paths.append(path)
    return paths


def efficiency_yaml(text: str, data: dict) -> str:
    """``text`` (an arch YAML) with its ``efficiency:`` block and ``sources.efficiency`` line replaced."""
    lines = [ln for ln in _drop_block(text.splitlines(), "efficiency:") if not ln.startswith("  efficiency:")]
    block = yaml.safe_dump({"efficiency": data}, sort_keys=False, width=100, default_flow_style=None).splitlines()
    at = lines.index("sources:")
    lines[at:at] = block
    end = at + len(block) + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    source = str(data.get("source", ""))
    residuals = source[source.find("held-out"):] if "held-out" in source else "residuals in efficiency.source"
    cite = f"fit by `hwdse calibrate` to measured kernels in shared/validation (data sets in efficiency.source); {residuals}"
    lines.insert(end, "  efficiency: " + '"' + cite.replace('"', "'") + '"')
    return "\n".join(lines) + "\n"


def _drop_block(lines: list[str], head: str) -> list[str]:
    out, skipping = [], False
    for ln in lines:
        if ln == head:
            skipping = True
            continue
        if skipping and (ln.startswith(" ") or not ln.strip()):
            continue
        skipping = False
        out.append(ln)
    return out
