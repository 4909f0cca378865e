"""Manufacturing cost of a device: logic dies from wafer price and yield, memory by the GB, a 2.5D package.

``die_usd = wafer_usd / (dies_per_wafer x yield)`` with the classic gross-die count
``pi (d/2)^2 / A - pi d / sqrt(2 A)`` (d the wafer diameter, A the die area; the form LLMCompass
uses) and negative-binomial yield ``(1 + D0 A / alpha)^-alpha`` (Stapper; Poisson as alpha -> inf).
A device's package (:class:`Package`, catalog ``arch/packages/``) carries its dies and memory stacks
on a silicon interposer of ``interposer_area_factor x`` their area, costed as a die of the interposer
fab; the assembly adds ``integration_usd`` and fails with probability ``1 - assembly_yield``, losing
everything on it (known-good dies and stacks are bought before assembly). Device cost =
(dies + memory + interposer + integration) / assembly yield, in US$ (the cost to build, not a
price). Fabs (wafer price, defect density D0, clustering alpha per node) are ``arch/fabs/``
entries; every figure is sourced in its YAML (``validation/cost_sources.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from hwdse._catalog import Spec, load_in
from hwdse._params import Number, quantity

__all__ = ["Fab", "Package", "load_fab", "load_package", "dies_per_wafer", "die_yield", "die_usd", "package_usd",
           "device_usd", "known_fab", "known_package"]

WAFER_MM = 300.0


class Fab(Spec):
    """A logic (or interposer) process: wafer price and defect statistics."""

    name: str
    description: str = ""
    node_nm: quantity(gt=0, unit="nm")
    wafer_usd: quantity(gt=0, unit="USD") = Field(description="price of one 300 mm wafer")
    defect_density_per_cm2: quantity(ge=0, unit="1/cm^2") = Field(description="D0")
    clustering_alpha: quantity(gt=0) = Field(description="negative-binomial clustering parameter")
    sources: dict[str, str]


class Package(Spec):
    """A 2.5D package: interposer sizing and limit, assembly cost and yield."""

    name: str
    description: str = ""
    interposer_fab: str = Field(description="arch/fabs entry the interposer is made in")
    interposer_area_factor: quantity(ge=1) = Field(description="interposer area / area of what it carries")
    stack_footprint_mm2: quantity(gt=0, unit="mm^2") = Field(description="one memory stack's footprint")
    max_interposer_mm2: quantity(gt=0, unit="mm^2") = Field(description="largest interposer the process builds")
    integration_usd: quantity(ge=0, unit="USD") = Field(description="assembly and test per package")
    assembly_yield: quantity(gt=0, le=1) = Field(description="share of assemblies that work")
    sources: dict[str, str]

    def interposer_mm2(self, logic_mm2: Number, stacks: Number) -> Number:
        """Interposer area for ``logic_mm2`` of dies and ``stacks`` memory stacks."""
        return self.interposer_area_factor * (logic_mm2 + stacks * self.stack_footprint_mm2)


def load_fab(name: str) -> Fab:
    """A fab from ``arch/fabs/`` by name, or a YAML path."""
    return load_in("arch/fabs", "fab", name, Fab)


def load_package(name: str) -> Package:
    """A package from ``arch/packages/`` by name, or a YAML path."""
    return load_in("arch/packages", "package", name, Package)


def dies_per_wafer(area_mm2: Number, wafer_mm: float = WAFER_MM) -> Number:
    """Gross dies of ``area_mm2`` on a round wafer (edge loss by the perimeter term)."""
    return np.pi * (wafer_mm / 2) ** 2 / area_mm2 - np.pi * wafer_mm / np.sqrt(2 * area_mm2)


def die_yield(area_mm2: Number, fab: Fab) -> Number:
    """Share of good dies: negative binomial in the expected defects per die ``D0 x A``."""
    defects = fab.defect_density_per_cm2 * area_mm2 / 100
    return (1 + defects / fab.clustering_alpha) ** -fab.clustering_alpha


def die_usd(area_mm2: Number, fab: Fab) -> Number:
    """Cost of one good die of ``area_mm2`` in ``fab``, US$."""
    return fab.wafer_usd / (dies_per_wafer(area_mm2) * die_yield(area_mm2, fab))


def package_usd(die_mm2: Number, dies: Number, fab: Fab, stacks: Number, memory_usd: Number,
                package: Package) -> Number:
    """A device of ``dies`` logic dies of ``die_mm2`` each and ``stacks`` memory stacks costing
    ``memory_usd`` in all, assembled on ``package``'s interposer, US$."""
    interposer = die_usd(package.interposer_mm2(die_mm2 * dies, stacks), load_fab(package.interposer_fab))
    parts = dies * die_usd(die_mm2, fab) + memory_usd + interposer + package.integration_usd
    return parts / package.assembly_yield


def device_usd(logic_mm2: Number, dies: Number, fab: str | None, memory: Any, package: str | None) -> Number:
    """Cost of a device with ``logic_mm2`` of silicon in ``dies`` dies, a memory system (its
    ``cost_usd`` and placed ``stacks``) and a package (None: no interposer, no assembly loss), US$;
    NaN without a fab."""
    if fab is None:
        return float("nan")
    logic = load_fab(fab)
    if package is None:
        return dies * die_usd(logic_mm2 / dies, logic) + memory.cost_usd
    return package_usd(logic_mm2 / dies, dies, logic, memory.stacks, memory.cost_usd, load_package(package))


def known_fab(name: str | None) -> str | None:
    """Validator: ``name`` is an ``arch/fabs`` entry (or None)."""
    if name is not None:
        load_fab(name)
    return name


def known_package(name: str | None) -> str | None:
    """Validator: ``name`` is an ``arch/packages`` entry (or None)."""
    if name is not None:
        load_package(name)
    return name
