"""PE-based accelerators (kind ``accelerator``): PE type x count x clock + a memory system.

Peak compute, area and power all derive from searchable fields (dotted paths):
``pe.type`` (categorical, ``arch/pe/``), ``pe.count``, ``pe.clock_GHz``, ``memory.*``,
``sram_MiB``, ``die_mm2``. Timing is the roofline: matrix ops at the PE array peak of their operand class
(upcast or infeasible as the PE type says), vector ops at the PEs' vector rate, all bytes over
the off-chip memory system.

* ``parts_mm2`` (the active silicon) = PE area x count (MAC array + local buffers,
  :mod:`hwdse.hardware.pe`) + ``sram_MiB x sram_mm2_per_MiB`` + ``phy_mm2_per_device x
  memory.stacks`` + ``other_area_mm2``, in mm^2;
* ``area_mm2`` = ``max(parts_mm2, edge_mm2, die_mm2)``: the die is padded (I/O ring, filler) to
  the least area whose long sides host its memory stacks (``edge_mm2``: ``ceil(stacks / 2)`` per
  side, each ``stack_edge_mm`` long, the last one overhanging a corner by at most half its width),
  and to ``die_mm2`` where that optional drawn area is larger. Padding costs wafer area and counts
  for the reticle and the interposer, but leaks nothing: a 300-PE die padded to ~595 mm^2 hosts
  six stacks without more PEs;
* ``static_power_W`` = ``leakage_W_per_mm2 x parts_mm2 x V / voltage_V`` (leakage and uncore
  grow with active silicon, leakage with the supply: :mod:`hwdse.hardware.power`); the evaluator
  charges it for the whole wall time;
* ``power_W`` = static + MAC power at peak (MACs/s x pJ/MAC in the PE's most power-hungry class)
  + memory power at peak bandwidth (B/s x 8 x pJ/bit);
* energy per op = MACs x pJ/MAC of the class it runs in at the supply of the clock (the PE
  type's V(f) curve) + bytes x 8 x memory pJ/bit (vector ops and SRAM traffic are not counted);
* ``cost_usd``: die of ``area_mm2`` (wafer price and yield of ``fab``), memory by the GB,
  ``package`` (:mod:`hwdse.hardware.cost`);
* ``reachable``: the clock is within the PE node's V(f) curve, the die within the reticle
  (``reticle_mm2``) and the memory stacks within the die's beachfront: a die of ``die_aspect``
  (long / short side) places ``memory.stacks`` along its two long sides, ``round(long side / stack_edge_mm)``
  per side (a stack may overhang a corner by up to half its width, as the H100's three per
  32 mm side do), and the package's interposer within its limit; otherwise the design is
  infeasible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from hwdse._catalog import Spec
from hwdse._errors import HwdseError
from hwdse._params import Number, quantity
from hwdse.hardware._base import Basis, Mode, Timing, operand_class
from hwdse.hardware.cost import device_usd, known_fab, known_package, load_package
from hwdse.hardware.gpu.device import Link
from hwdse.hardware.memory import MemorySystem
from hwdse.hardware.pe import PEArray
from hwdse.workload.ops import Op

__all__ = ["Accelerator"]

MiB = 2**20


class Accelerator(Spec):
    """A PE-array accelerator with off-chip memory, global SRAM and an area/power model."""

    kind: Literal["accelerator"] = "accelerator"
    name: str
    description: str = ""
    pe: PEArray
    memory: MemorySystem
    sram_MiB: quantity(ge=0, unit="MiB") = Field(description="global on-chip SRAM (L2 / scratchpad)")
    sram_mm2_per_MiB: quantity(gt=0, unit="mm^2/MiB")
    phy_mm2_per_device: quantity(ge=0, unit="mm^2") = Field(description="memory PHY + controller per stack/device")
    other_area_mm2: quantity(ge=0, unit="mm^2") = Field(0.0, description="NoC, I/O, control")
    die_mm2: quantity(gt=0, unit="mm^2") | None = Field(
        None, description="drawn die area, padding included (None or below the parts: the sum of the parts)")
    leakage_W_per_mm2: quantity(ge=0, unit="W/mm^2") = Field(
        description="static power per mm^2 of die at the PE type's nominal voltage")
    reticle_mm2: quantity(gt=0, unit="mm^2") = Field(858.0, description="largest die one exposure prints")
    die_aspect: quantity(ge=1) = Field(33 / 26, description="long / short side of the die")
    stack_edge_mm: quantity(gt=0, unit="mm") = Field(11.0, description="die edge one memory stack occupies")
    fab: str | None = Field(None, description="arch/fabs entry of the die (None: no cost model)")
    package: str | None = Field(None, description="arch/packages entry (None: die and memory on a board)")
    scale_up: Link | None = None
    sources: dict[str, str]

    _fab = field_validator("fab")(known_fab)
    _package = field_validator("package")(known_package)

    @property
    def capacity_bytes(self) -> Number:
        return self.memory.capacity_bytes

    @property
    def bandwidth_Bps(self) -> Number:
        return self.memory.bandwidth_Bps

    @property
    def onchip_bytes(self) -> float:
        """SRAM one PE can use (its local buffer)."""
        return float(self.pe.pe.local_buffer_KiB) * 1024

    def peak_ops_per_s(self, cls: str) -> Number:
        return self.pe.peak_ops_per_s(cls)

    @property
    def parts_mm2(self) -> Number:
        """Active silicon: PE array, SRAM, memory PHYs and the rest of the uncore, mm^2."""
        return (self.pe.area_mm2 + self.sram_MiB * self.sram_mm2_per_MiB
                + self.phy_mm2_per_device * self.memory.stacks + self.other_area_mm2)

    @property
    def edge_mm2(self) -> Number:
        """Least die area whose two long sides host ``memory.stacks`` stacks, mm^2."""
        per_side = np.ceil(self.memory.stacks / 2)
        return (np.maximum(per_side - 0.5, 0.0) * self.stack_edge_mm) ** 2 / self.die_aspect

    @property
    def area_mm2(self) -> Number:
        """The die: its parts, padded to host its stacks and to ``die_mm2`` where those are larger, mm^2."""
        area = np.maximum(self.parts_mm2, self.edge_mm2)
        return area if self.die_mm2 is None else np.maximum(area, self.die_mm2)

    @property
    def achieved_basis(self) -> Basis | None:
        """None: a PE accelerator has no measured kernels to calibrate on."""
        return None

    @property
    def static_power_W(self) -> Number:
        """Leakage + uncore of the active silicon (not the padding) at the array's supply, in W."""
        return self.leakage_W_per_mm2 * self.parts_mm2 * self.pe.voltage_V / self.pe.pe.voltage_V

    @property
    def max_stacks(self) -> Number:
        """Memory stacks the die's two long sides can host (beachfront limit)."""
        long_side = np.sqrt(self.area_mm2 * self.die_aspect)
        return 2 * np.floor(long_side / self.stack_edge_mm + 0.5)

    @property
    def cost_usd(self) -> Number:
        """Cost to build: die, memory and package (:mod:`hwdse.hardware.cost`), US$."""
        return device_usd(self.area_mm2, 1, self.fab, self.memory, self.package)

    @property
    def reachable(self) -> Number:
        """Whether the design can be built: clock within the V(f) curve, die within the reticle,
        memory stacks within the beachfront, interposer within the package's limit."""
        ok = self.pe.clock_reachable & (self.area_mm2 <= self.reticle_mm2) & (self.memory.stacks <= self.max_stacks)
        if self.package is not None:
            package = load_package(self.package)
            ok = ok & (package.interposer_mm2(self.area_mm2, self.memory.stacks) <= package.max_interposer_mm2)
        return ok

    @property
    def power_W(self) -> Number:
        """Peak power: static + every MAC busy in the hungriest class + memory at peak bandwidth, W."""
        mem_pj = self.memory.energy_pJ_per_bit
        memory_W = self.bandwidth_Bps * 8 * mem_pj * 1e-12 if mem_pj is not None else np.nan
        return self.static_power_W + self.pe.max_power_W() + memory_W

    def supports(self, formats: Sequence[str]) -> bool:
        """Whether the PE can multiply these operand formats (natively or by upcasting)."""
        return self.pe.pe.native_class(operand_class(formats)) is not None

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        if mode != "roofline":
            raise HwdseError(f"arch {self.name}", "mode", f"{mode!r} needs calibrated efficiencies; use 'roofline'")
        bw = self.bandwidth_Bps
        mem_pj = self.memory.energy_pJ_per_bit
        mem_J_per_B = mem_pj * 8e-12 if mem_pj is not None else np.nan
        pe = self.pe
        timings = []
        for op in ops:
            mac_J, compute = 0.0, None
            if op.operands:
                wanted = operand_class(op.operands)
                native = pe.pe.native_class(wanted)
                cls = native or f"{wanted}-unsupported"
                peak = pe.peak_ops_per_s(wanted)
                mac_J = op.flops / 2 * pe.mac_energy_pJ(wanted) * 1e-12
                if native is None:  # no datapath and upcasting not allowed: the design is infeasible
                    compute = op.flops * np.inf
            else:
                cls, peak = "vector", pe.vector_ops_per_s
            compute = op.flops / peak if compute is None else compute
            energy = mac_J + op.bytes * mem_J_per_B
            with np.errstate(divide="ignore", invalid="ignore"):
                core = np.where(energy > 0, mac_J / energy, 0.0)
            timings.append(Timing(op, "pe", cls, compute, op.bytes / bw, peak_ops_per_s=peak, bandwidth_Bps=bw,
                                  energy_J=energy, core_share=core))
        return timings
