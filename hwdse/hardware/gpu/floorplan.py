"""A GPU's floorplan: what a study's peak compute and memory bandwidth cost in area, power budget and money.

A catalog GPU's die area, power budget (``tdp_W``) and cost are those of the part at its datasheet
peaks. A ``floorplan`` block says how much of the die the tensor-core MAC arrays and the memory
PHYs + controllers take at those peaks (``at_TOPS``, ``at_GBps``, equal to the entry's own
``compute.peak_TOPS`` and memory bandwidth: the unmodified part keeps its datasheet figures), so a
study that overrides ``compute.peak_TOPS.*`` or ``memory.*`` pays for what it changes:

* ``area_mm2`` = ``die_area_mm2 + tensor_mm2 x (s - 1) + memory_phy_mm2 x (bandwidth / at_GBps - 1)``,
  mm^2, with ``s`` = the largest ``peak_TOPS[c] / at_TOPS[c]`` over the tensor classes ``c``: one MAC
  array runs every tensor class (Hopper and Blackwell run FP8 and FP4 on it at 2x and 4x the BF16
  rate), so it grows by the largest ratio any class asks for, and a class lowered alone keeps it.
  The PHYs and controllers scale with the bandwidth they carry (first order);
* ``power_W`` = ``tdp_W`` + the added MACs' power at peak + the added bandwidth's power, W, in the
  GPU's own energy model (:func:`hwdse.hardware.energy.gpu_energy_J` with its power model's
  ``compute_scale`` and ``memory_scale``): ``(s - 1) x at_TOPS[bf16]`` ops/s in BF16 (the array's
  peak draw, the same in every 16-bit or narrower class: energy.py halves the energy per op as the
  rate doubles) and ``bandwidth - at_GBps`` B/s from DRAM through L2 and L1. Negative deltas shrink
  the budget: a smaller design gets a smaller one;
* ``cost_usd``: the dies on the new area (:func:`hwdse.hardware.cost.device_usd`); bandwidth beyond
  what the stacks give at the technology's nominal pin rate places more stacks
  (:attr:`hwdse.hardware.memory.MemorySystem.stacks`), each with an interposer footprint.

Not charged: ``fp32`` (it runs on the SMs' FP32 units, as ``vector_TFLOPS``), and static power (the
measured floors of :mod:`hwdse.hardware.power` hold). A GPU without a floorplan keeps its catalog
area, TDP and cost whatever a study overrides.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
from pydantic import Field, model_validator

from hwdse._catalog import Spec
from hwdse._params import Number, quantity
from hwdse.hardware.energy import gpu_energy_J

__all__ = ["Floorplan", "POWER_CLASS", "UNCHARGED_CLASSES"]

POWER_CLASS = "bf16"
"""The class the added MACs' peak power is charged in (the dense BF16 datasheet figure)."""

UNCHARGED_CLASSES = ("fp32",)
"""Peak classes outside the tensor cores (the SMs' FP32 units): no floorplan area or power."""

_TOPS = quantity(gt=0, unit="10^12 ops/s")


class Floorplan(Spec):
    """Area of a GPU's tensor-core MAC arrays and memory PHYs + controllers at its datasheet peaks."""

    tensor_mm2: quantity(ge=0, unit="mm^2") = Field(description="tensor-core MAC arrays, all dies, at at_TOPS")
    at_TOPS: dict[str, _TOPS] = Field(description="dense peak per tensor class the arrays deliver, 10^12 ops/s")
    memory_phy_mm2: quantity(ge=0, unit="mm^2") = Field(description="memory PHYs + controllers, all dies, "
                                                                    "at at_GBps")
    at_GBps: quantity(gt=0, unit="GB/s") = Field(description="memory bandwidth the PHYs deliver")

    @model_validator(mode="after")
    def _classes(self) -> "Floorplan":
        if POWER_CLASS not in self.at_TOPS:
            raise ValueError(f"at_TOPS: must give the dense {POWER_CLASS} peak (the class added MACs are "
                             "charged power in)")
        for cls in UNCHARGED_CLASSES:
            if cls in self.at_TOPS:
                raise ValueError(f"at_TOPS.{cls}: runs outside the tensor cores; leave it out")
        return self

    def array_scale(self, peak_TOPS: dict[str, Number]) -> Number:
        """``s``: the MAC arrays' size over the datasheet part's (largest peak / reference ratio)."""
        return reduce(np.maximum, [peak_TOPS[c] / ref for c, ref in self.at_TOPS.items()])

    def extra_mm2(self, peak_TOPS: dict[str, Number], bandwidth_GBps: Number) -> Number:
        """Area added to the datasheet die (negative: removed), mm^2."""
        return (self.tensor_mm2 * (self.array_scale(peak_TOPS) - 1)
                + self.memory_phy_mm2 * (bandwidth_GBps / self.at_GBps - 1))

    def extra_W(self, peak_TOPS: dict[str, Number], bandwidth_GBps: Number, dram_pj_per_bit: Number | None,
                compute_scale: Number, memory_scale: Number) -> Number:
        """Power budget added to the TDP (negative: removed): the added MACs at peak and the added
        bandwidth, in the GPU's energy model, W."""
        ops_per_s = (self.array_scale(peak_TOPS) - 1) * self.at_TOPS[POWER_CLASS] * 1e12
        bytes_per_s = (bandwidth_GBps - self.at_GBps) * 1e9
        return gpu_energy_J(ops_per_s, bytes_per_s, POWER_CLASS, dram_pj_per_bit, compute_scale, memory_scale)[0]
