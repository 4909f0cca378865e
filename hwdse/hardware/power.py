"""Power beyond the per-operator (dynamic) energy: supply voltage against clock, static power.

A device kind that models it answers ``static_power_W``: the power it draws whatever it computes
(leakage, clock tree and uncore at speed, memory refresh and PHYs, board losses), whole system, in
W. The evaluator charges ``static_power_W x wall time`` on top of the operators' dynamic energy.
The PE accelerator derives it from leakage per mm^2; a GPU with a :class:`GPUPower` block adds its
measured idle board power and a calibrated floor while kernels run, and a GPU without one takes
:class:`SharedPower`'s block: floors in proportion to its TDP and the energy factors the measured
GPUs share (systems of GPUs sum their members, plus ``host_W`` per host server where a study sets it:
0 by default, the basis of the GPU power measurements). PIM devices charge their DRAM's background and
refresh power and, packaged as cards, their hosts'; spatial chips the GPUs' floors as fractions of
their chip power. :class:`SharedPower` also holds the supply curve a power budget throttles along
(:mod:`hwdse.perf.power_cap`).

A GPU's per-operator energies (``hwdse.hardware.energy``: Horowitz MACs, DRAM and on-chip pJ/bit)
leave out what a real SM spends per instruction (fetch, scheduling, register files, operand
networks) and per byte (NoC, memory controllers, PHYs); ``GPUPower.compute_scale`` and
``memory_scale`` are the measured factors between them and the board's power above its floors
(``hwdse calibrate --power`` on ``validation/gpu_serving_power.csv``).

A logic node's supply follows the clock: :class:`VFCurve` is the piecewise-linear V(f) of a node
(points of a DVFS table). Dynamic energy per operation scales as ``C V^2`` (so per-op energy rises
with the clock through V) and leakage power as ``V`` (first order, leakage current held constant:
the McPAT convention, Li et al., MICRO 2009). A clock above the curve's last point cannot be
reached at the node's maximum voltage: the design is infeasible.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from pydantic import Field, model_validator

from hwdse._catalog import Spec, load_in
from hwdse._params import Number, quantity

__all__ = ["VFCurve", "GPUPower", "SharedPower", "load_shared_power"]


class VFCurve(Spec):
    """Supply voltage (V) against clock (GHz) of one logic node, linear between the points."""

    clock_GHz: tuple[quantity(gt=0, unit="GHz"), ...] = Field(description="increasing clocks")
    voltage_V: tuple[quantity(gt=0, unit="V"), ...] = Field(description="supply at each clock")

    @model_validator(mode="after")
    def _monotone(self) -> "VFCurve":
        if len(self.clock_GHz) < 2 or len(self.clock_GHz) != len(self.voltage_V):
            raise ValueError("clock_GHz and voltage_V: need two or more points, as many voltages as clocks")
        if any(b <= a for a, b in zip(self.clock_GHz, self.clock_GHz[1:])):
            raise ValueError("clock_GHz: must increase")
        if any(b < a for a, b in zip(self.voltage_V, self.voltage_V[1:])):
            raise ValueError("voltage_V: must not decrease with the clock")
        return self

    @property
    def max_clock_GHz(self) -> float:
        return self.clock_GHz[-1]

    def voltage(self, clock_GHz: Number) -> Number:
        """Supply at ``clock_GHz``: the lowest point's voltage below it, linear between points (and
        extrapolated past the last one: check ``clock <= max_clock_GHz`` for feasibility)."""
        f, v = self.clock_GHz, self.voltage_V
        slopes = [(v[i + 1] - v[i]) / (f[i + 1] - f[i]) for i in range(len(f) - 1)]
        out = v[0] + slopes[0] * np.maximum(clock_GHz - f[0], 0)
        for i in range(1, len(slopes)):  # hinge terms: each point changes the slope
            out = out + (slopes[i] - slopes[i - 1]) * np.maximum(clock_GHz - f[i], 0)
        return out


class GPUPower(Spec):
    """A GPU board's power beyond its operators' modelled energy, in W (per GPU)."""

    idle_W: quantity(ge=0, unit="W") = Field(description="board power with a model resident and no kernel running "
                                                         "(measured: clocks stay up in P0)")
    busy_W: quantity(ge=0, unit="W") = Field(0.0, description="added while kernels run, whatever they compute "
                                                              "(calibrated)")
    compute_scale: quantity(ge=0, unit="1") = Field(1.0, description="measured board energy per modelled MAC "
                                                                     "energy (calibrated)")
    memory_scale: quantity(ge=0, unit="1") = Field(1.0, description="measured board energy per modelled byte-moving "
                                                                    "energy, DRAM to SM (calibrated)")
    held_out_p90: quantity(ge=0, unit="1") | None = Field(None, description="p90 |relative error| of board power "
                                                                            "while serving, each run left out of the fit")

    @property
    def running_W(self) -> Number:
        """Static power while the GPU executes: idle plus the busy floor."""
        return self.idle_W + self.busy_W


class SharedPower(Spec):
    """The power block of a GPU without power measurements: idle and busy floors as fractions of its TDP
    and the energy factors, from the GPUs with measurements (``arch/efficiency/power.yaml``); and the
    supply curve every GPU and spatial chip throttles along under its power budget."""

    name: str = "power"
    source: str
    idle_fraction_of_tdp: quantity(ge=0, le=1, unit="1")
    busy_fraction_of_tdp: quantity(ge=0, le=1, unit="1")
    compute_scale: quantity(ge=0, unit="1")
    memory_scale: quantity(ge=0, unit="1")
    held_out: dict[str, float] = Field(default_factory=dict, description="check -> relative error of a GPU "
                                                                          "predicted without its own data")
    board_p90: quantity(ge=0, unit="1") = Field(description="p90 |relative error| of the measured GPUs' serving board "
                                                            "power predicted with the others' fractions of TDP")
    vf: VFCurve = Field(description="supply against clock of the logic node a budget throttles along")
    boost_GHz: quantity(gt=0, unit="GHz") = Field(description="the point of ``vf`` a part's rated clock sits at")

    @model_validator(mode="after")
    def _boost_on_curve(self) -> "SharedPower":
        if not self.vf.clock_GHz[0] < self.boost_GHz <= self.vf.max_clock_GHz:
            raise ValueError("boost_GHz: must lie within vf's clocks, above its lowest point")
        return self

    @property
    def min_clock_fraction(self) -> float:
        """The lowest clock a budget throttles to, as a fraction of the rated clock (the curve's floor)."""
        return self.vf.clock_GHz[0] / self.boost_GHz

    def voltage_fraction(self, clock_fraction: Number) -> Number:
        """Supply at ``clock_fraction`` of the rated clock over the supply at the rated clock."""
        return self.vf.voltage(clock_fraction * self.boost_GHz) / self.vf.voltage(self.boost_GHz)

    def for_tdp(self, tdp_W: Number) -> GPUPower:
        """The block a GPU of ``tdp_W`` gets."""
        return GPUPower.model_construct(idle_W=self.idle_fraction_of_tdp * tdp_W,
                                        busy_W=self.busy_fraction_of_tdp * tdp_W,
                                        compute_scale=self.compute_scale, memory_scale=self.memory_scale,
                                        held_out_p90=self.board_p90)


@cache
def load_shared_power() -> SharedPower:
    """``arch/efficiency/power.yaml``."""
    return load_in("arch/efficiency", "shared efficiency", "power", SharedPower)
