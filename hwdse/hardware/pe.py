"""Processing elements (catalog ``arch/pe/``): a MAC array, its formats, its area and energy.

A PE type is a ``rows x cols`` array of MAC cells (``cols = 1`` for a vector of lanes). Each
supported arithmetic class (see ``COMPUTE_CLASSES``) runs ``rate[class]`` MACs per cell per
cycle (an FP8 mode of a BF16 cell typically 2). Area and energy per MAC come from the format
cost model :func:`hwdse.formats.mac_cost` (45 nm, Horowitz ISSCC 2014 primitives) for the
format ``cost_formats[class]`` names, scaled to the PE's node:

* area x ``(node_nm / 45)^2`` (assumption: ideal area scaling of logic);
* energy x ``(node_nm / 45) * (V / 0.9)^2`` (assumption: C ~ feature size, E = C V^2; the 45 nm
  figures are at 0.9 V). ``V`` is the supply at the array's clock when the type has a V(f) curve
  (``vf``, :class:`hwdse.hardware.power.VFCurve`), else ``voltage_V`` at every clock.

The array is one reconfigurable datapath sized for its costliest mode (narrow modes split the
wide multipliers, as in Bit Fusion, Sharma et al. ISCA 2018): array area = max over classes of
``rows x cols x rate x MAC area``; the local buffer adds ``local_buffer_KiB`` at the node's SRAM
density. A class the PE lacks either runs in the next wider class it has (``unsupported:
upcast``, the GPU upcast chain, at that class's rate and energy) or makes the design infeasible
(``unsupported: infeasible``: its ops take infinite time).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwdse._catalog import Spec, catalog_dir, read, validate
from hwdse._errors import HwdseError
from hwdse._params import Number, count, quantity
from hwdse.formats import get, mac_cost
from hwdse.hardware._base import COMPUTE_CLASSES, upcast
from hwdse.hardware.power import VFCurve

__all__ = ["PEType", "PEArray", "load_pe", "pe_names", "DEFAULT_COST_FORMAT"]

# The catalog format whose MAC cost stands for a class when a PE entry names none (tf32 has an
# 11-bit significand like fp16, so its multiplier is fp16-sized; int2 is costed as int4).
DEFAULT_COST_FORMAT = {"fp32": "fp32", "tf32": "fp16", "bf16": "bf16", "fp16": "fp16", "fp8": "fp8-e4m3",
                       "int8": "int8", "fp6": "fp6-e2m3", "fp4": "fp4-e2m1", "int4": "int4", "int2": "int4"}
_REF_NODE_NM, _REF_VOLTAGE_V = 45.0, 0.9


class PEType(Spec):
    """One PE type (a MAC array with a local buffer); catalog ``arch/pe/<name>.yaml``."""

    name: str
    description: str = ""
    rows: count() = Field(description="MAC cells per column")
    cols: count() = Field(1, description="MAC cells per row (1: a vector of lanes)")
    rate: dict[str, quantity(gt=0, unit="MAC/cell/cycle")] = Field(description="MACs per cell per cycle, per class")
    cost_formats: dict[str, str] = Field({}, description="format whose MAC cost a class uses (default per class)")
    vector_ops_per_cycle: quantity(ge=0, unit="op/cycle") = Field(description="non-matrix (elementwise) ops")
    local_buffer_KiB: quantity(ge=0, unit="KiB") = 0.0
    sram_mm2_per_MiB: quantity(gt=0, unit="mm^2/MiB") = Field(description="SRAM density at node_nm")
    node_nm: quantity(gt=0, unit="nm")
    voltage_V: quantity(gt=0, unit="V") = Field(description="nominal supply (without ``vf``: at every clock)")
    vf: VFCurve | None = Field(None, description="supply against clock at the node (DVFS table)")
    unsupported: Literal["upcast", "infeasible"] = "upcast"
    sources: dict[str, str]

    @model_validator(mode="after")
    def _known(self) -> "PEType":
        for cls in list(self.rate) + list(self.cost_formats):
            if cls not in COMPUTE_CLASSES:
                raise ValueError(f"rate: unknown arithmetic class {cls!r}; expected one of {', '.join(COMPUTE_CLASSES)}")
        for fmt in self.cost_formats.values():
            get(fmt)
        if not self.rate:
            raise ValueError("rate: needs at least one arithmetic class")
        return self

    def native_class(self, wanted: str) -> str | None:
        """The class ``wanted`` runs in here: itself, a wider one (upcast), or None (infeasible)."""
        if wanted in self.rate:
            return wanted
        return None if self.unsupported == "infeasible" else upcast(wanted, self.rate)

    def macs_per_cycle(self, cls: str) -> Number:
        """MACs per cycle of the whole array in the class ``cls`` runs in (0 if infeasible)."""
        native = self.native_class(cls)
        return 0.0 if native is None else self.rows * self.cols * self.rate[native]

    def mac_energy_pJ(self, cls: str, voltage_V: Number | None = None) -> Number:
        """Energy of one MAC in the class ``cls`` runs in, at the node and ``voltage_V`` (default
        the nominal supply), in pJ (NaN if infeasible)."""
        native = self.native_class(cls)
        if native is None:
            return np.nan
        fmt = self.cost_formats.get(native, DEFAULT_COST_FORMAT[native])
        volts = self.voltage_V if voltage_V is None else voltage_V
        scale = (self.node_nm / _REF_NODE_NM) * (volts / _REF_VOLTAGE_V) ** 2
        return mac_cost(fmt).energy_pJ * scale

    @property
    def array_area_mm2(self) -> Number:
        """MAC array area at the node: the costliest mode's MACs per cycle x MAC area."""
        scale = (self.node_nm / _REF_NODE_NM) ** 2 * 1e-6
        areas = [self.rows * self.cols * r * mac_cost(self.cost_formats.get(c, DEFAULT_COST_FORMAT[c])).area_um2
                 for c, r in self.rate.items()]
        return _max(areas) * scale

    @property
    def area_mm2(self) -> Number:
        """MAC array + local buffer."""
        return self.array_area_mm2 + self.local_buffer_KiB / 1024 * self.sram_mm2_per_MiB


def _max(values: list[Number]) -> Number:
    out = values[0]
    for v in values[1:]:
        out = np.maximum(out, v)
    return out


class PEArray(Spec):
    """``count`` PEs of catalog type ``type`` at ``clock_GHz`` (all three searchable by dotted path)."""

    type: str = Field(description="arch/pe catalog name (a categorical search dimension)")
    count: count()
    clock_GHz: quantity(gt=0, unit="GHz")

    def model_post_init(self, _context: object) -> None:
        load_pe(self.type)

    @property
    def pe(self) -> PEType:
        return load_pe(self.type)

    def peak_ops_per_s(self, cls: str) -> Number:
        """Dense matrix peak (a MAC = 2 ops) of all PEs for operand class ``cls``; 0 if infeasible."""
        return 2 * self.pe.macs_per_cycle(cls) * self.count * self.clock_GHz * 1e9

    @property
    def vector_ops_per_s(self) -> Number:
        return self.pe.vector_ops_per_cycle * self.count * self.clock_GHz * 1e9

    @property
    def voltage_V(self) -> Number:
        """Supply at ``clock_GHz`` (the type's V(f) curve; its nominal voltage without one)."""
        vf = self.pe.vf
        return self.pe.voltage_V if vf is None else vf.voltage(self.clock_GHz)

    @property
    def clock_reachable(self) -> Number:
        """Whether the node reaches ``clock_GHz`` within its V(f) curve (True without a curve)."""
        vf = self.pe.vf
        return True if vf is None else self.clock_GHz <= vf.max_clock_GHz

    def mac_energy_pJ(self, cls: str) -> Number:
        """Energy of one MAC of class ``cls`` at this array's supply, in pJ."""
        return self.pe.mac_energy_pJ(cls, self.voltage_V)

    @property
    def area_mm2(self) -> Number:
        return self.pe.area_mm2 * self.count

    def max_power_W(self) -> Number:
        """Dynamic MAC power at peak in the PE's most power-hungry class (MACs/s x pJ/MAC)."""
        powers = [self.pe.macs_per_cycle(c) * self.mac_energy_pJ(c) for c in self.pe.rate]
        return _max(powers) * self.count * self.clock_GHz * 1e9 * 1e-12


def pe_names() -> list[str]:
    return sorted(p.stem for p in (catalog_dir("arch") / "pe").glob("*.yaml"))


@lru_cache(maxsize=None)
def load_pe(name_or_path: str) -> PEType:
    """A PE type from ``arch/pe/`` by name, or a YAML path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        path = catalog_dir("arch") / "pe" / f"{name_or_path}.yaml"
        if not path.is_file():
            raise HwdseError("pe catalog", "name", f"unknown PE type {name_or_path!r}; known: {', '.join(pe_names())}")
    data = read(path)
    data.setdefault("name", path.stem)
    return validate(PEType, data, f"arch/pe/{path.name}")
