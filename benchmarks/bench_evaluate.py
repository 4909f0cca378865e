"""Evaluation speed: a full-model evaluation (prefill + decode) over a 10^6-point grid.

Prints ``points_per_s:`` (target >= 1e6 on a 2-core machine), ``scalar_eval_ms:`` and the peak
resident memory. Run: ``python benchmarks/bench_evaluate.py [--side 1000]``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import xarray as xr

import hwdse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=1000, help="grid is side x side points")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bw = xr.DataArray(np.linspace(300, 8000, args.side), dims="bandwidth")
    peak = xr.DataArray(np.linspace(50, 2000, args.side), dims="peak")
    kwargs = dict(batch=8, prompt=2048, gen=256,
                  overrides={"memory.bandwidth_GBps": bw, "compute.peak_TOPS.fp16": peak})
    hwdse.evaluate("llama-2-7b", "a6000", **kwargs)  # warm caches
    best = np.inf
    for _ in range(args.repeat):
        start = time.perf_counter()
        ds = hwdse.evaluate("llama-2-7b", "a6000", **kwargs)
        best = min(best, time.perf_counter() - start)
    points = ds.tpot_s.size
    start = time.perf_counter()
    for _ in range(200):
        hwdse.evaluate("llama-2-7b", "a6000", batch=8, prompt=2048, gen=256)
    scalar = (time.perf_counter() - start) / 200
    print(f"grid_points: {points}")
    print(f"grid_seconds: {best:.3f}")
    print(f"points_per_s: {points / best:.3e}")
    print(f"scalar_eval_ms: {scalar * 1e3:.2f}")
    print(f"peak_rss_MiB: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
