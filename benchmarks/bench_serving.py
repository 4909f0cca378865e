"""Serving-mode speed: the continuous-batching steady state over a 10^6-point grid.

The grid is concurrency x HBM bandwidth (``--side`` each) for llama-3-8b on an H100 in achieved mode:
every point runs the bisection of :func:`hwdse.serving.serve` (a fixed number of array steps), whose
step times come from a table over requests decoding (:mod:`hwdse.serving.table`).
Prints ``points_per_s:`` (target >= 1e6 on a 2-core machine), ``scalar_serve_ms:`` and the peak
resident memory. Run: ``python benchmarks/bench_serving.py [--side 1000]``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import xarray as xr

from hwdse.serving import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=1000, help="grid is side x side points")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    concurrency = xr.DataArray(np.linspace(1, 512, args.side), dims="concurrency")
    bandwidth = xr.DataArray(np.linspace(1000, 8000, args.side), dims="bandwidth")
    kwargs = dict(concurrency=concurrency, isl=1024, osl=1024, overrides={"memory.bandwidth_GBps": bandwidth})
    serve("llama-3-8b", "h100-sxm", **kwargs)  # warm caches
    best = np.inf
    for _ in range(args.repeat):
        start = time.perf_counter()
        ds = serve("llama-3-8b", "h100-sxm", **kwargs)
        best = min(best, time.perf_counter() - start)
    points = ds.tpot_s.size
    start = time.perf_counter()
    for _ in range(20):
        serve("llama-3-8b", "h100-sxm", concurrency=64, isl=1024, osl=1024)
    scalar = (time.perf_counter() - start) / 20
    print(f"grid_points: {points}")
    print(f"grid_seconds: {best:.3f}")
    print(f"points_per_s: {points / best:.3g}")
    print(f"scalar_serve_ms: {scalar * 1e3:.1f}")
    print(f"peak_rss_MiB: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
