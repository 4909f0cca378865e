"""Serving-mode speed: the continuous-batching steady state, scalar, over one design's frontier and a grid.

llama-3-8b on an H100 (achieved mode), ISL = OSL = 1024. Every point runs the bisection of
:func:`hwdse.serving.serve` (a fixed number of array steps), whose step times come from a table over
requests decoding (:mod:`hwdse.serving.table`). Prints (targets of issue 29, on a 2-core machine):

* ``points_per_s:`` the grid concurrency x HBM bandwidth (``--side`` each);
* ``scalar_serve_ms:`` one scalar :func:`hwdse.serving.serve` at concurrency 64 (a Dataset),
  ``scalar_serve_record_ms:`` the same point through :func:`hwdse.serving.serve_record` (target <= 0.5 ms;
  the design's step table comes from the cache), ``scalar_serve_record_new_point_ms:`` records of points
  that each set a new bandwidth override (every cache missed);
* ``frontier_1000_ms:`` one ``serve`` over 1000 concurrencies of one design (a Dataset; target <= 5 ms),
  the design's table cached; ``frontier_1000_cold_ms:`` the same for a design seen for the first time;
* ``scalar_serve_record_throttled_ms:`` a repeated point whose steps run under the power budget
  (llama-3-70b FP8 on a B200 at concurrency 256: every steady-state trial bisects its clock);
* the peak resident memory.

Targets print next to their figures.

Run: ``python benchmarks/bench_serving.py [--side 1000]``.
"""

from __future__ import annotations

import argparse
import resource

import numpy as np
import xarray as xr

from _timing import per_call

from hwdse.serving import serve, serve_record

TRAFFIC = dict(isl=1024, osl=1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=1000, help="grid is side x side points")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    concurrency = xr.DataArray(np.linspace(1, 512, args.side), dims="concurrency")
    bandwidth = xr.DataArray(np.linspace(1000, 8000, args.side), dims="bandwidth")
    grid = per_call(lambda _: serve("llama-3-8b", "h100-sxm", concurrency=concurrency,
                                    overrides={"memory.bandwidth_GBps": bandwidth}, **TRAFFIC), 1, args.repeat)
    scalar = per_call(lambda _: serve("llama-3-8b", "h100-sxm", concurrency=64, **TRAFFIC), 20, args.repeat)
    record = per_call(lambda _: serve_record("llama-3-8b", "h100-sxm", concurrency=64, **TRAFFIC), 100, args.repeat)
    fresh = iter(np.linspace(3000, 3300, 100_000))  # never the same override twice
    new_point = per_call(lambda _: serve_record("llama-3-8b", "h100-sxm", concurrency=64, **TRAFFIC,
                                                overrides={"memory.bandwidth_GBps": next(fresh)}), 10, args.repeat)
    frontier = xr.DataArray(np.linspace(1, 512, 1000), dims="concurrency")
    warm = per_call(lambda _: serve("llama-3-8b", "h100-sxm", concurrency=frontier, **TRAFFIC), 10, args.repeat)
    cold = per_call(lambda _: serve("llama-3-8b", "h100-sxm", concurrency=frontier, **TRAFFIC,
                                    overrides={"memory.bandwidth_GBps": next(fresh)}), 3, args.repeat)
    throttled = per_call(lambda _: serve_record("llama-3-70b", "b200", concurrency=256, isl=2048, osl=512,
                                                weights="fp8-e4m3"), 10, args.repeat)
    print(f"grid_points: {args.side**2}")
    print(f"points_per_s: {args.side**2 / grid:.3g}")
    print(f"scalar_serve_ms: {scalar * 1e3:.2f}")
    print(f"scalar_serve_record_ms: {record * 1e3:.2f} (target <= 0.5)")
    print(f"scalar_serve_record_new_point_ms: {new_point * 1e3:.2f}")
    print(f"frontier_1000_ms: {warm * 1e3:.2f} (target <= 5)")
    print(f"frontier_1000_cold_ms: {cold * 1e3:.2f}")
    print(f"scalar_serve_record_throttled_ms: {throttled * 1e3:.2f}")
    print(f"peak_rss_MiB: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
