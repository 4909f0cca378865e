"""Spatial dataflow systems (kind ``spatial``): SRAM-only chips (Groq LPU, Graphcore IPU, Cerebras WSE).

A chip = ``pe`` (PE type x count x clock) + ``sram_MiB`` of on-chip SRAM at
``sram_bandwidth_TBps``; no DRAM. The model lives in SRAM, so it is partitioned over as many
chips as it needs (``chips: null``; else the given count): the fewest groups of ``tp`` chips
such that each chip's share of ``resident`` (weights in the scenario's weight format + the KV
cache allocated for the whole context) fits in ``usable_sram_fraction`` of its SRAM and that
share plus its share of one microbatch's peak prefill activations fits in all of it (the
``fits`` check of evaluate; both from :func:`hwdse.workload.footprint.footprint`). ``tp`` chips
split every layer (Megatron rules, :mod:`hwdse.hardware.multi`); the ``chips / tp`` stages
hold consecutive layers and pass activations point to point over ``interconnect``. By default a
batch's sequences are pipelined over the stages (``microbatches = min(batch, stages)``), so a
batch adds throughput without adding stage slots to a decode step.

Timing on one chip (weight-stationary spatial mapping):

* decode: every matrix operator owns the SRAM banks that hold its data (weights, allocated KV),
  a share ``resident_op / resident_chip`` of the chip's SRAM bandwidth, and PEs in proportion
  to its work, a share ``flops_op / flops_chip`` of the PE peak (a balanced static
  allocation). A token visits the operators one after another, so each runs at its shares;
  an operator larger than a chip (share > 1) passes its chips in sequence, i.e. runs at one
  chip's rate. Vector operators use the whole chip's vector units and bandwidth.
* prefill: prompt tokens stream through the operators, keeping every region busy: the plain
  roofline at the chip's full SRAM bandwidth and PE peak.
* every matrix operator adds the PE array's fill and drain latency, ``(rows + cols)`` cycles
  (a vector enters one edge of the array and its result leaves the other);
* and, with a ``fabric``, the on-chip traversal of its operands and results (``serial["fabric"]``):
  ``(hops x hop_cycles + sync_cycles) / clock`` where ``topology: mesh`` (a 2-D mesh of cores,
  Cerebras) counts ``2 sqrt(cores of the operator's region) + op_hops`` hops (the input vector is
  broadcast along the region's rows and the partial sums reduced along its columns, one side of
  the square region each) and ``topology: fixed`` (Groq's slices, Graphcore's exchange) counts
  ``op_hops``, a chip constant. ``sync_cycles`` is a per-operator barrier (a BSP superstep).
  Vector operators are chained onto the stream of the neighbouring matrix operator (no traversal
  of their own: a norm's scale is a scalar that commutes with the next GEMV, so its reduction
  overlaps it). The region is the operator's PE share in decode and prefill alike.
* a fused ``flash_attention`` operator holds two dependent matrix steps (scores = q K^T, then
  P V): it pays the array fill and the traversal twice, as the unfused qk/sv pair does.

Per-token latency is then the sum over every stage's operators (a batch-1 token passes them in
turn) of region time + array fill + fabric traversal, plus TP all-reduces and stage hops; the
shares and regions are fixed at binding (allocation for the final context), so every term stays
affine in the KV length. ``infeasible_reason`` names the operand classes the PE cannot compute
(``unsupported: infeasible``); evaluate() reports it as ``feasible = false``. Outputs: ``chips``,
``area_mm2`` = die x chips, ``power_W`` = chip power x chips. Energy per operator: MACs x the
PE's pJ/MAC + bytes x the ``memory/sram.yaml`` pJ/bit (45 nm, not scaled to the chip's node).
Every microbatch's pass is charged (energy, and utilization as the mean over chips), not only
the critical-path stage slots that set the time (:mod:`hwdse.hardware.multi`).
An MoE expert operator's share counts the experts it reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr

from hwdse._array import where
from hwdse._catalog import Spec
from hwdse._errors import HwdseError
from hwdse._params import Number, count, quantity
from hwdse.hardware._base import Mode, Timing, operand_class
from hwdse.hardware.interconnect import Interconnect
from hwdse.hardware.memory import load_memory
from hwdse.hardware.multi import is_decode_table, schedule_sharded
from hwdse.hardware.pe import PEArray
from hwdse.workload.ops import Op

__all__ = ["Spatial", "Fabric"]

MiB = 2**20


class Fabric(Spec):
    """On-chip traversal latency per matrix operator (see the module docstring)."""

    topology: Literal["mesh", "fixed"] = Field(description="mesh: hops grow with sqrt(region cores); "
                                                "fixed: op_hops per operator")
    hop_cycles: quantity(gt=0, unit="cycle") = Field(1.0, description="cycles per hop")
    op_hops: quantity(ge=0, unit="hop") = Field(0.0, description="hops per operator (mesh: added to the region's)")
    sync_cycles: quantity(ge=0, unit="cycle") = Field(0.0, description="barrier per operator (BSP superstep)")

    def cycles(self, region_cores: Number) -> Number:
        """Traversal cycles of one operator instance whose region holds ``region_cores`` cores."""
        hops = self.op_hops + (2 * np.sqrt(region_cores) if self.topology == "mesh" else 0.0)
        return hops * self.hop_cycles + self.sync_cycles


class Spatial(Spec):
    """A system of identical SRAM-only dataflow chips, sized by the workload."""

    kind: Literal["spatial"] = "spatial"
    name: str
    description: str = ""
    pe: PEArray
    sram_MiB: quantity(gt=0, unit="MiB") = Field(description="on-chip SRAM per chip")
    sram_bandwidth_TBps: quantity(gt=0, unit="TB/s") = Field(description="aggregate SRAM bandwidth per chip")
    usable_sram_fraction: quantity(gt=0, le=1) = Field(description="share of SRAM for weights + KV cache")
    chips: count() | None = Field(None, description="None: as many as the model needs")
    tp: count() = Field(1, description="chips splitting each layer (tensor parallel)")
    microbatches: count() | None = Field(None, description="sequences pipelined over the stages; None: "
                                         "min(batch, stages), one microbatch per stage at most")
    interconnect: Interconnect
    fabric: Fabric | None = Field(None, description="on-chip traversal per matrix operator; None: none")
    die_area_mm2: quantity(gt=0, unit="mm^2") = Field(description="per chip")
    chip_power_W: quantity(gt=0, unit="W") | None = Field(None, description="per chip (card/system share)")
    sources: dict[str, str]
    _resident: dict[str, Number] = PrivateAttr(default_factory=dict)
    _resident_total: Number = PrivateAttr(default=np.nan)
    _flops: dict[str, Number] = PrivateAttr(default_factory=dict)
    _flops_total: Number = PrivateAttr(default=np.nan)
    _unsupported: tuple[str, ...] = PrivateAttr(default=())

    # -- sizing ----------------------------------------------------------------------------
    @property
    def capacity_bytes(self) -> Number:
        """SRAM of one chip (weights + KV take ``usable_sram_fraction`` of it, activations the rest)."""
        return self.sram_MiB * MiB

    @property
    def onchip_bytes(self) -> float:
        return float(self.sram_MiB * MiB / self.pe.count)

    @property
    def devices(self) -> Number:
        return self._count()

    @property
    def stages(self) -> Number:
        return np.ceil(self._count() / self.tp)

    def _count(self) -> Number:
        if self.chips is None:
            raise HwdseError(f"arch {self.name}", "chips", "chip count depends on the workload: evaluate() sizes it "
                             "(or call for_workload(model, scenario))")
        return self.chips

    def for_workload(self, model: Any, scenario: Any) -> "Spatial":
        """A copy sized for ``model`` x ``scenario``: chip count (if automatic) and operator shares."""
        from hwdse.workload import operator_table
        from hwdse.workload.footprint import footprint

        need = footprint(model, scenario)
        resident = need.weights_bytes + need.kv_cache_bytes
        context = np.minimum(scenario.prompt + scenario.gen, model.sliding_window or np.inf)
        chips = self.chips
        if chips is None:
            chips = self._groups(resident, need.activation_bytes, scenario.batch) * self.tp
        micro = self.microbatches
        if micro is None:
            micro = np.minimum(scenario.batch, np.ceil(chips / self.tp))
        bound = self.model_copy(update={"chips": chips, "microbatches": micro})
        ops = operator_table(model, scenario, "decode", context)
        matrix = [op for op in ops if op.operands]
        bound._resident = {op.name: op.weight_bytes + op.kv_read_bytes for op in matrix}
        bound._resident_total = resident
        bound._flops = {op.name: op.flops for op in matrix}
        bound._flops_total = sum(op.count * op.flops for op in matrix)
        wanted = {operand_class(op.operands) for op in matrix}
        bound._unsupported = tuple(sorted(c for c in wanted if self.pe.pe.native_class(c) is None))
        return bound

    def _groups(self, resident: Number, activations: Number, batch: Number) -> Number:
        """Fewest TP groups (stages) ``g`` whose chips hold the workload (bytes in, see the module docstring).

        Two conditions per chip: weights + KV ``resident / (tp g)`` within ``usable_sram_fraction``
        of the SRAM, and with one microbatch's activation share ``activations / (tp micro)`` within
        all of it (the ``fits`` check of evaluate), where ``micro = min(batch, g)`` unless set.
        Where no count holds one sequence's activations, ``g`` is the smallest at which they are
        smallest (evaluate then reports ``fits = false``).
        """
        sram = self.tp * self.sram_MiB * MiB  # one group's SRAM
        usable = np.ceil(resident / (self.usable_sram_fraction * sram))
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.microbatches is not None:
                room = sram - activations / self.microbatches
                fit = where(room > 0, np.ceil(resident / where(room > 0, room, 1.0)), 1.0)
            else:
                # g <= batch: each stage holds one microbatch of batch/g sequences: (resident + act) / g
                few = np.ceil((resident + activations) / sram)
                room = sram - activations / batch  # g > batch: one sequence per microbatch
                many = where(room > 0, np.ceil(resident / where(room > 0, room, 1.0)), np.ceil(batch))
                fit = where(few <= batch, few, np.maximum(many, np.ceil(batch)))
        return np.maximum(np.maximum(usable, fit), 1.0)

    @property
    def infeasible_reason(self) -> str:
        """Why the PEs cannot run the bound workload (a class with ``unsupported: infeasible``); "" if they can."""
        if not self._unsupported:
            return ""
        pe = self.pe.pe
        return (f"PE {pe.name} cannot compute {', '.join(self._unsupported)} operands (unsupported: infeasible; "
                f"it runs {', '.join(pe.rate)})")

    def footprint_shares(self, model: Any) -> tuple[Number, Number, Number]:
        """One chip holds 1/chips of weights and KV cache and its share of one microbatch's activations."""
        n = self._count()
        return 1 / n, 1 / n, 1 / (self.tp * (1 if self.microbatches is None else self.microbatches))

    @property
    def area_mm2(self) -> Number:
        return self.die_area_mm2 * self._count()

    @property
    def power_W(self) -> Number:
        return (np.nan if self.chip_power_W is None else self.chip_power_W) * self._count()

    @property
    def pe_area_mm2(self) -> Number:
        """PE arrays of one chip (a check on the die area: the rest is SRAM, fabric, I/O)."""
        return self.pe.area_mm2

    # -- timing ----------------------------------------------------------------------------
    def _shares(self) -> tuple[dict[str, Number], dict[str, Number]]:
        """Per operator instance: (share of the chip's SRAM banks, share of its PEs), at most 1."""
        n = self._count()
        mem = {k: np.minimum(1.0, (r / self.tp) / (self._resident_total / n)) for k, r in self._resident.items()}
        pes = {k: np.minimum(1.0, (f / self.tp) / (self._flops_total / n)) for k, f in self._flops.items()}
        return mem, pes

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        if mode != "roofline":
            raise HwdseError(f"arch {self.name}", "mode", f"{mode!r} needs calibrated efficiencies; use 'roofline'")
        if not self._resident:
            raise HwdseError(f"arch {self.name}", None, "not sized for a workload: call for_workload(model, scenario)")
        mem, pes = self._shares()
        chip = _Chip(self, mem, pes, pes) if is_decode_table(ops) else _Chip(self, {}, {}, pes)
        return schedule_sharded(chip, self.interconnect, ops, self.tp, self.stages, self.microbatches, mode)


@dataclass(frozen=True)
class _Chip:
    """One chip timing tensor-parallel shards: region shares in decode, the full chip in prefill."""

    spec: Spatial
    memory_shares: Mapping[str, Number]
    compute_shares: Mapping[str, Number]
    region_shares: Mapping[str, Number]

    def schedule(self, ops: Sequence[Op], mode: Mode) -> list[Timing]:
        s, pe = self.spec, self.spec.pe
        bw = s.sram_bandwidth_TBps * 1e12
        hz = pe.clock_GHz * 1e9
        fill = (pe.pe.rows + pe.pe.cols) / hz
        sram_J_per_B = load_memory("sram").energy_pJ_per_bit * 8e-12
        out = []
        for op in ops:
            share, pe_share = self.memory_shares.get(op.name, 1.0), self.compute_shares.get(op.name, 1.0)
            serial: dict[str, Number] = {}
            mac_J = 0.0
            if op.operands:
                wanted = operand_class(op.operands)
                native = pe.pe.native_class(wanted)
                cls, peak = native or f"{wanted}-unsupported", pe.peak_ops_per_s(wanted)
                compute = op.flops * np.inf if native is None else op.flops / (peak * pe_share)
                mac_J = op.flops / 2 * pe.pe.mac_energy_pJ(wanted) * 1e-12
                steps = 2 if op.name == "flash_attention" else 1
                serial["array_fill"] = steps * fill
                if s.fabric is not None:
                    serial["fabric"] = steps * s.fabric.cycles(pe.count * self.region_shares.get(op.name, 1.0)) / hz
            else:
                cls, peak = "vector", pe.vector_ops_per_s
                compute = op.flops / peak
            out.append(Timing(op, "spatial", cls, compute, op.bytes / (bw * share), serial, peak_ops_per_s=peak,
                              bandwidth_Bps=bw, energy_J=mac_J + op.bytes * sram_J_per_B))
        return out
