"""The serving fit: a quantized sweep's KV-cache format is what its TPOTs determine.

Needs ``shared/validation/aic_silicon_dev.csv`` (skips with the reason when absent).
"""

from dataclasses import replace

import pytest

from hwdse.calibration import campaigns, data
from hwdse.calibration import serving as v
from hwdse.calibration import serving_fit as vf

needs_data = pytest.mark.skipif(not (data.validation_dir() / "aic_silicon_dev.csv").is_file(),
                                reason=f"aic_silicon_dev.csv not found at {data.validation_dir()}")


@needs_data
@pytest.mark.parametrize("truth", vf.KV_CHOICES)
def test_the_fit_recovers_a_sweeps_kv_cache_format(truth):
    """A quantized sweep whose TPOTs are what the model predicts with ``truth`` KV gets ``truth`` back;
    a sweep of fewer than MIN_CAMPAIGN_ROWS training rows keeps its precision's default."""
    from hwdse.serving import load_engine

    rows = [r for r in v.serving_rows() if r.sweep == "gap sglang 0.5.6.post2 llama-3-8b fp8" and not r.held_out]
    engines = {"sglang": load_engine("sglang")}
    tpot = v.predict_rows(rows, engines, {}, {rows[0].sweep: truth})[1]
    made = [replace(r, tpot_s=float(t)) for r, t in zip(rows, tpot)]
    assert vf._fit_kv(made, engines, {}) == {rows[0].sweep: truth}
    assert vf._fit_kv(made[: vf.MIN_CAMPAIGN_ROWS - 1], engines, {}) == {}
    assert campaigns.kv_of(made[0], {}) == "fp8-e4m3"


@needs_data
def test_the_fit_gives_each_deployment_of_a_sweep_its_request_path_latency():
    """A sweep run on two GPU systems whose TTFTs are what the model predicts with a 20 ms request-path
    latency on one host and 80 ms on the other: each deployment (sweep x system) gets its own back."""
    from hwdse.serving import Harness, load_engine

    sweep = "dump trtllm llama-3-70b fp8"
    rows = [r for r in v.serving_rows() if r.sweep == sweep and not r.held_out and r.concurrency <= 16]
    truth = {f"{sweep} b200_sxm": Harness(start_wave=0.1, latency_s=0.08),
             f"{sweep} h200_sxm": Harness(start_wave=0.1, latency_s=0.02)}
    engines = {"trtllm": load_engine("trtllm")}
    ttft = v.predict_rows(rows, engines, truth, {})[0]
    made = [replace(r, ttft_s=float(t)) for r, t in zip(rows, ttft)]
    assert {r.system for r in made} == {"b200_sxm", "h200_sxm"}
    assert all(sum(campaigns.scopes(r)[0] == k for r in made) >= vf.MIN_CAMPAIGN_ROWS for k in truth)
    fitted = vf._fit_harnesses(made, engines, {})
    assert set(truth) <= set(fitted) and campaigns.harness_of(made[0], fitted) is fitted[campaigns.scopes(made[0])[0]]
    for key, h in truth.items():
        assert fitted[key].latency_s == pytest.approx(h.latency_s, abs=0.005), key
