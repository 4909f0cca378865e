"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def per_call(fn: Callable[[int], object], calls: int, repeat: int) -> float:
    """Best mean seconds per call of ``fn(i)`` over ``repeat`` rounds of ``calls`` calls (after one warm call)."""
    fn(0)
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        best = min(best, (time.perf_counter() - start) / calls)
    return best
