"""The serving fit: a quantized sweep's KV-cache format is what its TPOTs determine.

Needs ``shared/validation/aic_silicon_dev.csv`` (skips with the reason when absent).
"""

from dataclasses import replace

import pytest

from hwdse.perf import calibration_data as data
from hwdse.serving import validation as v
from hwdse.serving import validation_fit as vf

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
    assert v.kv_of(made[0], {}) == "fp8-e4m3"
