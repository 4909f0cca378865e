"""Per-operator roofline quantities from device timings."""

from __future__ import annotations

from hwdse._array import where
from hwdse._params import Number
from hwdse.hardware import Timing

__all__ = ["op_time", "bound", "attainable"]


def op_time(t: Timing) -> Number:
    """Seconds per instance: the larger of compute and memory time, plus serial terms."""
    return t.seconds


def bound(t: Timing) -> Number:
    """Name of the dominant term: ``compute``, ``memory`` or a serial term (``communication`` ...)."""
    name = where(t.compute_s >= t.memory_s, "compute", "memory")
    best = where(t.compute_s >= t.memory_s, t.compute_s, t.memory_s)
    for key, extra in t.serial_s.items():
        name = where(extra > best, key, name)
        best = where(extra > best, extra, best)
    return name


def attainable(t: Timing) -> Number:
    """Attained ops/s of the operator (``flops / time``; ``min(peak, AI x BW)`` in roofline mode)."""
    return t.op.flops / op_time(t)
