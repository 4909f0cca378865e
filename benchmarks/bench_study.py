"""Study speed: a 1000-trial single-objective TPE study on SQLite, the refine search of the same space
with each design at its best batch (the operating point, 48 batches per design) against its dense
grid, and a 10^6-point grid sweep.

Prints ``trials_per_s:`` (target: 1000 trials in < 30 s), ``refine_designs_per_s:`` and
``refine_gap:`` (target <= 1 % with <= 5 % of the dense grid's evaluations) and ``points_per_s:``
(target >= 1e7 in roofline mode). Run: ``python benchmarks/bench_study.py [--trials 1000]
[--batch 1] [--side 1000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from hwdse.search import grid_size, load_study, run_study, sweep
from hwdse.search.review import gap

STUDY = """
name = "bench"
arch = "h100-sxm"
mode = "roofline"
[workload]
model = "llama-3-70b"
batch = 16
prompt = 1024
gen = 256
weights = "fp8-e4m3"
activations = "fp8-e4m3"
kv = "fp8-e4m3"
[search."arch.memory.bandwidth_GBps"]
low = 500.0
high = 8000.0
log = true
num = {side}
[search."arch.compute.peak_TOPS.fp8"]
low = 250.0
high = 4000.0
log = true
num = {side}
[search."scenario.kv"]
choices = ["fp8-e4m3"]
[[objectives]]
metric = "tpot_s"
[[constraints]]
name = "ttft_slo"
metric = "ttft_s"
max = 1.5
[sampler]
name = "{sampler}"
seed = 0
"""

OPERATING = """
[search."scenario.batch"]
low = 1
high = 256
log = true
"""
MOST_TOKENS = """[[objectives]]
metric = "throughput_tok_s"
direction = "maximize"
[[constraints]]
name = "tpot_slo"
metric = "tpot_s"
max = 0.03"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1, help="trials per vectorized evaluation")
    parser.add_argument("--side", type=int, default=1000, help="grid is side x side points (bandwidth x peak)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(STUDY.format(side=args.side, sampler="tpe"))
        space = load_study(path)
        t0 = time.perf_counter()
        run = run_study(space, Path(tmp) / "tpe", n_trials=args.trials, batch=args.batch)
        dt = time.perf_counter() - t0
        print(f"tpe: {run.results.sizes['trial']} trials on sqlite (batch {args.batch}) in {dt:.2f} s "
              "(incl. results.nc)")
        print(f"trials_per_s: {args.trials / dt:.1f}")
        path.write_text(STUDY.format(side=args.side, sampler="refine")
                        .replace('[[objectives]]\nmetric = "tpot_s"', MOST_TOKENS) + OPERATING)
        refine = load_study(path)
        t0 = time.perf_counter()
        run = run_study(refine, Path(tmp) / "refine", n_trials=args.trials)
        dt = time.perf_counter() - t0
        found = gap(refine, run.results)
        print(f"refine: {found['designs']} designs x {found['operating_points']} batches in {dt:.2f} s; dense grid "
              f"{found['reference_designs']} designs")
        print(f"refine_designs_per_s: {found['designs'] / dt:.1f}")
        print(f"refine_gap: {found['gap'] * 100:.2f} % with {found['designs'] / found['reference_designs'] * 100:.1f} "
              "% of the grid's evaluations")
        path.write_text(STUDY.format(side=args.side, sampler="grid"))
        grid_space = load_study(path)
        sweep(grid_space)  # warm caches
        t0 = time.perf_counter()
        grid = sweep(grid_space)
        dt = time.perf_counter() - t0
        n = grid_size(grid_space)
        assert grid.tpot_s.size == n
        print(f"grid: {n} points in {dt:.2f} s")
        print(f"points_per_s: {n / dt:.3g} (target >= 1e7)")


if __name__ == "__main__":
    main()
