"""Formats in the evaluator: the survey's qualitative findings (arXiv 2402.16363, Sec. 3.1,
Figures 8-9: Llama-2-13b, weight-only quantization) and native vs dequantized compute paths."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hwdse.cli.main import app
from hwdse.formats import get
from hwdse.hardware import load_arch
from hwdse.hardware.dequant import ops_per_element
from hwdse.perf import evaluate
from hwdse.workload import Scenario, load_model, operator_table

LAYER_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LINEAR = LAYER_LINEAR + ["lm_head"]


def _linear_s(ds, phase: str, ops: list[str] = LINEAR) -> float:
    """Seconds per pass (prefill) or mean decode step spent in the linear layers."""
    d = ds.sel(phase=phase, op=ops)
    return float((d.op_count * d.op_time_s).sum())


def _run(weights: str, arch: str = "a6000", **fields):
    fields = {"batch": 1, "prompt": 2048, "gen": 128, **fields}
    return evaluate("llama-2-13b", arch, weights=weights, activations="fp16", kv="fp16", detail=True, mode="roofline",
                    **fields)


@pytest.mark.parametrize("arch", ["a6000", "a100-sxm-80gb"])
def test_weight_only_quantization_speeds_up_memory_bound_decode(arch: str) -> None:
    """Batch-1 decode reads every weight once per token: W4A16 ~4x, W8A16 2x faster linears."""
    base = _linear_s(_run("fp16", arch), "decode")
    w8 = _linear_s(_run("int8", arch), "decode")
    w4 = _linear_s(_run("int4", arch), "decode")
    assert base / w8 == pytest.approx(2.0, rel=0.01)
    assert base / w4 == pytest.approx(16 / get("int4").bits_per_element, rel=0.01)  # 3.88x: g128 scales
    assert base / w4 > 3.5


@pytest.mark.parametrize("arch", ["a6000", "a100-sxm-80gb"])
def test_weight_only_quantization_does_not_speed_up_prefill(arch: str) -> None:
    """A 2048-token prefill is compute-bound: W4A16 is slower by exactly the dequantization
    (the lm_head of prefill sees one row per sequence and stays memory-bound: left out)."""
    gpu = load_arch(arch)
    base = _linear_s(_run("fp16", arch), "prefill", LAYER_LINEAR)
    w4 = _linear_s(_run("int4", arch), "prefill", LAYER_LINEAR)
    scen = Scenario(batch=1, prompt=2048, weights="int4")
    table = operator_table(load_model("llama-2-13b"), scen, "prefill")
    weight_elements = sum(op.count * op.weight_bytes / (get("int4").bits_per_element / 8)
                          for op in table if op.name in LAYER_LINEAR)
    dequant_s = weight_elements * ops_per_element("int4") / (gpu.compute.vector_TFLOPS * 1e12)
    assert w4 == pytest.approx(base + dequant_s, rel=1e-9)
    assert 1.0 < w4 / base < 1.01


def test_weight_only_speedup_shrinks_with_batch() -> None:
    """As the batch grows, decode linears turn compute-bound and the W4A16 gain vanishes."""
    speedups = [_linear_s(_run("fp16", batch=b, prompt=512), "decode")
                / _linear_s(_run("int4", batch=b, prompt=512), "decode") for b in (1, 16, 64, 128, 256)]
    assert all(a > b for a, b in zip(speedups, speedups[1:]))
    assert speedups[0] > 3.5 and speedups[-1] < 1.05
    tpot = [float(_run("fp16", batch=b, prompt=512).tpot_s / _run("int4", batch=b, prompt=512).tpot_s)
            for b in (1, 128)]
    assert tpot[1] < tpot[0]


def test_fp8_w8a8_native_on_h100_upcast_on_a100() -> None:
    fp8 = dict(weights="fp8-e4m3", activations="fp8-e4m3", kv="fp16", batch=8, prompt=2048, gen=16, detail=True)
    fp16 = {**fp8, "weights": "fp16", "activations": "fp16"}
    h_fp8, h_fp16 = evaluate("llama-3-8b", "h100-sxm", **fp8, mode="roofline"), evaluate("llama-3-8b", "h100-sxm", **fp16, mode="roofline")
    gemm = dict(phase="prefill", op="gate_proj")
    assert str(h_fp8.op_compute_class.sel(**gemm).item()) == "fp8"
    # native: the FP8 peak (2x FP16) and no conversion work
    assert float(h_fp8.op_compute_s.sel(**gemm)) == pytest.approx(float(h_fp8.op_flops.sel(**gemm)) / 1978.9e12)
    assert float(h_fp8.op_compute_s.sel(**gemm)) == pytest.approx(float(h_fp16.op_compute_s.sel(**gemm)) / 2, rel=1e-3)
    assert float(h_fp8.ttft_s) < 0.6 * float(h_fp16.ttft_s)
    a_fp8, a_fp16 = evaluate("llama-3-8b", "a100-sxm-80gb", **fp8, mode="roofline"), evaluate("llama-3-8b", "a100-sxm-80gb", **fp16, mode="roofline")
    assert str(a_fp8.op_compute_class.sel(**gemm).item()) == "fp16"
    assert float(a_fp8.op_compute_s.sel(**gemm)) > float(a_fp16.op_compute_s.sel(**gemm))  # + convert ops
    assert _linear_s(a_fp8, "prefill", LAYER_LINEAR) > _linear_s(a_fp16, "prefill", LAYER_LINEAR)


def test_fp8_kv_cache_halves_decode_attention_bytes() -> None:
    kw = dict(batch=16, prompt=4096, gen=64, flash_attention=True, detail=True)
    fp16 = evaluate("llama-3-8b", "h100-sxm", kv="fp16", **kw, mode="roofline")
    fp8 = evaluate("llama-3-8b", "h100-sxm", kv="fp8-e4m3", **kw, mode="roofline")
    attn = dict(phase="decode", op="flash_attention")
    assert float(fp8.op_bytes.sel(**attn) / fp16.op_bytes.sel(**attn)) == pytest.approx(0.5, rel=0.01)
    assert float(fp8.op_time_s.sel(**attn) / fp16.op_time_s.sel(**attn)) == pytest.approx(0.5, rel=0.01)
    assert str(fp8.op_compute_class.sel(**attn).item()) == "fp16"        # FP16 queries: K/V converted
    assert float(fp8.op_compute_s.sel(**attn)) > float(fp16.op_compute_s.sel(**attn))
    assert float(fp8.kv_cache_bytes) == pytest.approx(float(fp16.kv_cache_bytes) / 2)


def test_block_scaled_formats_native_on_b200_only() -> None:
    kw = dict(weights="mxfp4", activations="mxfp8-e4m3", kv="fp8-e4m3", batch=8, prompt=1024, gen=16, detail=True)
    b200 = evaluate("llama-3-8b", "b200", **kw, mode="roofline")
    h100 = evaluate("llama-3-8b", "h100-sxm", **kw, mode="roofline")
    gemm = dict(phase="prefill", op="up_proj")
    assert str(b200.op_compute_class.sel(**gemm).item()) == "fp8"
    assert float(b200.op_compute_s.sel(**gemm)) == pytest.approx(float(b200.op_flops.sel(**gemm)) / 4500e12)
    assert str(h100.op_compute_class.sel(**gemm).item()) == "bf16"
    assert float(h100.op_compute_s.sel(**gemm)) > float(h100.op_flops.sel(**gemm)) / 989.4e12


def test_cli_evaluate_with_formats() -> None:
    args = ["evaluate", "--arch", "h100-sxm", "--model", "llama-3-8b", "--weights", "mxfp4",
            "--activations", "fp8-e4m3", "--kv", "fp8-e4m3", "--mode", "roofline", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    fp16 = json.loads(CliRunner().invoke(app, args[:5] + ["--mode", "roofline", "--json"]).output)
    assert out["weights_bytes"] == pytest.approx(fp16["weights_bytes"] * 4.25 / 16)
    assert out["tpot_s"] < fp16["tpot_s"] / 2
