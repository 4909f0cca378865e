"""Achieved-mode GPU timing rules (hwdse.hardware.gpu.efficiency) beyond the calibration tests."""

import pytest

from hwdse.hardware import load_arch


def test_moe_layer_quantizes_each_token_once_not_each_routed_copy():
    from hwdse.workload import Scenario, load_model, operator_table

    gpu = load_arch("h100-sxm")
    model = load_model("qwen3-235b-a22b")
    ops = {o.name: o for o in operator_table(model, Scenario(batch=4, prompt=256, weights="fp8-e4m3",
                                                             activations="fp8-e4m3"), "prefill")}
    timings = {t.op.name: t for t in gpu.schedule(list(ops.values()), "achieved")}
    g = gpu.efficiency.gemm
    tokens = 4 * 256
    want = g.quantize_passes["fp8"] * tokens * model.hidden_size * (2 + 1) / (g.bandwidth_fraction * gpu.bandwidth_Bps)
    assert timings["gate_proj"].serial_s["quantize"] == pytest.approx(want)  # not x top_k (8)
    down = tokens * model.experts_per_token * model.expert_size  # the experts' own outputs: every routed row
    assert timings["down_proj"].serial_s["quantize"] == pytest.approx(
        g.quantize_passes["fp8"] * down * 3 / (g.bandwidth_fraction * gpu.bandwidth_Bps))
