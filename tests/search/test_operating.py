"""The inner problem: each design at its best operating point equals a brute-force loop over the same points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwdse import evaluate
from hwdse.search import load_study
from hwdse.search.operating import INNER_POINTS, lexicographic
from hwdse.search.points import evaluate_points
from hwdse.search.space import grid_values
from hwdse.serving import serve

STATIC = """
name = "inner"
arch = "h100-sxm"
mode = "roofline"
[workload]
model = "llama-3-8b"
prompt = 1024
gen = 256
[search."scenario.batch"]
low = 1
high = 128
log = true
num = 12
[search."arch.memory.bandwidth_GBps"]
low = 1500.0
high = 6000.0
[[objectives]]
metric = "throughput_tok_s"
direction = "maximize"
[[objectives]]
metric = "energy_j_per_token"
[[constraints]]
name = "tpot_slo"
metric = "tpot_s"
max = 0.006
"""

SERVING = """
name = "inner-serving"
arch = "h100-sxm"
mode = "achieved"
[workload]
model = "llama-3-8b"
[serving]
engine = "vllm"
isl = 1024
osl = 256
ttft_slo_ms = 500.0
tpot_slo_ms = 20.0
[search."arch.memory.bandwidth_GBps"]
low = 2000.0
high = 8000.0
[search."serving.concurrency"]
low = 1
high = 256
log = true
num = 10
[[objectives]]
metric = "goodput_tok_s_per_device"
direction = "maximize"
[[constraints]]
name = "tpot_slo"
metric = "tpot_s"
max = 0.02
"""


def _space(tmp_path: Path, text: str):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return load_study(path)


def test_static_batch_is_solved_as_a_brute_force_loop(tmp_path: Path) -> None:
    space = _space(tmp_path, STATIC)
    assert space.inner == ("scenario.batch",) and space.outer == ("arch.memory.bandwidth_GBps",)
    bandwidths = [3350.0, 4500.0, 5500.0]
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": bandwidths})
    batches = grid_values(space.params["scenario.batch"])
    assert len(batches) == int(ds.operating_points) == 11  # 12 log-spaced, rounded: 2 appears twice
    for i, bw in enumerate(bandwidths):
        rows = [evaluate("llama-3-8b", "h100-sxm", mode="roofline", batch=float(b), prompt=1024, gen=256,
                         overrides={"memory.bandwidth_GBps": bw}) for b in batches]
        thr = np.array([float(r.throughput_tok_s) for r in rows])
        energy = np.array([float(r.energy_j_per_token) for r in rows])
        ok = np.array([float(r.tpot_s) <= 0.006 for r in rows])
        assert 0 < ok.sum() < len(batches)  # the SLO binds: the best batch is interior
        best = thr[ok].max()
        tied = ok & (thr >= best * 0.99)  # within the default epsilon (1 %): least energy wins
        want = int(np.flatnonzero(tied)[np.argmin(energy[tied])])
        assert float(ds["scenario.batch"].values[i]) == batches[want]
        assert float(ds.throughput_tok_s.values[i]) == pytest.approx(thr[want], rel=1e-12)


def test_serving_concurrency_is_solved_per_design(tmp_path: Path) -> None:
    space = _space(tmp_path, SERVING)
    assert space.inner == ("serving.concurrency",)
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [2000.0, 8000.0]})
    loads = grid_values(space.params["serving.concurrency"])
    for i, bw in enumerate([2000.0, 8000.0]):
        rows = [serve("llama-3-8b", "h100-sxm", concurrency=float(c), isl=1024, osl=256, engine="vllm",
                      mode="achieved", ttft_slo_s=0.5, tpot_slo_s=0.02, overrides={"memory.bandwidth_GBps": bw})
                for c in loads]
        good = np.array([float(r.goodput_tok_s_per_device) for r in rows])
        ok = np.array([float(r.tpot_s) <= 0.02 and bool(r.stable) and float(r.max_requests) >= 1 for r in rows])
        want = int(np.flatnonzero(ok & (good >= good[ok].max() * 0.99))[0])
        assert float(ds["serving.concurrency"].values[i]) == loads[want]
    assert ds["serving.concurrency"].values[1] > ds["serving.concurrency"].values[0]  # more bandwidth, more clients


def test_a_design_with_no_feasible_operating_point_keeps_its_least_violating_one(tmp_path: Path) -> None:
    space = _space(tmp_path, STATIC.replace("max = 0.006", "max = 0.0001"))
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [1500.0]})
    assert not bool(ds.feasible.values[0])
    assert float(ds["scenario.batch"].values[0]) == 1.0  # the smallest TPOT misses the least


def test_lexicographic_breaks_ties_by_the_next_objective() -> None:
    values = np.array([[[1.000, 5.0], [1.005, 2.0], [1.2, 0.1], [0.99, 9.0]]])
    ok = np.array([[True, True, True, False]])
    assert lexicographic(values, ok, [0.01, 0.01]).tolist() == [1]  # 1.005 ties 1.0 and wins on the second
    assert lexicographic(values, ok, [0.001, 0.01]).tolist() == [0]
    assert INNER_POINTS >= 32


def test_an_objective_that_does_not_vary_with_the_operating_point(tmp_path: Path) -> None:
    """Area depends on the design only: the operating point is then chosen by the next objective."""
    text = STATIC.replace('metric = "throughput_tok_s"\ndirection = "maximize"', 'metric = "area_mm2"')
    space = _space(tmp_path, text)
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [3350.0, 5500.0]})
    assert ds.area_mm2.dims == ("trial",) and bool(ds.feasible.all())
    energy = [float(evaluate("llama-3-8b", "h100-sxm", mode="roofline", batch=float(b), prompt=1024, gen=256,
                             overrides={"memory.bandwidth_GBps": 3350.0}).energy_j_per_token)
              for b in grid_values(space.params["scenario.batch"])]
    ok = [float(evaluate("llama-3-8b", "h100-sxm", mode="roofline", batch=float(b), prompt=1024, gen=256,
                         overrides={"memory.bandwidth_GBps": 3350.0}).tpot_s) <= 0.006
          for b in grid_values(space.params["scenario.batch"])]
    want = grid_values(space.params["scenario.batch"])[int(np.argmin(np.where(ok, energy, np.inf)))]
    assert float(ds["scenario.batch"].values[0]) == want
