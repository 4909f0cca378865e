"""Evaluation speed: full-model evaluations (prefill + decode), scalar and over a 10^6-point grid.

Prints (targets of issue 29, on a 2-core machine):

* ``points_per_s:`` the grid (HBM bandwidth x FP16 peak, ``--side`` each) in roofline mode (target >= 1e7),
  ``achieved_points_per_s:`` the same grid in achieved mode;
* ``scalar_eval_ms:`` one scalar :func:`hwdse.evaluate` (a Dataset), ``scalar_record_ms:`` the same point
  through :func:`hwdse.perf.evaluate_record` (target <= 0.2 ms): a repeated point, whose arch and schedule
  come from the caches; ``scalar_record_new_point_ms:`` records of points that each set a new bandwidth
  override (every cache missed: resolving, validating and scheduling included);
* the peak resident memory.

Targets print next to their figures. Run: ``python benchmarks/bench_evaluate.py [--side 1000]``.
"""

from __future__ import annotations

import argparse
import resource

import numpy as np
import xarray as xr

from _timing import per_call

import hwdse
from hwdse.perf import evaluate_record

POINT = dict(batch=8, prompt=2048, gen=256)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=1000, help="grid is side x side points")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bw = xr.DataArray(np.linspace(300, 8000, args.side), dims="bandwidth")
    peak = xr.DataArray(np.linspace(50, 2000, args.side), dims="peak")
    grid = dict(POINT, overrides={"memory.bandwidth_GBps": bw, "compute.peak_TOPS.fp16": peak})
    rates = {}
    for mode in ("roofline", "achieved"):
        seconds = per_call(lambda _: hwdse.evaluate("llama-2-7b", "a6000", mode=mode, **grid), 1, args.repeat)
        rates[mode] = args.side**2 / seconds
    scalar = per_call(lambda _: hwdse.evaluate("llama-2-7b", "a6000", **POINT), 200, args.repeat)
    record = per_call(lambda _: evaluate_record("llama-2-7b", "a6000", **POINT), 1000, args.repeat)
    fresh = iter(np.linspace(700, 900, 100_000))  # never the same override twice
    new_point = per_call(lambda _: evaluate_record("llama-2-7b", "a6000", **POINT,
                                                   overrides={"memory.bandwidth_GBps": next(fresh)}), 50, args.repeat)
    print(f"grid_points: {args.side**2}")
    print(f"points_per_s: {rates['roofline']:.3e} (target >= 1e7)")
    print(f"achieved_points_per_s: {rates['achieved']:.3e}")
    print(f"scalar_eval_ms: {scalar * 1e3:.3f}")
    print(f"scalar_record_ms: {record * 1e3:.3f} (target <= 0.2)")
    print(f"scalar_record_new_point_ms: {new_point * 1e3:.3f}")
    print(f"peak_rss_MiB: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


if __name__ == "__main__":
    main()
