"""How sure a prediction is: a phase's error band from its operators' kernel-family bands, and whether
a difference between two predictions exceeds their bands.

A device that answers ``error_band(family)`` (GPUs and systems of them: the held-out |relative error|
of its own calibration, else the leave-one-device-out error of the transferred parameters; PIM devices,
whose basis is ``derived`` from DRAM timing with no measured PIM kernels to hold out: the spread between
the derived time and its optimistic bound; GPU + PIM systems: the wider of the two) gives each
operator the p90 of its kernel family. A phase's band is the time-weighted mean of its operators'
(errors of one device's kernels taken as fully correlated, so the band is an upper bound rather than
a root-sum-square). A roofline prediction has no band: it is a bound (NaN here, ``basis`` says why).
An energy's band adds the power model's held-out band to its time's (:func:`energy_band`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwdse._params import Number
from hwdse.workload.ops import Op

__all__ = ["op_family", "phase_band", "energy_band", "exceeds", "FALLBACK_FAMILY"]

FALLBACK_FAMILY = "gemm"  # a family without held-out data (elementwise on most GPUs) takes the GEMM band


def op_family(op: Op, decode: bool) -> str:
    """The kernel family whose held-out error an operator carries."""
    if op.kind == "attention":
        return "decode_attention" if decode else "prefill_attention"
    return {"gemm": "gemm", "elementwise": "vector", "collective": "all_reduce"}.get(op.kind, FALLBACK_FAMILY)


def phase_band(arch: Any, basis: str, phase: Any, decode: bool) -> Number:
    """p90 relative error band of a phase's time (NaN for a roofline bound or a device without bands)."""
    band = getattr(arch, "error_band", None)
    if basis == "roofline" or band is None:
        return np.nan
    p90 = []
    for t in phase.timings:
        found = band(op_family(t.op, decode)) or band(FALLBACK_FAMILY)
        p90.append(np.nan if found is None else found[1])
    weighted = phase.total([s * b for s, b in zip(phase.time_s, p90)])
    return weighted / phase.total(phase.time_s)


def energy_band(arch: Any, time_band: Number) -> Number:
    """p90 relative error band of an energy: its time's band plus the band of the system's predicted power
    (``power_band``: the held-out error of the power fit; NaN for a kind with no measured power to hold
    out). Added, as :func:`exceeds` adds bands: each taken at its worst."""
    power = getattr(arch, "power_band", None)
    return time_band + (np.nan if power is None else power)


def exceeds(a: Number, b: Number, band_a: Number, band_b: Number) -> Any:
    """True where ``a`` and ``b`` differ by more than their bands added (``|a/b - 1| > band_a + band_b``: the
    conservative combination, each p90 taken at its worst); False within them; NaN where either has no band."""
    combined = band_a + band_b
    return np.where(np.isnan(combined), np.nan, np.abs(a / b - 1) > combined)
