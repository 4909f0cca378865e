"""Transferred efficiencies: the achieved model of a GPU that has no measured kernels of its own.

Each calibrated GPU carries its own ``efficiency:`` block. A GPU without one (a new design, an AMD
part, a next-generation product) takes the block this module builds from parameters *shared* by all
GPUs and fitted jointly on every GPU with kernel data (``hwdse calibrate --transfer``, committed in
``arch/efficiency/transfer.yaml`` with the leave-one-device-out error of each kernel family):

* compute as a fraction of the datasheet peak, per arithmetic-class family (``bf16`` for 16- and
  32-bit classes, ``fp8`` for 8- and 6-bit, ``fp4`` for 4-bit), and fixed overheads per family in us;
* off-chip streaming as a fraction of datasheet bandwidth per memory family (``hbm``, ``gddr``), and
  weights small enough to stay in L2 between calls read at an L2 rate per SM and cycle; elementwise
  kernels' streaming fraction (their fixed cost is the GEMMs' ``bf16`` overhead: the measured ones were
  host-timed, their floor is the harness's);
* the decode-attention occupancy constant per SM (``x 'units'``) and the decode and NCCL latencies in
  clock cycles (``/ clock``), the kernel mechanisms of :mod:`hwdse.hardware.gpu.efficiency` unchanged.

The device contributes only datasheet quantities: SM count, clock, peaks per class, vector peak,
memory technology and bandwidth, scale-up link.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import Field

from hwdse._catalog import Spec, load_in
from hwdse._params import quantity
from hwdse.hardware.gpu.efficiency import (AttentionEfficiency, CollectiveEfficiency, GemmEfficiency, GPUEfficiency,
                                           VectorEfficiency)

__all__ = ["TransferEfficiency", "FAMILIES", "class_family", "memory_family", "transferred_efficiency",
           "load_transfer", "NO_SPLIT_K", "DECODE_MAX_GROUP"]

FAMILIES = {"fp32": "bf16", "tf32": "bf16", "bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "int8": "fp8",
            "fp6": "fp8", "fp4": "fp4", "int4": "fp4", "int2": "fp4"}
NO_SPLIT_K = ("fp4",)  # classes whose measured kernels (NVFP4) never split K; INT4 GEMMs were not measured
DECODE_MAX_GROUP = 32.0  # TensorRT-LLM XQA's GQA group limit (a software constant, not fitted)

_Frac = quantity(gt=0, le=1.5, unit="fraction of peak")
_Us = quantity(ge=0, unit="us")
_Cycles = quantity(ge=0, unit="clock cycles")


def class_family(cls: str) -> str:
    """The family whose shared parameters an arithmetic class uses."""
    return FAMILIES[cls]


def memory_family(technology: str) -> str:
    """``hbm`` for stacked DRAM, ``gddr`` for graphics and LPDDR/DDR parts."""
    return "hbm" if technology.startswith("hbm") else "gddr"


class TransferEfficiency(Spec):
    """Parameters shared by every GPU; ``held_out`` holds each kernel family's leave-one-device-out
    |relative error| (median, p90) of the joint fit, the band of a transferred prediction."""

    name: str = "transfer"
    source: str
    compute_fraction: dict[str, _Frac] = Field(description="GEMM, per class family")
    bandwidth_fraction: dict[str, _Frac] = Field(description="off-chip streaming, per memory family")
    overlap_exponent: quantity(ge=1, unit="1")
    split_k_us: _Us
    overhead_us: dict[str, _Us] = Field(description="GEMM fixed time, per class family")
    quantize_passes: dict[str, quantity(ge=0, unit="passes")] = Field(description="per low-precision family")
    k_step_cycles: dict[str, _Cycles] = Field(description="per family that never splits K: cycles per k of a tile")
    l2_fit_fraction: quantity(gt=0, unit="fraction of L2") = Field(description="weights below this share of L2 stay "
                                                                            "resident between kernel calls")
    l2_bytes_per_clock: quantity(gt=0, unit="B per SM per cycle")
    prefill_compute_fraction: dict[str, _Frac] = Field(description="fused prefill attention, per class family")
    prefill_overhead_us: _Us
    prefill_wave_us: _Us
    decode_bandwidth_fraction: _Frac
    decode_half_bandwidth_ctas_per_unit: quantity(ge=0, unit="thread blocks per SM")
    decode_cta_us: _Us
    decode_overhead_cycles: _Cycles
    decode_vector_fraction: _Frac
    vector_bandwidth_fraction: _Frac = Field(description="elementwise and normalisation kernels' streaming")
    collective_bandwidth_fraction: _Frac
    collective_latency_cycles: _Cycles
    collective_latency_per_peer_cycles: _Cycles
    held_out: dict[str, tuple[float, float]] = Field(default_factory=dict, description="family -> LODO median, p90")


def _by_family(table: dict[str, Any], classes: Any) -> dict[str, Any]:
    """A per-class table for ``classes`` from a per-family one (families without data take bf16's)."""
    return {cls: table.get(class_family(cls), table["bf16"]) for cls in classes}


def transferred_efficiency(gpu: Any, shared: TransferEfficiency) -> GPUEfficiency:
    """The ``efficiency`` block ``gpu`` gets from the shared parameters and its datasheet quantities."""
    classes = list(gpu.compute.peak_TOPS)
    cycle_us = 1e-3 / gpu.compute.clock_GHz
    bandwidth = shared.bandwidth_fraction.get(memory_family(gpu.memory.technology), shared.bandwidth_fraction["hbm"])
    quantized = [c for c in classes if class_family(c) in shared.quantize_passes]
    no_split = [c for c in classes if c in NO_SPLIT_K]
    gemm = GemmEfficiency.model_construct(
        compute_fraction=_by_family(shared.compute_fraction, classes), bandwidth_fraction=bandwidth,
        overlap_exponent=shared.overlap_exponent, split_k_us=shared.split_k_us,
        overhead_us=_by_family(shared.overhead_us, classes),
        k_step_ns={c: shared.k_step_cycles[class_family(c)] * cycle_us * 1e3 for c in no_split
                   if class_family(c) in shared.k_step_cycles},
        no_split_k=tuple(no_split), quantize_passes={c: shared.quantize_passes[class_family(c)] for c in quantized},
        l2_fit_fraction=shared.l2_fit_fraction, l2_bytes_per_clock=shared.l2_bytes_per_clock)
    attention = AttentionEfficiency.model_construct(
        prefill_compute_fraction=_by_family(shared.prefill_compute_fraction, classes),
        prefill_overhead_us=shared.prefill_overhead_us, prefill_wave_us=shared.prefill_wave_us,
        decode_bandwidth_fraction=shared.decode_bandwidth_fraction,
        decode_half_bandwidth_ctas=shared.decode_half_bandwidth_ctas_per_unit * gpu.compute.units,
        decode_cta_us=shared.decode_cta_us, decode_overhead_us=shared.decode_overhead_cycles * cycle_us,
        decode_max_group=DECODE_MAX_GROUP, decode_vector_fraction=shared.decode_vector_fraction)
    vector = VectorEfficiency.model_construct(bandwidth_fraction=shared.vector_bandwidth_fraction,
                                              overhead_us=shared.overhead_us["bf16"])
    collective = CollectiveEfficiency.model_construct(
        bandwidth_fraction=shared.collective_bandwidth_fraction,
        latency_us=shared.collective_latency_cycles * cycle_us,
        latency_per_peer_us=shared.collective_latency_per_peer_cycles * cycle_us)
    return GPUEfficiency.model_construct(source=f"transferred: {shared.source}", gemm=gemm, attention=attention,
                                         vector=vector, collective=collective)


@cache
def load_transfer() -> TransferEfficiency:
    """The committed shared parameters, ``arch/efficiency/transfer.yaml``."""
    return load_in("arch/efficiency", "shared efficiency", "transfer", TransferEfficiency)
