"""GPU-class devices: tensor-core peaks per arithmetic class, an off-chip memory system.

``area_mm2`` (mm^2), ``power_W`` (the power budget, W) and ``cost_usd`` (US$) are the catalog part's
(``die_area_mm2``, ``tdp_W``, :mod:`hwdse.hardware.cost`); with a ``floorplan`` block
(:mod:`hwdse.hardware.gpu.floorplan`) they follow overridden peaks and memory bandwidth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from hwdse._catalog import Spec
from hwdse._errors import HwdseError
from hwdse._params import Number, count, quantity
from hwdse.hardware._base import COMPUTE_CLASSES, Basis, Mode, Timing, upcast
from hwdse.hardware.cost import device_usd, known_fab, known_package
from hwdse.hardware.dequant import BlockScaled, gpu_plan
from hwdse.hardware.energy import gpu_op_energy_J
from hwdse.hardware.gpu.efficiency import GPUEfficiency, achieved_timings
from hwdse.hardware.gpu.floorplan import UNCHARGED_CLASSES, Floorplan
from hwdse.hardware.gpu.kernel_table import known_kernel_table
from hwdse.hardware.gpu.transfer import load_transfer, transferred_efficiency
from hwdse.hardware.memory import MemorySystem
from hwdse.hardware.power import GPUPower, SharedPower, load_shared_power
from hwdse.workload.ops import Op

__all__ = ["GPU", "Compute", "OnChip", "Link"]


_TOPS = quantity(gt=0, unit="10^12 ops/s")


class Compute(Spec):
    """Dense (non-sparse) peaks. ``peak_TOPS`` is keyed by arithmetic class (see COMPUTE_CLASSES)."""

    units: count() = Field(description="streaming multiprocessors / compute units")
    clock_GHz: quantity(gt=0, unit="GHz")
    peak_TOPS: dict[str, _TOPS] = Field(description="matrix (tensor-core) peak per class, 10^12 ops/s")
    vector_TFLOPS: _TOPS = Field(description="non-matrix FP32 peak, used by elementwise operators")
    block_scaled: BlockScaled = Field(default=(), description="classes whose MMA applies MX/NVFP4 block scales")
    dequant_fused: bool = Field(default=True, description="operand dequantization fused into the matmul kernel")

    @model_validator(mode="after")
    def _known_classes(self) -> "Compute":
        unknown = sorted(set(self.peak_TOPS) - set(COMPUTE_CLASSES))
        if unknown:
            raise ValueError(f"peak_TOPS: unknown arithmetic class {unknown[0]!r}; "
                             f"expected one of {', '.join(COMPUTE_CLASSES)}")
        return self


class OnChip(Spec):
    sram_per_unit_KiB: quantity(gt=0, unit="KiB") = Field(description="shared memory + L1 per compute unit")
    l2_MiB: quantity(gt=0, unit="MiB")


class Link(Spec):
    name: str
    bandwidth_GBps: quantity(gt=0, unit="GB/s") = Field(description="per direction")
    latency_us: quantity(ge=0, unit="us") = 0.0


class GPU(Spec):
    """A GPU: tensor-core peaks, vector peak, off-chip memory, on-chip SRAM, links, TDP."""

    kind: Literal["gpu"] = "gpu"
    name: str
    description: str = ""
    compute: Compute
    memory: MemorySystem
    onchip: OnChip
    scale_up: Link | None = None
    host_link: Link | None = None
    tdp_W: quantity(gt=0, unit="W")
    die_area_mm2: quantity(gt=0, unit="mm^2") | None = Field(None, description="logic silicon, all dies")
    dies: count() = Field(1, description="logic dies sharing die_area_mm2")
    floorplan: Floorplan | None = Field(None, description="tensor-core and memory-PHY area at the datasheet peaks "
                                                          "(None: area, power budget and cost stay the catalog's)")
    fab: str | None = Field(None, description="arch/fabs entry of the logic dies (None: no cost model)")
    package: str | None = Field(None, description="arch/packages entry (None: dies and memory on a board)")
    efficiency: GPUEfficiency | None = Field(None, description="achieved-mode parameters (hwdse calibrate)")
    power: GPUPower | None = Field(None, description="idle and running board power (None: dynamic energy only)")
    kernels: str | None = Field(None, description="arch/kernels table of the production kernels that run each "
                                                   "(weights, activations) pair and KV format, sources per entry "
                                                   "(hwdse.hardware.gpu.kernel_table; None: unrecorded)")
    sources: dict[str, str]

    _fab = field_validator("fab")(known_fab)
    _package = field_validator("package")(known_package)
    _kernels = field_validator("kernels")(known_kernel_table)

    @field_validator("floorplan")
    @classmethod
    def _floorplan_classes(cls, plan: Floorplan | None, info: ValidationInfo) -> Floorplan | None:
        """Every tensor class has a reference peak and every reference a class (fields validated above)."""
        if plan is None or "compute" not in info.data:
            return plan
        peaks, refs = set(info.data["compute"].peak_TOPS), set(plan.at_TOPS)
        extra, unpriced = sorted(refs - peaks), sorted(peaks - refs - set(UNCHARGED_CLASSES))
        if extra:
            raise ValueError(f"at_TOPS.{extra[0]}: no compute.peak_TOPS.{extra[0]} to be the reference of, got "
                             f"peak classes {', '.join(sorted(peaks))}")
        if unpriced:
            raise ValueError(f"at_TOPS: no reference for compute.peak_TOPS.{unpriced[0]} (its tensor area could "
                             f"not be charged; set floorplan.at_TOPS.{unpriced[0]} too), got {', '.join(sorted(refs))}")
        return plan

    @property
    def area_mm2(self) -> Number:
        """Silicon area, all dies, mm^2: the catalog's, plus the floorplan's tensor and PHY area for
        overridden peaks and bandwidth (NaN when the catalog has none)."""
        if self.die_area_mm2 is None:
            return float("nan")
        if self.floorplan is None:
            return self.die_area_mm2
        return self.die_area_mm2 + self.floorplan.extra_mm2(self.compute.peak_TOPS, self.bandwidth_Bps / 1e9)

    @property
    def achieved_basis(self) -> Basis | None:
        """``calibrated`` with an ``efficiency`` block (hwdse calibrate), else ``transferred``."""
        return "calibrated" if self.efficiency is not None else "transferred"

    def error_band(self, family: str) -> tuple[float, float] | None:
        """Median and p90 |relative error| of achieved kernel times of ``family`` (gemm, prefill_attention,
        decode_attention, vector, all_reduce) on held-out rows: this GPU's own where it has data, else the
        leave-one-device-out error of the transferred parameters; None where neither was measured."""
        own = self.efficiency.held_out.get(family) if self.efficiency is not None else None
        return own if own is not None else load_transfer().held_out.get(family)

    def achieved_efficiency(self) -> GPUEfficiency:
        """Its own ``efficiency`` block, else the one transferred from the calibrated GPUs."""
        return self.efficiency if self.efficiency is not None else transferred_efficiency(self, load_transfer())

    @property
    def power_W(self) -> Number:
        """Power budget of the device, W: its TDP, plus the floorplan's added MACs and bandwidth at peak."""
        if self.floorplan is None:
            return self.tdp_W
        model = self.power_model
        return self.tdp_W + self.floorplan.extra_W(self.compute.peak_TOPS, self.bandwidth_Bps / 1e9,
                                                   self.memory.energy_pJ_per_bit, model.compute_scale,
                                                   model.memory_scale)

    @property
    def cost_usd(self) -> Number:
        """Cost to build, US$: dies of ``area_mm2``, memory, package (hwdse.hardware.cost; NaN without a fab
        or die area)."""
        return device_usd(self.area_mm2, self.dies, self.fab, self.memory, self.package)

    @property
    def power_band(self) -> float | None:
        """p90 relative error of its predicted board power: its own fit's, else the shared fractions'."""
        return self.power_model.held_out_p90

    @property
    def throttle_curve(self) -> SharedPower:
        """The supply curve its clock throttles along under ``power_W`` (:mod:`hwdse.perf.power_cap`)."""
        return load_shared_power()

    @property
    def power_model(self) -> GPUPower:
        """Its own ``power`` block, else the one shared by the GPUs with power measurements."""
        return self.power if self.power is not None else load_shared_power().for_tdp(self.tdp_W)

    @property
    def static_power_W(self) -> Number:
        """Board power while running, whatever the kernels compute."""
        return self.power_model.running_W

    @property
    def capacity_bytes(self) -> Number:
        return self.memory.capacity_bytes

    @property
    def bandwidth_Bps(self) -> Number:
        return self.memory.bandwidth_Bps

    @property
    def onchip_bytes(self) -> float:
        return float(self.onchip.sram_per_unit_KiB) * 1024

    def native_class(self, wanted: str) -> str:
        """The class an operand pair of class ``wanted`` actually runs in (upcast if not native)."""
        cls = upcast(wanted, self.compute.peak_TOPS)
        if cls is None:
            raise HwdseError(f"arch {self.name}", "compute.peak_TOPS", f"no datapath for {wanted} or any wider class")
        return cls

    def peak_ops_per_s(self, cls: str) -> Number:
        return self.compute.peak_TOPS[self.native_class(cls)] * 1e12

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        if mode == "achieved":  # calibrated (or transferred) efficiencies replace the roofline's time terms
            gpu = self if self.efficiency is not None else self.model_copy(update={"efficiency": self.achieved_efficiency()})
            return achieved_timings(gpu, self.schedule(ops, "roofline"))
        if mode != "roofline":
            raise HwdseError(f"arch {self.name}", "mode", f"must be 'roofline' or 'achieved', got {mode!r}")
        bw = self.bandwidth_Bps
        scales = (self.power_model.compute_scale, self.power_model.memory_scale)
        timings = []
        for op in ops:
            dq = gpu_plan(op, self)  # hwdse.hardware.dequant: class the op runs in, operand conversion cost
            if op.operands:
                cls = dq.compute_class
                peak = self.compute.peak_TOPS[cls] * 1e12
            else:
                cls, peak = "vector", self.compute.vector_TFLOPS * 1e12
            energy, core = gpu_op_energy_J(op, cls, self.memory.energy_pJ_per_bit, *scales)  # hwdse.hardware.energy
            timings.append(Timing(op, "gpu", cls, op.flops / peak + dq.compute_s, op.bytes / bw + dq.memory_s,
                                  peak_ops_per_s=peak, bandwidth_Bps=bw,
                                  energy_J=energy, core_share=core))
        return timings
