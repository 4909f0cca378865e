"""What every device kind answers: per-operator timings, capacity, peaks for utilization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from hwdse._params import Number
from hwdse.workload.ops import Op

__all__ = ["Timing", "Device", "Mode", "COMPUTE_CLASSES", "operand_class"]

Mode = Literal["roofline", "achieved"]

# Arithmetic classes a PE may run natively, widest first; a format names its class
# (``hwdse.formats.get(name).compute``) and a pair of operands needs the wider of the two.
COMPUTE_CLASSES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4", "int2")


@dataclass(frozen=True, slots=True)
class Timing:
    """How long one instance of ``op`` takes on ``unit`` (seconds).

    ``compute_s`` and ``memory_s`` overlap (the roofline: the op takes the larger); every
    entry of ``serial_s`` (launch overhead, communication, mode switches) adds on top.
    Each term must be affine in the KV length within a decode phase (true of every
    built-in model): the exact decode average relies on it. ``energy_J`` is per instance.
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


class Device(Protocol):
    """The contract every ``arch/`` kind fulfils (GPU, spatial chip, PIM, composite system)."""

    name: str
    kind: str

    @property
    def capacity_bytes(self) -> Number: ...

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        """Time every operator (a system may add communication operators)."""
        ...


def operand_class(formats: Sequence[str]) -> str:
    """The arithmetic class multiplying these formats needs: the widest of their classes."""
    from hwdse.formats import get

    classes = [get(f).compute for f in formats]
    return min(classes, key=COMPUTE_CLASSES.index)
