"""TPE finds the exhaustive (grid) optimum of a small constrained space within 1 % using <= 10 % of its points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwdse.search import load_study, run_study, sweep

# Maximize throughput of llama-3-8b on an H100-class part over batch x HBM pin rate x weight format,
# under TPOT and TTFT SLOs: the optimum is interior (the largest batch that meets the TPOT SLO).
SPACE = """
name = "optimum"
arch = "h100-sxm"
mode = "roofline"  # the search landscape this test was sized on (a smooth roofline)
[workload]
model = "llama-3-8b"
prompt = 1024
gen = 256
activations = "fp8-e4m3"
[search."scenario.batch"]
low = 1
high = 128
[search."arch.memory.pin_rate_Gbps"]
low = 2.0
high = 6.4
step = 0.2
[search."scenario.weights"]
choices = ["bf16", "fp8-e4m3", "mxfp4", "int8"]
[[objectives]]
metric = "throughput_tok_s"
direction = "maximize"
[[constraints]]
name = "tpot_slo"
metric = "tpot_s"
max = 0.008
[[constraints]]
name = "ttft_slo"
metric = "ttft_s"
max = 0.5
[sampler]
name = "tpe"
seed = 0
"""


def test_tpe_reaches_grid_optimum_with_few_evaluations(tmp_path: Path) -> None:
    path = tmp_path / "optimum.toml"
    path.write_text(SPACE)
    space = load_study(path)
    grid = sweep(space)
    n_grid = grid.throughput_tok_s.size
    feasible = grid.feasible.values.astype(bool)
    assert 0.05 < feasible.mean() < 0.95  # the constraints bind
    best = np.where(feasible, grid.throughput_tok_s.values, -np.inf).max()
    optimum = np.unravel_index(np.argmax(np.where(feasible, grid.throughput_tok_s.values, -np.inf)), feasible.shape)
    assert 1 < grid["scenario.batch"].values[optimum[0]] < 128  # interior in batch
    n_trials = 150
    assert n_trials <= 0.1 * n_grid
    ds = run_study(space, tmp_path / "out", n_trials=n_trials).results
    assert ds.sizes["trial"] == n_trials
    found = ds.throughput_tok_s.values[ds.feasible.values.astype(bool)].max()
    assert found >= 0.99 * best
    assert found <= best * (1 + 1e-9)  # no trial beats the exhaustive optimum (same evaluator)
