"""Spatial dataflow systems (kind ``spatial``): SRAM-only chips (Groq LPU, Graphcore IPU, Cerebras WSE).

A chip = ``pe`` (PE type x count x clock) + ``sram_MiB`` of on-chip SRAM at
``sram_bandwidth_TBps``; no DRAM. The model lives in SRAM, so it is partitioned over as many
chips as it needs (``chips: null``; else the given count): the fewest groups of ``tp`` chips
such that each chip's share of ``resident`` (weights in the scenario's weight format + the KV
cache allocated for the whole context) fits in ``usable_sram_fraction`` of its SRAM and that
share plus its share of one microbatch's peak prefill activations fits in all of it (the
``fits`` check of evaluate; both from :func:`hwdse.workload.footprint.footprint`). ``tp`` chips
split every layer (Megatron rules, :mod:`hwdse.hardware.systems.multi`); the ``chips / tp`` stages
hold consecutive layers and pass activations point to point over ``interconnect``. By default a
batch's sequences are pipelined over the stages (``microbatches = min(batch, stages)``), so a
batch adds throughput without adding stage slots to a decode step.

Timing on one chip (``mapping``):

* decode, ``stationary`` (Cerebras, Graphcore): a layer's cores hold its data (weights, allocated
  KV) and compute on it, each core a slice of every matrix of its layer (the WaferLLM mapping,
  OSDI 2025). A block of operators repeated alike (one layer; the LM head alone) owns a region of
  ``resident_block / resident_chip`` of the chip's cores: that share of its SRAM bandwidth and PE
  peak serves each of the block's operators in turn, as a batch-1 token visits them. A block
  larger than a chip (share > 1) passes its chips in sequence, i.e. runs at one chip's rate.
* decode, ``streaming`` (Groq): operands stream from every SRAM bank to every PE, so each
  operator has the whole chip.
* prefill: prompt tokens stream through the operators, keeping every region busy: the plain
  roofline at the chip's full SRAM bandwidth and PE peak. Vector operators use the whole chip.
* every matrix operator adds the PE array's fill and drain latency, ``(rows + cols)`` cycles
  (a vector enters one edge of the array and its result leaves the other);
* and, with a ``fabric``, the on-chip traversal of its operands and results (``serial["fabric"]``):
  ``(hops x hop_cycles + sync_cycles) / clock`` where ``topology: mesh`` (a 2-D mesh of cores,
  Cerebras) counts ``2 sqrt(cores of the region) + op_hops`` hops (the input vector is
  broadcast along the region's rows and the partial sums reduced along its columns, one side of
  the square region each) and ``topology: fixed`` (Groq's slices, Graphcore's exchange) counts
  ``op_hops``, a chip constant. ``sync_cycles`` is a per-operator barrier (a BSP superstep).
  Vector operators are chained onto the stream of the neighbouring matrix operator (no traversal
  of their own: a norm's scale is a scalar that commutes with the next GEMV, so its reduction
  overlaps it).
* a fused ``flash_attention`` operator holds two dependent matrix steps (scores = q K^T, then
  P V): it pays the array fill and the traversal twice, as the unfused qk/sv pair does.
* ``achieved`` mode (an ``efficiency`` block, fitted to measured decode kernels by
  :mod:`hwdse.calibration.spatial`): decode matrix operators stream at ``sram_fraction`` of
  their bandwidth and pay ``op_cycles`` per step (+ ``hop_cycles`` per mesh hop) in place of the
  array fill and traversal. Prefill keeps the roofline terms.

Per-token latency is then the sum over every stage's operators (a batch-1 token passes them in
turn) of region time + array fill + fabric traversal, plus TP all-reduces and stage hops; the
shares and regions are fixed at binding (allocation for the final context), so every term stays
affine in the KV length. ``infeasible_reason`` names the operand classes the PE cannot compute
(``unsupported: infeasible``); evaluate() reports it as ``feasible = false``. Outputs: ``chips``,
``area_mm2`` = die x chips, ``power_W`` = chip power x chips. Energy per operator: MACs x the
PE's pJ/MAC + bytes x the ``memory/sram.yaml`` pJ/bit (45 nm, not scaled to the chip's node).
Every microbatch's pass is charged (energy, and utilization as the mean over chips), not only
the critical-path stage slots that set the time (:mod:`hwdse.hardware.systems.multi`).
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
from hwdse.hardware._base import Basis, Mode, Timing, operand_class
from hwdse.hardware.memory import load_memory
from hwdse.hardware.pe import PEArray
from hwdse.hardware.power import SharedPower, load_shared_power
from hwdse.hardware.systems.interconnect import Interconnect
from hwdse.hardware.systems.multi import is_decode_table, schedule_sharded
from hwdse.workload import operator_table
from hwdse.workload.footprint import footprint
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

    def hops(self, region_cores: Number) -> Number:
        """Hops one operator instance's operands and results travel in a region of ``region_cores`` cores."""
        return self.op_hops + (2 * np.sqrt(region_cores) if self.topology == "mesh" else 0.0)

    def cycles(self, region_cores: Number) -> Number:
        """Traversal cycles of one operator instance whose region holds ``region_cores`` cores."""
        return self.hops(region_cores) * self.hop_cycles + self.sync_cycles


class SpatialEfficiency(Spec):
    """Achieved batch-1 decode rates of a chip, fitted to measured kernels (:mod:`hwdse.calibration.spatial`).

    In ``achieved`` mode a decode matrix operator streams its bytes at ``sram_fraction`` of its
    SRAM bandwidth share and pays ``op_cycles`` per dependent matrix step plus, on a mesh,
    ``hop_cycles`` per hop of its region (these replace the roofline's array fill and traversal).
    Prefill and vector operators keep their roofline terms: the data holds decode kernels only.
    """

    sram_fraction: quantity(gt=0, le=1) = Field(description="achieved share of the SRAM bandwidth, decode GEMV")
    op_cycles: quantity(ge=0, unit="cycle") = Field(description="fixed cycles per dependent matrix step")
    hop_cycles: quantity(ge=0, unit="cycle") | None = Field(None, description="mesh: cycles per region hop; "
                                                            "None: no traversal term (in op_cycles)")
    source: str


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
    mapping: Literal["stationary", "streaming"] = Field(
        "stationary", description="stationary: a layer's cores hold its data and compute on it (decode runs an "
        "operator on its layer's region); streaming: operands stream from all SRAM to all PEs (Groq)")
    fabric: Fabric | None = Field(None, description="on-chip traversal per matrix operator; None: none")
    efficiency: SpatialEfficiency | None = Field(None, description="calibrated decode rates (achieved mode)")
    die_area_mm2: quantity(gt=0, unit="mm^2") = Field(description="per chip")
    chip_power_W: quantity(gt=0, unit="W") | None = Field(None, description="per chip (card/system share)")
    sources: dict[str, str]
    _resident: dict[str, Number] = PrivateAttr(default_factory=dict)
    _resident_total: Number = PrivateAttr(default=np.nan)
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
        block: dict[Number, Number] = {}  # resident bytes of one instance of each block (ops repeated alike)
        for op in matrix:
            block[op.count] = block.get(op.count, 0.0) + op.weight_bytes + op.kv_read_bytes
        bound._resident = {op.name: block[op.count] for op in matrix}
        bound._resident_total = resident
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
    def achieved_basis(self) -> Basis | None:
        """``calibrated`` with an ``efficiency`` block (hwdse calibrate --spatial), else None."""
        return "calibrated" if self.efficiency is not None else None

    @property
    def power_W(self) -> Number:
        return (np.nan if self.chip_power_W is None else self.chip_power_W) * self._count()

    @property
    def throttle_curve(self) -> SharedPower:
        """The GPUs' supply curve (:class:`hwdse.hardware.power.SharedPower`): no spatial chip publishes one."""
        return load_shared_power()

    @property
    def static_power_W(self) -> Number | None:
        """Idle and busy floors of every chip as fractions of its power, as the GPUs with power measurements
        draw them (:class:`hwdse.hardware.power.SharedPower`); None without a chip power."""
        if self.chip_power_W is None:
            return None
        return load_shared_power().for_tdp(self.chip_power_W).running_W * self._count()

    @property
    def pe_area_mm2(self) -> Number:
        """PE arrays of one chip (a check on the die area: the rest is SRAM, fabric, I/O)."""
        return self.pe.area_mm2

    # -- timing ----------------------------------------------------------------------------
    def _shares(self) -> dict[str, Number]:
        """Per matrix operator: the share of a chip's cores (SRAM banks and PEs) its layer's region holds.

        Stationary mapping only (streaming operators use the whole chip): a block's resident bytes
        over one chip's, at most 1 (a block larger than a chip passes its chips in sequence).
        """
        if self.mapping == "streaming":
            return {}
        per_chip = self._resident_total / self._count()
        return {k: np.minimum(1.0, (r / self.tp) / per_chip) for k, r in self._resident.items()}

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        self._check_mode(mode)
        if not self._resident:
            raise HwdseError(f"arch {self.name}", None, "not sized for a workload: call for_workload(model, scenario)")
        chip = _Chip(self, self._shares(), is_decode_table(ops))
        return schedule_sharded(chip, self.interconnect, ops, self.tp, self.stages, self.microbatches, mode)

    def chip_schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        """Decode ``ops`` on one chip whose every core holds a slice of each (no sharding, no links).

        The kernel-level view calibration uses: a layer mapped onto the whole chip.
        """
        self._check_mode(mode)
        return _Chip(self, {}, True).schedule(ops, mode)

    def _check_mode(self, mode: Mode) -> None:
        if mode == "achieved" and self.efficiency is None:
            raise HwdseError(f"arch {self.name}", "efficiency", "achieved mode needs calibrated decode rates; "
                             "use mode 'roofline'")
        if mode not in ("roofline", "achieved"):
            raise HwdseError(f"arch {self.name}", "mode", f"must be roofline or achieved, got {mode!r}")


@dataclass(frozen=True)
class _Chip:
    """One chip timing tensor-parallel shards: operators on their regions in decode, the full chip in prefill."""

    spec: Spatial
    shares: Mapping[str, Number]
    decode: bool

    def schedule(self, ops: Sequence[Op], mode: Mode) -> list[Timing]:
        s, pe = self.spec, self.spec.pe
        eff = s.efficiency if mode == "achieved" and self.decode else None
        bw = s.sram_bandwidth_TBps * 1e12
        hz = pe.clock_GHz * 1e9
        fill = (pe.pe.rows + pe.pe.cols) / hz
        sram_J_per_B = load_memory("sram").energy_pJ_per_bit * 8e-12
        out = []
        for op in ops:
            region = self.shares.get(op.name, 1.0)
            share = region if self.decode else 1.0
            serial: dict[str, Number] = {}
            mac_J, op_bw = 0.0, bw
            if op.operands:
                wanted = operand_class(op.operands)
                native = pe.pe.native_class(wanted)
                cls, peak = native or f"{wanted}-unsupported", pe.peak_ops_per_s(wanted)
                compute = op.flops * np.inf if native is None else op.flops / (peak * share)
                mac_J = op.flops / 2 * pe.mac_energy_pJ(wanted) * 1e-12
                steps = 2 if op.name == "flash_attention" else 1
                if eff is None:
                    serial["array_fill"] = steps * fill
                    if s.fabric is not None:
                        serial["fabric"] = steps * s.fabric.cycles(pe.count * region) / hz
                else:
                    op_bw = bw * eff.sram_fraction
                    serial["overhead"] = steps * eff.op_cycles / hz
                    if eff.hop_cycles is not None and s.fabric is not None:
                        serial["fabric"] = steps * s.fabric.hops(pe.count * region) * eff.hop_cycles / hz
            else:
                cls, peak = "vector", pe.vector_ops_per_s
                compute = op.flops / peak
                share = 1.0
            out.append(Timing(op, "spatial", cls, compute, op.bytes / (op_bw * share), serial, peak_ops_per_s=peak,
                              bandwidth_Bps=op_bw, energy_J=mac_J + op.bytes * sram_J_per_B, core_share=1.0))
        return out
