"""Regression guard: the calibrated model's errors against measured data stay under the issue's
thresholds, computed from the COMMITTED catalog parameters (no refit here).

Thresholds (issue 7): held-out GEMM median |error| <= 10 %, decode attention <= 15 %; TensorRT-LLM
v0.9 end to end median <= 10 %, worst <= 25 %; LLMCompass GPT-3 layer (prefill, decode) within 10 %.
Every fitted set meets its threshold (see validation/report.md). The two that missed before had
a physical cause now in the model: B200 NVFP4 GEMMs never split K (gemm.no_split_k, gemm.k_step_ns)
and TensorRT-LLM decode for GQA groups above 32 runs a CUDA-core kernel per query head
(attention.decode_max_group, attention.decode_vector_fraction).
"""

import numpy as np
import pytest

from hwdse.calibration.data import validation_dir

pytestmark = pytest.mark.skipif(not (validation_dir() / "README.md").is_file(),
                                reason=f"validation data not found at {validation_dir()} (set HWDSE_VALIDATION_DIR)")

LIMIT = {"gemm": 0.10, "decode_attention": 0.15, "prefill_attention": 0.20, "vector": 0.10, "all_reduce": 0.15}


@pytest.fixture(scope="module")
def kernels():
    from hwdse.calibration.kernels import kernel_points, kernel_table

    return {r["set"]: r for r in kernel_table(kernel_points())}


@pytest.fixture(scope="module")
def trtllm():
    from hwdse.calibration.end_to_end import trtllm_table

    return trtllm_table()


def test_every_fitted_kernel_set_meets_its_threshold(kernels):
    for name, r in kernels.items():
        if r["fit"]:
            assert r["achieved_median"] <= LIMIT[r["family"]], (name, r["achieved_median"])


def test_the_sets_that_once_missed_are_scored(kernels):
    """NVFP4 GEMMs and large-group TensorRT-LLM decode stay in the scored, fitted sets."""
    for name, family in (("aic_gemm_b200_sxm_trtllm1.3.0rc20_nvfp4", "gemm"),
                         ("aic_generation_attention_h100_sxm_trtllm1.3.0rc20", "decode_attention")):
        r = kernels[name]
        assert r["fit"] and r["scored"] > 100 and r["achieved_median"] <= LIMIT[family], name


def test_large_gqa_groups_fit_like_the_rest():
    """Held-out H100 TensorRT-LLM decode rows with groups of 64 and 128 (the per-query-head kernel)."""
    from hwdse.calibration.kernels import kernel_points

    p = next(p for p in kernel_points(["h100-sxm"]) if p["set"] == "aic_generation_attention_h100_sxm_trtllm1.3.0rc20")
    large = p["scored"] & (p["group"] > 32)
    assert large.sum() > 50
    assert np.median(np.abs(p["achieved_s"][large] / p["measured_s"][large] - 1)) <= 0.15


def test_achieved_beats_roofline_everywhere(kernels):
    for name, r in kernels.items():
        assert r["achieved_median"] < r["roofline_median"], name


def test_validation_only_gemms_stay_close(kernels):
    assert kernels["llmcompass_matmul_A100"]["achieved_median"] <= 0.12


def test_trtllm_end_to_end(trtllm):
    err = np.array([abs(r["achieved_s"] / r["measured_s"] - 1) for r in trtllm])
    assert len(trtllm) == 16 and all(r["achieved_fits"] for r in trtllm)
    assert np.median(err) <= 0.10
    assert err.max() <= 0.25


def test_gpt3_layer_within_ten_percent():
    from hwdse.calibration.end_to_end import gpt3_layer_table

    for r in gpt3_layer_table():
        assert abs(r["achieved_s"] / r["measured_s"] - 1) <= 0.10, r["phase"]
