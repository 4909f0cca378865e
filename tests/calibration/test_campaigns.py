"""Benchmark scopes of measured serving runs and the client terms a row takes."""

import pytest

from hwdse.calibration import campaigns, data
from hwdse.calibration.serving import serving_rows
from hwdse.serving import SERVER, Harness

needs_data = pytest.mark.skipif(not (data.validation_dir() / "aic_silicon_dev.csv").is_file(),
                                reason=f"aic_silicon_dev.csv not found at {data.validation_dir()}")


@needs_data
def test_a_row_takes_the_client_terms_of_its_narrowest_fitted_scope():
    row = next(r for r in serving_rows() if r.campaign == "gap vllm 0.12.0" and r.model == "qwen3-32b")
    assert campaigns.scopes(row) == ("gap vllm 0.12.0 qwen3-32b bf16 h100_sxm", "gap vllm 0.12.0 qwen3-32b bf16",
                             "gap vllm 0.12.0", "gap")
    terms = {k: Harness(latency_s=i / 100) for i, k in enumerate(campaigns.scopes(row))}
    for i, key in enumerate(campaigns.scopes(row)):
        assert campaigns.harness_of(row, terms) is terms[key]
        del terms[key]
    assert campaigns.harness_of(row, terms) is SERVER
