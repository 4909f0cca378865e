"""Phase totals: a prefill pass, and the exact average of decode steps over a growing KV cache.

Decode step ``j = 0 .. g-1`` attends over ``L = n + j`` cached positions (``min(L, window)``
with a sliding window). Every timing term is affine in ``L`` (see ``Timing``), so the sum over
the ``g`` steps of ``max(compute, memory) + serial`` has a closed form: split at the point
where compute and memory time cross, sum each arithmetic series. No loop over tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwdse._array import where
from hwdse._params import Number
from hwdse.hardware import Timing
from hwdse.perf.power_cap import Work
from hwdse.perf.roofline import op_time

__all__ = ["PhaseOps", "prefill_phase", "decode_phase", "sum_max_affine"]


@dataclass(frozen=True)
class PhaseOps:
    """Per-operator totals of a phase: for decode, sums over all ``g`` steps divided by ``g``."""

    timings: list[Timing]          # at the anchor KV length (prefill: the only one)
    time_s: list[Number]            # mean seconds per instance
    compute_s: list[Number]
    memory_s: list[Number]
    flops: list[Number]
    bytes: list[Number]
    energy_J: list[Number]
    core_J: list[Number]            # of energy_J, the core domain's (``Timing.core_share``)

    def total(self, values: list[Number]) -> Number:
        out = 0.0
        for t, v in zip(self.timings, values):
            out = out + t.op.count * v
        return out

    def work(self) -> Work:
        """The phase's totals at the rated clock, for a power budget (:mod:`hwdse.perf.power_cap`)."""
        clocked = [where(c >= m, c, 0.0) for c, m in zip(self.compute_s, self.memory_s)]
        return Work(self.total(self.time_s), self.total(clocked), self.total(self.energy_J), self.total(self.core_J))


def prefill_phase(timings: list[Timing]) -> PhaseOps:
    return PhaseOps(timings, [op_time(t) for t in timings], [t.compute_s for t in timings],
                    [t.memory_s for t in timings], [t.op.flops for t in timings], [t.op.bytes for t in timings],
                    [t.energy_J for t in timings], [t.energy_J * t.core_share for t in timings])


def _affine_sum(v0: Number, v1: Number, n: Number) -> Number:
    """sum_{x=0}^{n-1} (v0 + v1 x)."""
    return n * v0 + v1 * n * (n - 1) / 2


def sum_max_affine(c0: Number, c1: Number, m0: Number, m1: Number, n: Number) -> Number:
    """sum_{x=0}^{n-1} max(c0 + c1 x, m0 + m1 x), exactly, for integer ``n >= 0``."""
    d0, d1 = c0 - m0, c1 - m1
    with np.errstate(divide="ignore", invalid="ignore"):
        root = where(d1 != 0, -d0 / where(d1 != 0, d1, 1.0), 0.0)
    up_lo = np.clip(np.floor(root) + 1, 0, n)
    down_hi = np.clip(np.ceil(root), 0, n)
    lo = where(d1 > 0, up_lo, 0.0)
    hi = where(d1 > 0, n, where(d1 < 0, down_hi, where(d0 > 0, n, 0.0)))
    k = np.maximum(hi - lo, 0.0)
    positive = k * d0 + d1 * (lo + hi - 1) * k / 2
    return _affine_sum(m0, m1, n) + positive


def decode_phase(schedule: Callable[[Number], list[Timing]], prompt: Number, gen: Number,
                 window: int | None) -> PhaseOps:
    """Mean per-step operator times over ``gen`` decode steps from KV length ``prompt``.

    ``schedule(kv_len)`` times the decode operator table at one KV length; ``window`` caps every
    operator (a Mistral-style model), an operator's ``shape["window"]`` only itself.
    """
    anchor = prompt if window is None else np.minimum(prompt, window)
    t0, t1 = schedule(anchor), schedule(anchor + 1)

    def capped(w: Number | None) -> tuple[Number, Number]:
        """(steps before the window caps the KV extent, steps after)."""
        if w is None:
            return gen, 0.0
        steps = np.clip(np.minimum(prompt + gen - 1, w) - prompt + 1, 0, gen)
        return steps, gen - steps

    def mean(v0: Number, v1: Number, max_with: tuple[Number, Number] | None = None, *, window: Number | None,
             steps: Number, tail: Number) -> Number:
        """Mean over the steps of an affine value (or of its max with another), flat once ``window`` caps it."""
        slope = v1 - v0
        if max_with is None:
            body = _affine_sum(v0, slope, steps)
            at_window = v0 + slope * (window - anchor) if window is not None else 0.0
        else:
            m0, m1 = max_with
            body = sum_max_affine(v0, slope, m0, m1 - m0, steps)
            if window is not None:
                at_window = np.maximum(v0 + slope * (window - anchor), m0 + (m1 - m0) * (window - anchor))
            else:
                at_window = 0.0
        return (body + tail * at_window) / gen

    time_s, compute_s, memory_s, flops, nbytes, energy, core = [], [], [], [], [], [], []
    for a, b in zip(t0, t1):
        own = a.op.shape.get("window", window)  # a hybrid model's windowed layers carry their own
        steps, tail = capped(own)
        cap = {"window": own, "steps": steps, "tail": tail}
        runs = np.isfinite(a.compute_s) & np.isfinite(a.memory_s)  # a unit without a datapath: infinite
        with np.errstate(invalid="ignore"):
            t = mean(a.compute_s, b.compute_s, (a.memory_s, b.memory_s), **cap)
            for key, extra in a.serial_s.items():
                t = t + mean(extra, b.serial_s[key], **cap)
            time_s.append(where(runs, t, np.inf))
            compute_s.append(where(runs, mean(a.compute_s, b.compute_s, **cap), np.inf))
            memory_s.append(mean(a.memory_s, b.memory_s, **cap))
        flops.append(mean(a.op.flops, b.op.flops, **cap))
        nbytes.append(mean(a.op.bytes, b.op.bytes, **cap))
        energy.append(mean(a.energy_J, b.energy_J, **cap))
        core.append(mean(a.energy_J * a.core_share, b.energy_J * b.core_share, **cap))
    return PhaseOps(t0, time_s, compute_s, memory_s, flops, nbytes, energy, core)
