"""Memory technologies (catalog ``memory/``) and a device's memory system = technology x count."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from hwdse._catalog import Spec, load
from hwdse._params import Number, count, quantity

__all__ = ["MemoryTechnology", "MemorySystem", "load_memory"]

GiB = 2**30


class MemoryTechnology(Spec):
    """One memory device (a DRAM chip or an HBM stack) of a technology, at its nominal rate."""

    name: str
    description: str = ""
    kind: Literal["dram", "sram"] = "dram"
    bus_width_bits: count() = Field(description="data pins per device/stack")
    pin_rate_Gbps: quantity(gt=0, unit="Gbit/s per pin")
    capacity_GiB: quantity(gt=0, unit="GiB per device/stack")
    energy_pJ_per_bit: quantity(gt=0, unit="pJ/bit") | None = Field(None, description="device access energy")
    background_W: quantity(ge=0, unit="W per device/stack") | None = Field(
        None, description="standby and refresh power of one device/stack, whatever it reads (None: not modelled)")
    usd_per_GB: quantity(gt=0, unit="USD/GB") | None = Field(None, description="purchase price per 10^9 bytes")
    sources: dict[str, str]

    @property
    def bandwidth_GBps(self) -> Number:
        """Peak bandwidth of one device/stack in GB/s (10^9 B/s)."""
        return self.bus_width_bits * self.pin_rate_Gbps / 8


class MemorySystem(Spec):
    """``count`` devices/stacks of ``technology``; a product may run them below the nominal.

    Bandwidth is ``count x width x pin rate / 8`` and capacity ``count x stack capacity``, so both
    follow the stack count; ``pin_rate_Gbps`` and ``stack_capacity_GiB`` pin a product's figures
    (sourced in its catalog entry) and are dropped when an override changes the technology
    (:func:`hwdse.hardware.with_overrides`: each technology then runs at its own nominal).
    ``bandwidth_GBps`` (if given) overrides the derived bandwidth: a free-number sweep. Capacity stays
    ``count`` stacks' worth; up to the technology's nominal pin rate the same stacks run faster pins,
    and beyond it the bandwidth needs more stacks (``stacks``: the same capacity on more, lower stacks),
    each taking an interposer footprint (:mod:`hwdse.hardware.cost`) and, on a PE accelerator, a PHY
    and a die-edge site.
    """

    technology: str
    count: count()
    pin_rate_Gbps: quantity(gt=0, unit="Gbit/s per pin") | None = None
    stack_capacity_GiB: quantity(gt=0, unit="GiB") | None = Field(
        None, description="usable capacity per device/stack (a product's pin; default: the technology's)")
    bandwidth_GBps: quantity(gt=0, unit="GB/s") | None = None

    @field_validator("technology")
    @classmethod
    def _known(cls, name: str) -> str:
        load_memory(name)
        return name

    @cached_property
    def tech(self) -> MemoryTechnology:
        return load_memory(self.technology)

    @property
    def bandwidth_Bps(self) -> Number:
        """Peak bandwidth in B/s."""
        if self.bandwidth_GBps is not None:
            return self.bandwidth_GBps * 1e9
        rate = self.pin_rate_Gbps if self.pin_rate_Gbps is not None else self.tech.pin_rate_Gbps
        return self.count * self.tech.bus_width_bits * rate / 8 * 1e9

    @property
    def stacks(self) -> Number:
        """Devices/stacks the system places: ``count``, or as many as a free ``bandwidth_GBps`` needs at
        the technology's nominal per-stack bandwidth where that is more."""
        if self.bandwidth_GBps is None:
            return self.count
        needed = np.ceil(self.bandwidth_GBps / self.tech.bandwidth_GBps * (1 - 1e-12))  # rounding-safe ceiling
        return np.maximum(self.count, needed)

    @property
    def capacity_bytes(self) -> Number:
        per_stack = self.stack_capacity_GiB if self.stack_capacity_GiB is not None else self.tech.capacity_GiB
        return self.count * per_stack * GiB

    @property
    def energy_pJ_per_bit(self) -> Number | None:
        return self.tech.energy_pJ_per_bit

    @property
    def cost_usd(self) -> Number:
        """Purchase price of the capacity (NaN where the technology has no price)."""
        price = self.tech.usd_per_GB
        return float("nan") if price is None else self.capacity_bytes / 1e9 * price


def load_memory(name_or_path: str) -> MemoryTechnology:
    """A memory technology from the ``memory/`` catalog (or a YAML path)."""
    return load("memory", name_or_path, MemoryTechnology)
