"""Energy per operator: arithmetic (pJ per MAC by arithmetic class) plus data movement (pJ/bit).

``energy = MACs x pJ/MAC(class) + bytes x 8 x pJ/bit(level)``, where a MAC is 2 ops and the
level is where the bytes come from: a DRAM device (``memory/*.yaml`` ``energy_pJ_per_bit``),
the PIM-internal path (cell to PIM unit, by placement), on-chip SRAM/L2, or a link.

Arithmetic: Horowitz, "Computing's Energy Problem", ISSCC 2014 (45 nm) per MAC = mult + add,
scaled to a logic node by ``node_scale``. GPUs use :data:`GPU_NODE_SCALE`, derived from the
AttAcc simulator's FP16 MAC energy (0.32 pJ, scale-snu/attacc_simulator src/config.py
``ENERGY_TABLE['GPU']['alu']``, used for both A100 and H100) over Horowitz's 45 nm FP16 MAC
(1.1 + 0.4 = 1.5 pJ): 0.32 / 1.5 = 0.213. One factor serves every GPU (7 nm and 4 nm alike):
a stated simplification, not a per-node fit.
"""

from __future__ import annotations

import numpy as np

from hwdse._params import Number
from hwdse.workload.ops import Op

__all__ = ["MAC_PJ_45NM", "GPU_NODE_SCALE", "ONCHIP_PJ_PER_BIT", "mac_pJ", "compute_energy_J",
           "dram_energy_J", "gpu_energy_J", "gpu_op_energy_J"]

# pJ per multiply-accumulate at 45 nm, by arithmetic class (see COMPUTE_CLASSES).
MAC_PJ_45NM: dict[str, float] = {
    "fp32": 3.7 + 0.9,   # Horowitz 2014: FP32 mult 3.7 pJ + FP32 add 0.9 pJ
    "tf32": 3.7 + 0.9,   # assumption: TF32 keeps the FP32 adder; charged as FP32 (upper bound)
    "fp16": 1.1 + 0.4,   # Horowitz 2014: FP16 mult 1.1 + FP16 add 0.4
    "bf16": 1.1 + 0.4,   # assumption: BF16 (8-bit mantissa) charged as FP16 (upper bound)
    "int8": 0.2 + 0.03,  # Horowitz 2014: 8-bit int mult 0.2 + 8-bit add 0.03 (accumulate width ignored)
    # derived (shared/research/hardware-specs.md §4.2): vendors double peak per format halving at
    # equal TDP, so per-op energy roughly halves; FP8 = FP16 / 2, FP6/FP4 = FP8 / 2, int4 = int8 / 2.
    "fp8": (1.1 + 0.4) / 2,
    "fp6": (1.1 + 0.4) / 4,
    "fp4": (1.1 + 0.4) / 4,
    "int4": (0.2 + 0.03) / 2,
    "int2": (0.2 + 0.03) / 4,
}
# vector (non-matrix) work runs on FP32 CUDA cores: one op = half an FP32 MAC.
MAC_PJ_45NM["vector"] = MAC_PJ_45NM["fp32"]

GPU_NODE_SCALE = 0.32 / (1.1 + 0.4)
"""45 nm -> GPU node energy factor (AttAcc simulator FP16 MAC 0.32 pJ / Horowitz 1.5 pJ)."""

ONCHIP_PJ_PER_BIT = 0.16 + 0.3
"""Every off-chip byte also crosses L2 (0.3 pJ/bit) and L1/shared (0.16 pJ/bit) once
(AttAcc simulator ENERGY_TABLE['GPU'] l1 = 0.16 x 8, l2 = 0.3 x 8 pJ/B)."""


def mac_pJ(cls: str, node_scale: Number = GPU_NODE_SCALE) -> Number:
    """Energy of one MAC of arithmetic class ``cls`` (or ``vector``) at a node, in pJ."""
    return MAC_PJ_45NM[cls] * node_scale


def compute_energy_J(flops: Number, pj_per_mac: Number) -> Number:
    """Joules for ``flops`` ops (2 ops per MAC)."""
    return flops / 2 * pj_per_mac * 1e-12


def dram_energy_J(nbytes: Number, pj_per_bit: Number | None) -> Number:
    """Joules to move ``nbytes`` at ``pj_per_bit``; NaN when the technology has no energy figure."""
    if pj_per_bit is None:
        return float("nan")
    return nbytes * 8 * pj_per_bit * 1e-12


def gpu_energy_J(flops: Number, nbytes: Number, cls: str, dram_pj_per_bit: Number | None,
                 compute_scale: Number = 1.0, memory_scale: Number = 1.0) -> tuple[Number, Number]:
    """``flops`` ops in class ``cls`` and ``nbytes`` from DRAM through L2 and L1 on a GPU; each part
    times a measured factor (``hwdse.hardware.power.GPUPower``; 1: the per-op model alone). Returns
    (J, the share of them in the core domain: the MACs and the on-chip L2/L1 traffic); per second
    of ops/s and B/s, the power in W."""
    onchip = memory_scale * nbytes * 8 * ONCHIP_PJ_PER_BIT * 1e-12
    core = compute_scale * compute_energy_J(flops, mac_pJ(cls)) + onchip
    total = core + memory_scale * dram_energy_J(nbytes, dram_pj_per_bit)
    with np.errstate(divide="ignore", invalid="ignore"):
        return total, np.where(total > 0, core / total, 0.0)


def gpu_op_energy_J(op: Op, cls: str, dram_pj_per_bit: Number | None, compute_scale: Number = 1.0,
                    memory_scale: Number = 1.0) -> tuple[Number, Number]:
    """One instance of ``op`` on a GPU (:func:`gpu_energy_J` of its ops and bytes)."""
    return gpu_energy_J(op.flops, op.bytes, cls, dram_pj_per_bit, compute_scale, memory_scale)
