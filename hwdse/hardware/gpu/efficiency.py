"""Achieved (calibrated) GPU timings: how real kernels fall short of the roofline.

A roofline is an upper bound. This module times each operator as GPU kernels run it, with a
few physically meaningful parameters per GPU (the ``efficiency:`` block of an ``arch/`` entry,
fit by ``hwdse calibrate`` on measured kernels, see ``hwdse/calibration/kernels.py``):

* **GEMM** (``m x k`` by ``k x n``, ``groups`` independent problems): the output is cut into
  tiles, one per SM at a time; like cuBLAS/CUTLASS heuristics the kernel picks the fastest tile of
  a small menu (``TILES``) and split-K when there are fewer tiles than SMs. A tile computes at
  ``compute_fraction x peak / units``; the kernel takes whole waves of tiles. (No L2 operand-stream
  limit: on every GPU's data the fit is best with such a term inactive, see ``hwdse/calibration/kernels.py``.)
  Off-chip traffic
  runs at ``bandwidth_fraction x`` peak. Compute and memory overlap imperfectly: the kernel takes
  the p-norm ``(c^p + m^p)^(1/p)`` (p = ``overlap_exponent``; p -> infinity is the roofline max),
  plus ``split_k_us`` when K is split (the partial-sum reduction), a fixed ``overhead_us``
  (launch, prologue). Classes in ``no_split_k`` (the measured NVFP4 kernels) never split K: one tile
  walks all of K, at least ``k_step_ns`` per k (its main loop's latency-bound pipeline step). For
  low-precision classes the kernel also pays ``quantize_passes`` over the activations
  (dynamic quantisation, as the measured FP8/NVFP4 kernels do; set 0 for static scales).
* **Prefill attention** (fused, causal): causal FLOPs at ``prefill_compute_fraction x peak``,
  quantised to waves of (sequence, head, 128-query tile) blocks, plus a per-wave tile overhead
  and a fixed overhead; traffic at the GEMM bandwidth fraction. Unfused ``qk_matmul`` and
  ``sv_matmul`` run as batched GEMMs.
* **Decode attention** (one query per sequence): streaming the KV cache at
  ``decode_bandwidth_fraction x`` peak, derated by occupancy ``x / (x + h)`` over the
  ``x = batch x kv_heads`` thread blocks (``h = decode_half_bandwidth_ctas``), plus a per-block
  cost ``decode_cta_us x x / units`` and a fixed overhead. Groups of more than ``decode_max_group``
  query heads per KV head (TensorRT-LLM's XQA tensor-core kernel takes at most 32) fall back to a
  kernel with one block per query head (``x = batch x heads``) that does its dot products on the
  CUDA cores: compute = attention FLOPs / (``decode_vector_fraction x`` vector peak), overlapped
  with the KV streaming (K/V re-reads hit L2). Every term is affine in the KV length
  (the exact decode average of ``hwdse.perf.phases`` relies on it); nonlinear factors depend on
  batch and heads only.
* **Vector** operators (norms, activations, adds, embedding): traffic at
  ``vector.bandwidth_fraction x`` peak, FLOPs at the vector peak, plus ``vector.overhead_us``.
* **Collectives** (all-reduce over ``p`` GPUs, NCCL ring): ``latency_us + (p-1) latency_per_peer_us
  + 2 (p-1)/p x bytes / (bandwidth_fraction x link bandwidth)``: see :func:`collective_s`.

Every parameter may be a number or an ``xarray.DataArray`` (a sweep, via dotted overrides such
as ``efficiency.gemm.bandwidth_fraction``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import reduce
from typing import Any, Protocol

import numpy as np
import xarray as xr
from pydantic import Field, model_validator

from hwdse._array import where
from hwdse._catalog import Spec
from hwdse._errors import HwdseError
from hwdse._params import Number, quantity
from hwdse.formats import get
from hwdse.hardware._base import COMPUTE_CLASSES, Timing
from hwdse.workload.ops import Op

__all__ = ["GPUEfficiency", "GemmEfficiency", "AttentionEfficiency", "VectorEfficiency", "CollectiveEfficiency",
           "TILES", "QUERY_TILE", "achieved_timings", "gemm_s", "collective_s", "gpu_collective_s", "class_value"]

# Output tiles (rows x cols) a GEMM library chooses from (CUTLASS/cuBLAS Ampere-Hopper menus).
TILES = ((16, 128), (32, 128), (64, 64), (64, 128), (128, 64), (128, 128), (128, 256), (256, 128))
TILE_M, TILE_N = (np.array(edge, dtype=float) for edge in zip(*TILES))
SPLIT_K_MIN = 256          # split-K keeps at least this many k per split
QUERY_TILE = 128           # query rows per FlashAttention thread block
US = 1e-6

_Frac = quantity(gt=0, le=1.5, unit="fraction of peak")
_Us = quantity(ge=0, unit="us")


class GemmEfficiency(Spec):
    """Matrix-multiply kernels (per arithmetic class where the measurements differ)."""

    compute_fraction: dict[str, _Frac] = Field(description="of the class's peak, full waves of large tiles")
    bandwidth_fraction: _Frac = Field(description="of peak off-chip bandwidth")
    overlap_exponent: quantity(ge=1, unit="1") = Field(description="p of the p-norm joining compute and memory")
    split_k_us: _Us = Field(description="extra time when the kernel splits K (partial-sum reduction)")
    overhead_us: dict[str, _Us] = Field(description="fixed time per kernel, per class")
    k_step_ns: dict[str, quantity(ge=0, unit="ns")] = Field(
        default_factory=dict, description="per class: least time per k of one output tile (the main loop's "
        "pipeline bound when a tile's operand and block-scale loads are latency-limited); unlisted: 0")
    no_split_k: tuple[str, ...] = Field(default=(), description="classes whose kernels never split K")
    quantize_passes: dict[str, quantity(ge=0, unit="passes")] = Field(
        default_factory=dict, description="dynamic activation quantisation per low-precision class: effective passes "
        "over the activations (read 2 B, write the operand width); 0 = static scales")
    l2_fit_fraction: quantity(gt=0, unit="fraction of L2") | None = Field(
        default=None, description="weights smaller than this share of the L2 stay resident between calls and are "
        "read at the L2 rate (a kernel benchmark cycling few weight copies); None: every byte from DRAM")
    l2_bytes_per_clock: quantity(gt=0, unit="B per SM per cycle") | None = Field(
        default=None, description="L2 read rate of resident weights, per SM and cycle")


class AttentionEfficiency(Spec):
    """Fused attention kernels: prefill (FlashAttention) and decode (KV-cache streaming)."""

    prefill_compute_fraction: dict[str, _Frac] = Field(description="of the class's peak, per class")
    prefill_overhead_us: _Us
    prefill_wave_us: _Us = Field(description="per wave of (sequence, head, query-tile) blocks")
    decode_bandwidth_fraction: _Frac
    decode_half_bandwidth_ctas: quantity(ge=0, unit="thread blocks") = Field(
        description="batch x kv_heads at which decode reaches half its bandwidth")
    decode_cta_us: _Us = Field(description="per thread block and SM")
    decode_overhead_us: _Us
    decode_max_group: quantity(ge=1, unit="query heads per kv head") | None = Field(
        default=None, description="largest GQA group the tensor-core decode kernel takes (a software limit, "
        "TensorRT-LLM XQA: 32); larger groups run one CUDA-core block per query head. None: no limit")
    decode_vector_fraction: _Frac | None = Field(
        default=None, description="of the vector (FP32) peak reached by the per-query-head CUDA-core kernel")

    @model_validator(mode="after")
    def _fallback_pair(self) -> "AttentionEfficiency":
        if (self.decode_max_group is None) != (self.decode_vector_fraction is None):
            raise ValueError("decode_max_group and decode_vector_fraction are set together or not at all")
        return self


class VectorEfficiency(Spec):
    """Elementwise and normalisation kernels (memory-bound)."""

    bandwidth_fraction: _Frac
    overhead_us: _Us


class CollectiveEfficiency(Spec):
    """NCCL all-reduce inside a node: a latency and a fraction of the per-direction link bandwidth."""

    bandwidth_fraction: _Frac = Field(description="bus bandwidth / scale_up link bandwidth")
    latency_us: _Us = Field(description="fixed latency of one collective")
    latency_per_peer_us: _Us = Field(description="added latency per further GPU (p - 1 peers)")


class GPUEfficiency(Spec):
    """The ``efficiency:`` block of a GPU: achieved-mode parameters and what they were fit on."""

    source: str = Field(description="data sets the parameters were fit on, with the fit's residuals")
    held_out: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="kernel family -> median, p90 |relative error| on held-out rows (the band "
        "of a prediction); families without data on this GPU are absent")
    gemm: GemmEfficiency
    attention: AttentionEfficiency
    vector: VectorEfficiency
    collective: CollectiveEfficiency | None = None


class GPULike(Protocol):
    """What the achieved model reads of a GPU spec (:class:`hwdse.hardware.gpu.GPU` is one)."""

    name: str
    compute: Any  # units, clock_GHz, vector_TFLOPS
    onchip: Any  # l2_MiB
    scale_up: Any  # bandwidth_GBps per direction, or None
    efficiency: GPUEfficiency | None


def class_value(table: dict[str, Any], cls: str, where: str) -> Any:
    """``table[cls]``, else the entry of the nearest listed class (fp16 <-> bf16 first, then wider)."""
    if cls in table:
        return table[cls]
    twin = {"fp16": "bf16", "bf16": "fp16"}.get(cls)
    if twin in table:
        return table[twin]
    order = COMPUTE_CLASSES
    listed = sorted((c for c in table if c in order), key=lambda c: abs(order.index(c) - order.index(cls)))
    if not listed:
        raise HwdseError(where, None, f"no entry for arithmetic class {cls!r}")
    return table[listed[0]]


def gemm_s(m: Number, n: Number, k: Number, groups: Number, peak_ops_per_s: Number, units: int,
           compute_fraction: Number, split_k_s: Number = 0.0, k_step_s: Number = 0.0,
           split_k: bool = True) -> Number:
    """Compute time (s) of the best tile/split-K choice; whole waves over ``units`` SMs. A tile takes the
    longer of its math and ``k_step_s`` per k (main-loop pipeline bound). On numpy inputs the tiles are
    timed at once, on a new leading axis (the same arithmetic as one by one)."""
    per_sm = peak_ops_per_s * compute_fraction / units

    def tile_s(tm: Any, tn: Any) -> Number:
        """Seconds of the GEMM in tiles of ``tm`` x ``tn``."""
        tiles = np.ceil(m / tm) * np.ceil(n / tn) * groups
        split = np.maximum(1.0, np.minimum(np.floor(units / tiles), np.floor(k / SPLIT_K_MIN))) if split_k else 1.0
        waves = np.ceil(tiles * split / units)
        k_split = k / split
        return waves * np.maximum(2 * tm * tn * k_split / per_sm, k_split * k_step_s) + where(split > 1, split_k_s, 0.0)

    inputs = (m, n, k, groups, per_sm, split_k_s, k_step_s)
    if any(isinstance(x, xr.DataArray) for x in inputs):  # named dims: one tile at a time
        return reduce(np.minimum, (tile_s(tm, tn) for tm, tn in TILES), np.inf)
    axis = (len(TILES),) + (1,) * max(np.ndim(x) for x in inputs)
    return tile_s(TILE_M.reshape(axis), TILE_N.reshape(axis)).min(axis=0)


def _overlap(c: Number, m: Number, p: Number) -> Number:
    """Extra seconds of the p-norm over the max: ``(c^p + m^p)^(1/p) - max(c, m)``."""
    hi = np.maximum(c, m)
    safe = where(hi > 0, hi, 1.0)
    return where(hi > 0, hi * ((c / safe) ** p + (m / safe) ** p) ** (1 / p) - hi, 0.0)


def _is_decode(op: Op) -> bool:
    q = op.shape.get("q_len", 1)
    return not hasattr(q, "dims") and np.ndim(q) == 0 and float(q) == 1.0


def _element_bytes(op: Op) -> Number:
    """Bytes per operand element of a GEMM (from its traffic; falls back to 2)."""
    if not op.operands:
        return 2.0
    return max(get(f).bits_per_element for f in op.operands) / 8


def _gemm(gpu: GPULike, t: Timing, m: Number, n: Number, k: Number, groups: Number) -> Timing:
    g, op, cls = gpu.efficiency.gemm, t.op, t.compute_class
    ctx = f"arch {gpu.name}: efficiency.gemm"
    compute = gemm_s(m, n, k, groups, t.peak_ops_per_s, gpu.compute.units, class_value(g.compute_fraction, cls, ctx),
                     g.split_k_us * US, g.k_step_ns.get(cls, 0.0) * 1e-9, cls not in g.no_split_k)
    memory = op.bytes / (g.bandwidth_fraction * t.bandwidth_Bps)
    if g.l2_fit_fraction is not None:  # resident weights come from L2 (a smooth step at the fitted share)
        resident = 1 / (1 + (op.weight_bytes / (g.l2_fit_fraction * gpu.onchip.l2_MiB * 2**20)) ** 8)
        l2_Bps = g.l2_bytes_per_clock * gpu.compute.units * gpu.compute.clock_GHz * 1e9
        memory = memory - resident * op.weight_bytes * (1 / (g.bandwidth_fraction * t.bandwidth_Bps) - 1 / l2_Bps)
    serial = {"overhead": class_value(g.overhead_us, cls, ctx) * US,
              "overlap": _overlap(compute, memory, g.overlap_exponent)}
    passes = g.quantize_passes.get(cls, 0.0)
    if np.any(passes):  # an MoE layer quantizes each token once, before it is copied to its experts
        act = m * k * groups / op.shape.get("input_copies", 1)
        serial["quantize"] = passes * act * (2 + _element_bytes(op)) / (g.bandwidth_fraction * t.bandwidth_Bps)
    return replace(t, compute_s=compute, memory_s=memory, serial_s=serial)


def _attention(gpu: GPULike, t: Timing) -> Timing:
    a, op, s = gpu.efficiency.attention, t.op, t.op.shape
    units, bw = gpu.compute.units, t.bandwidth_Bps
    if _is_decode(op):
        ctas, compute = s["batch"] * s["kv_heads"], op.flops / t.peak_ops_per_s
        if a.decode_max_group is not None and op.name != "mla_attention":  # FlashMLA: all heads on tensor cores
            fallback = s["heads"] / s["kv_heads"] > a.decode_max_group
            ctas = where(fallback, s["batch"] * s["heads"], ctas)
            vector_s = op.flops / (a.decode_vector_fraction * gpu.compute.vector_TFLOPS * 1e12)
            compute = where(fallback, vector_s, compute)
        occupancy = 1 + a.decode_half_bandwidth_ctas / ctas
        memory = op.bytes / (a.decode_bandwidth_fraction * bw) * occupancy
        serial = {"overhead": a.decode_overhead_us * US + a.decode_cta_us * US * ctas / units}
        return replace(t, compute_s=compute, memory_s=memory, serial_s=serial)
    groups = s["batch"] * s["heads"]
    if op.name == "qk_matmul":
        return _gemm(gpu, t, s["q_len"], s["kv_len"], s["head_dim"], groups)
    if op.name == "sv_matmul":
        return _gemm(gpu, t, s["q_len"], s["head_dim"], s["kv_len"], groups)
    blocks = groups * np.ceil(s["q_len"] / QUERY_TILE)
    waves = np.ceil(blocks / units)
    fraction = class_value(a.prefill_compute_fraction, t.compute_class, f"arch {gpu.name}: efficiency.attention")
    compute = op.flops / (t.peak_ops_per_s * fraction) * waves * units / blocks
    memory = op.bytes / (gpu.efficiency.gemm.bandwidth_fraction * bw)
    serial = {"overhead": a.prefill_overhead_us * US + a.prefill_wave_us * US * waves}
    return replace(t, compute_s=compute, memory_s=memory, serial_s=serial)


def achieved_timings(gpu: GPULike, roofline: Sequence[Timing]) -> list[Timing]:
    """Achieved-mode timings from the roofline ``Timing`` of each op on ``gpu`` (which must carry an
    ``efficiency`` block): classes, peaks and energy are kept, the time terms replaced. Whatever the
    roofline added beyond the op's own FLOPs and bytes (operand dequantisation on the vector units,
    an unfused dequantised copy) is kept: compute as is, traffic at the vector bandwidth fraction."""
    if gpu.efficiency is None:
        raise HwdseError(f"arch {gpu.name}", "efficiency",
                         "no calibrated efficiency block; use mode 'roofline' or run `hwdse calibrate`")
    vector = gpu.efficiency.vector
    timings = []
    for t in roofline:
        op = t.op
        if op.kind == "collective":
            comm = gpu_collective_s(gpu, _kind_of(op), op.shape["bytes"], op.shape["devices"])
            timings.append(replace(t, compute_s=0.0, memory_s=0.0, serial_s={"communication": comm}))
            continue
        if op.kind == "gemm":
            s = op.shape
            new = _gemm(gpu, t, s["m"], s["n"], s["k"], s.get("groups", 1))
        elif op.kind == "attention":
            new = _attention(gpu, t)
        else:
            new = replace(t, compute_s=op.flops / t.peak_ops_per_s,
                          memory_s=op.bytes / (vector.bandwidth_fraction * t.bandwidth_Bps),
                          serial_s={"overhead": vector.overhead_us * US})
        extra_compute = t.compute_s - op.flops / t.peak_ops_per_s
        extra_memory = t.memory_s - op.bytes / t.bandwidth_Bps
        timings.append(replace(new, compute_s=new.compute_s + extra_compute,
                               memory_s=new.memory_s + extra_memory / vector.bandwidth_fraction))
    return timings


def collective_s(eff: CollectiveEfficiency, kind: str, nbytes: Number, devices: Number, link_Bps: Number) -> Number:
    """Achieved seconds of an NCCL collective among ``devices`` GPUs over links of ``link_Bps`` per
    direction: ``all_reduce`` (``nbytes`` = one device's buffer), ``all_gather`` / ``reduce_scatter``
    (``nbytes`` = the full gathered buffer: half the all-reduce traffic), ``all_to_all`` (``nbytes`` =
    the buffer one device scatters; NCCL's pairwise exchange, not fitted on its own) or ``p2p``."""
    p = devices
    factor = {"all_reduce": 2 * (p - 1) / p, "all_gather": (p - 1) / p, "reduce_scatter": (p - 1) / p,
              "all_to_all": (p - 1) / p, "p2p": 1.0}[kind]
    latency = (eff.latency_us + eff.latency_per_peer_us * (p - 1)) * US
    return where(p > 1, latency + factor * nbytes / (eff.bandwidth_fraction * link_Bps), 0.0)


def gpu_collective_s(gpu: GPULike, kind: str, nbytes: Number, devices: Number) -> Number:
    """:func:`collective_s` over ``gpu``'s own scale-up link (its calibrated parameters)."""
    eff = None if gpu.efficiency is None else gpu.efficiency.collective
    if eff is None or gpu.scale_up is None:
        raise HwdseError(f"arch {gpu.name}", "efficiency.collective", "no calibrated collective parameters")
    return collective_s(eff, kind, nbytes, devices, gpu.scale_up.bandwidth_GBps * 1e9)


COLLECTIVE_KIND = {"tp_allreduce": "all_reduce", "tp_allgather": "all_gather", "tp_reducescatter": "reduce_scatter",
                   "pp_send": "p2p", "all_reduce": "all_reduce"}


def _kind_of(op: Op) -> str:
    for prefix, kind in COLLECTIVE_KIND.items():
        if op.name.startswith(prefix):
            return kind
    return "all_reduce"
