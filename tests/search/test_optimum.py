"""The default search (refine) reaches a dense grid's optimum within 1 % with <= 5 % of its evaluations."""

from __future__ import annotations

from pathlib import Path

from hwdse.search import load_study, run_study
from hwdse.search.review import gap

# Maximize throughput of llama-3-8b on an H100-class part over HBM pin rate x BF16/FP8 peaks x weight
# format, each design at its best batch under TPOT and TTFT SLOs (the batch is the operating point).
SPACE = """
name = "optimum"
arch = "h100-sxm"
mode = "roofline"  # the search landscape this test was sized on (a smooth roofline)
n_trials = 100
[workload]
model = "llama-3-8b"
prompt = 1024
gen = 256
activations = "fp8-e4m3"
[search."scenario.batch"]
low = 1
high = 128
log = true
num = 16
[search."arch.memory.pin_rate_Gbps"]
low = 2.0
high = 6.4
[search."arch.compute.peak_TOPS.fp8"]
low = 400.0
high = 2000.0
log = true
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
"""


def test_refine_reaches_the_dense_grid_optimum_with_few_evaluations(tmp_path: Path) -> None:
    path = tmp_path / "optimum.toml"
    path.write_text(SPACE)
    space = load_study(path)
    assert space.spec.sampler.name == "refine" and space.inner == ("scenario.batch",)
    ds = run_study(space, tmp_path / "out").results
    found = gap(space, ds)
    assert found["grid_designs"] == 32 * 32 * 4 and not found["sampled"]
    assert found["designs"] <= 0.05 * found["grid_designs"]
    assert found["gap"] <= 0.01
    best = ds.isel(trial=int(ds.best.values.argmax()))
    assert 1 < float(best["scenario.batch"]) < 128  # the SLOs bind the operating point: an interior batch
    assert float(best.tpot_s) <= 0.008 and bool(best.feasible)


def test_decode_dse_finds_its_dense_grid_optimum_with_six_stacks(tmp_path: Path) -> None:
    """The README's main study: refine reaches the best TPOT of its 331,776-design dense grid with < 5 % of its
    evaluations, and that design hosts more than four stacks on a padded die (stacks no longer force PE count)."""
    space = load_study(Path(__file__).resolve().parents[2] / "studies" / "decode-dse.toml")
    ds = run_study(space, tmp_path / "dd").results
    found = gap(space, ds)
    assert found["gap"] <= 0.01 and found["designs"] <= 0.05 * found["reference_designs"]
    best = ds.isel(trial=int(ds.best.values.argmax()))
    assert 5 <= float(best["arch.memory.count"]) <= 8 and bool(best.feasible)
    assert float(best.area_mm2) <= 600.0 and float(best.tpot_s) < 0.9 * 7.95e-3  # the 4-stack front point: 7.95 ms
