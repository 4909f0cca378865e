"""What every device kind answers: per-operator timings, capacity, peaks for utilization."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from hwdse._errors import HwdseError
from hwdse._params import Number
from hwdse.formats import get
from hwdse.workload.ops import Op

__all__ = ["Timing", "Device", "Mode", "MODES", "DEFAULT_MODE", "Basis", "BASES", "weakest", "resolve_mode", "basis_of",
           "COMPUTE_CLASSES",
           "join_classes", "operand_class", "UPCAST", "upcast"]

Mode = Literal["roofline", "achieved"]
# What a prediction rests on: the device's own fitted efficiencies, efficiencies transferred from the
# devices with data (hwdse.hardware.gpu.transfer), an efficiency derived from a sourced mechanism and
# fitted to no measurement of the device (PIM units: DRAM timing, hwdse.hardware.pim.banks), or the
# roofline bound.
Basis = Literal["calibrated", "transferred", "derived", "roofline"]
# The achieved bases, strongest first: a system of several parts rests on its weakest part's.
BASES = ("calibrated", "transferred", "derived")
MODES = ("auto", "achieved", "roofline")
# One default for the API, the CLI and studies: achieved where every system of a result has an
# achieved basis, else the roofline for all of them (never one basis beside another).
DEFAULT_MODE = "auto"

# Arithmetic classes a PE may run natively, widest first; a format names its class
# (``hwdse.formats.get(name).compute``) and a pair of operands needs the wider of the two.
COMPUTE_CLASSES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4", "int2")


@dataclass(frozen=True, slots=True)
class Timing:
    """How long one instance of ``op`` takes on ``unit`` (seconds).

    ``compute_s`` and ``memory_s`` overlap (the roofline: the op takes the larger); every
    entry of ``serial_s`` (launch overhead, communication, mode switches) adds on top.
    Each term must be affine in the KV length within a decode phase (true of every
    built-in model): the exact decode average relies on it. ``energy_J`` is per instance;
    ``core_share`` is the part of it drawn in the core's clock and voltage domain (MACs, on-chip
    SRAM and network), which a power cap's lower clock and supply reduce (:mod:`hwdse.perf.power_cap`).
    """

    op: Op
    unit: str
    compute_class: str
    compute_s: Number
    memory_s: Number
    serial_s: Mapping[str, Number] = field(default_factory=dict)
    peak_ops_per_s: Number = float("nan")
    bandwidth_Bps: Number = float("nan")
    energy_J: Number = float("nan")
    core_share: Number = 0.0

    @property
    def seconds(self) -> Number:
        """Seconds per instance: the larger of compute and memory time, plus every serial term."""
        time = np.maximum(self.compute_s, self.memory_s)
        for extra in self.serial_s.values():
            time = time + extra
        return time


class Device(Protocol):
    """The contract every ``arch/`` kind fulfils (GPU, spatial chip, PIM, composite system)."""

    name: str
    kind: str

    @property
    def capacity_bytes(self) -> Number: ...

    @property
    def achieved_basis(self) -> Basis | None:
        """What ``achieved`` mode rests on for this device (None: the kind has no achieved model for it)."""
        ...

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        """Time every operator (a system may add communication operators)."""
        ...


def resolve_mode(mode: str, *archs: Any) -> Mode:
    """One mode for every system of a result. ``auto``: ``achieved`` when each of ``archs`` has an
    achieved basis, else ``roofline`` for all of them; ``achieved`` on a system without one is an error."""
    if mode not in MODES:
        raise HwdseError("mode", None, f"must be {', '.join(MODES)}, got {mode!r}")
    lacking = [a for a in archs if getattr(a, "achieved_basis", None) is None]
    if mode == "auto":
        return "roofline" if lacking else "achieved"
    if mode == "achieved" and lacking:
        a = lacking[0]
        raise HwdseError(f"arch {a.name}", "mode", f"achieved mode needs calibrated, transferred or derived "
                                                   f"efficiencies, which this {a.kind} arch lacks; use roofline (or "
                                                   "auto: roofline for every system)")
    return mode


def weakest(*bases: Basis | None) -> Basis | None:
    """The weakest of the parts' achieved bases (``BASES`` order); None if any part has none."""
    if any(b is None for b in bases):
        return None
    return max(bases, key=BASES.index)


def basis_of(arch: Any, mode: Mode) -> Basis:
    """What a result of ``arch`` in ``mode`` (already resolved) rests on."""
    return "roofline" if mode == "roofline" else arch.achieved_basis


# The narrowest float class holding every value of an integer class exactly (int4: -8..7 needs
# three significant bits, which both FP8 variants have; int8 needs seven: BF16 has eight).
INT_IN_FLOAT = {"int2": "fp4", "int4": "fp8", "int8": "bf16"}


# Where a class goes when a datapath lacks it (the survey's INT4-on-H100 case).
UPCAST = {"int2": "int4", "int4": "int8", "int8": "fp16", "fp4": "fp6", "fp6": "fp8", "fp8": "fp16",
          "fp16": "fp32", "bf16": "fp32", "tf32": "fp32"}


def upcast(wanted: str, native: Collection[str]) -> str | None:
    """The first class along the UPCAST chain from ``wanted`` that is in ``native`` (None: none is)."""
    cls = wanted
    while cls not in native:
        if cls not in UPCAST:
            return None
        cls = UPCAST[cls]
    return cls


def join_classes(classes: Sequence[str]) -> str:
    """The narrowest class that multiplies operands of all these classes without loss.

    Same family: the widest. Integers with floats: each integer class maps to the narrowest float
    holding it exactly (``INT_IN_FLOAT``), then the widest float (int8 x fp8 -> bf16, not fp8).
    FP16 with BF16 runs in BF16 (the FP16 operand is cast, as frameworks do).
    """
    floats = {c for c in classes if not c.startswith("int")}
    ints = [c for c in classes if c.startswith("int")]
    if not floats:
        return min(ints, key=COMPUTE_CLASSES.index)
    floats |= {"fp16" if INT_IN_FLOAT[c] == "bf16" and "fp16" in floats else INT_IN_FLOAT[c] for c in ints}
    return min(floats, key=COMPUTE_CLASSES.index)


def operand_class(formats: Sequence[str]) -> str:
    """The arithmetic class multiplying these formats needs (see :func:`join_classes`)."""
    return join_classes([get(f).compute for f in formats])
