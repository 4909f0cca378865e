"""Scoring pieces: Pareto flags against brute force, NaN objectives fail with a reason, constraints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from hwdse.search import load_study, pareto_mask
from hwdse.search.runner import outcomes


def _brute(v: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.zeros(len(v), dtype=bool)
    for i in range(len(v)):
        if not valid[i]:
            continue
        dominated = valid & np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1)
        out[i] = not dominated.any()
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_pareto_mask_matches_brute_force(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 6, size=(n, k)).astype(float)  # small ints: many ties and duplicates
    valid = rng.random(n) < 0.8
    np.testing.assert_array_equal(pareto_mask(v, ["minimize"] * k, valid), _brute(v, valid))
    flipped = pareto_mask(-v, ["maximize"] * k, valid)
    np.testing.assert_array_equal(flipped, _brute(v, valid))


def test_nan_objective_fails_the_point_with_a_reason(tiny: Path) -> None:
    space = load_study(tiny)
    ds = xr.Dataset({"tpot_s": ("trial", [0.01, np.nan]), "constraint_ttft": ("trial", [-0.1, np.nan])})
    values, cons, reasons = outcomes(space, ds)
    assert reasons[0] == "" and "tpot_s is not finite" in reasons[1]
    assert cons["ttft"][1] == np.inf  # an unevaluable constraint counts as violated


def test_constraint_values_are_relative_excess(tiny: Path) -> None:
    from hwdse.search import evaluate_points

    space = load_study(tiny)
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [768.0, 400.0],
                                 "arch.compute.peak_TOPS.fp16": [154.8, 60.0], "scenario.kv": ["fp16", "fp8-e4m3"]})
    np.testing.assert_allclose(ds.constraint_ttft.values, (ds.ttft_s.values - 0.5) / 0.5)
    np.testing.assert_array_equal(ds.feasible.values, ds.ttft_s.values <= 0.5)


def test_quality_constraint_uses_format_qsnr(tmp_path: Path) -> None:
    from hwdse.formats import get, qsnr_db, sources
    from hwdse.search import evaluate_points
    from tests.search.conftest import TINY

    path = tmp_path / "q.toml"
    path.write_text(TINY + '\n[[constraints]]\nname = "quality"\nkind = "quality"\nmin_qsnr_db = 35.0\n'
                           'tensors = ["kv"]\n')
    space = load_study(path)
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [768.0, 768.0],
                                 "arch.compute.peak_TOPS.fp16": [100.0, 100.0], "scenario.kv": ["fp16", "fp8-e4m3"]})
    x = sources.llm_activations(64, 1024, seed=0)
    expected = [(35.0 - qsnr_db(x, get(f).quantize(x, axis=-1))) / 35.0 for f in ("fp16", "fp8-e4m3")]
    np.testing.assert_allclose(ds.constraint_quality.values, expected)
    # fp8 KV (31.5 dB) misses a 35 dB floor
    assert ds.constraint_quality.values[0] < 0 < ds.constraint_quality.values[1]


def test_quality_constraint_and_the_format_report_read_one_source(tmp_path: Path) -> None:
    """A study's weight-quality constraint and the format-selection report's floor judge a format on the same
    tensors (the real MiniLM weights when installed, else the Gaussian)."""
    from hwdse.perf.format_selection import format_selection
    from hwdse.search import evaluate_points
    from tests.search.conftest import TINY

    path = tmp_path / "q.toml"
    study = TINY.replace("gen = 32", 'gen = 32\nweights = "int4"')
    path.write_text(study + '\n[[constraints]]\nname = "quality"\nkind = "quality"\nmin_qsnr_db = 20.0\n')
    space = load_study(path)
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [768.0], "arch.compute.peak_TOPS.fp16": [100.0],
                                 "scenario.kv": ["fp16"]})
    report = format_selection("llama-2-7b", "h100-sxm", [("int4", "bf16", "bf16")], mode="roofline")
    assert float(ds.constraint_quality.values[0]) == pytest.approx((20.0 - float(report.quality_weights_db[0])) / 20.0)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random", "qmc", "cmaes"])
def test_every_sampler_runs_a_constrained_study(tiny: Path, tmp_path: Path, sampler: str) -> None:
    from hwdse.search import run_study

    text = tiny.read_text().replace('name = "tpe"', f'name = "{sampler}"')
    if sampler == "cmaes":
        pytest.importorskip("cmaes")
        text = text.replace('[search."scenario.kv"]\nchoices = ["fp16", "fp8-e4m3"]\n', "")
        text = text.split("[[enqueue]]")[0]
    tiny.write_text(text)
    run = run_study(load_study(tiny), tmp_path / sampler, n_trials=12, batch=4)
    assert run.results.sizes["trial"] == 12
    assert all(t.constraints.keys() == {"ttft", "hardware"} for t in run.study.trials)
    assert run.results.pareto.values.any()


def test_fit_constraint_follows_a_placement_rule_within_the_pooled_capacity(tmp_path: Path) -> None:
    """Qwen3-235B-A22B at batch 700 x 4k on DGX A100 + AttAcc: with the routed experts in PIM, PIM's KV cache
    plus experts overflow its stacks although the pooled footprint fits; the fit constraint must say so."""
    from hwdse.search import evaluate_points

    root = Path(__file__).resolve().parents[2]
    study = tmp_path / "moe.toml"
    study.write_text((root / "studies" / "moe-pim-decode.toml").read_text().replace("prompt = 2048", "prompt = 4096"))
    space = load_study(study)
    ds = evaluate_points(space, {"arch.experts": ["pim", "xpu"], "arch.fc": ["xpu", "xpu"],
                                 "scenario.batch": [700.0, 700.0]})
    pooled = (ds.memory_bytes - ds.capacity_bytes).values
    assert pooled[0] <= 0 and not bool(ds.fits.values[0])  # within the sum, outside the placement rule
    assert ds.constraint_memory.values[0] > 0 and not bool(ds.feasible.values[0])
    assert (ds.constraint_memory.values[1] <= 0) == bool(ds.fits.values[1])
