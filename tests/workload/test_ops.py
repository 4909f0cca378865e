import numpy as np
import pytest
import xarray as xr

from hwdse.workload import Scenario, load_model, operator_table


def ops(model, phase="decode", kv_len=None, **fields):
    return {op.name: op for op in operator_table(load_model(model), Scenario(**{"flash_attention": False, **fields}), phase, kv_len)}


def test_gqa_reads_kv_heads_only():
    m = load_model("llama-2-70b")
    op = ops("llama-2-70b", batch=4, prompt=1000)["qk_matmul"]
    assert op.kv_read_bytes == 4 * 1000 * m.num_kv_heads * m.head_dim * 2
    assert op.flops == 2 * 4 * m.num_heads * 1000 * m.head_dim


def test_kv_projection_writes_cache_in_kv_format():
    op = ops("llama-3-8b", batch=2, prompt=16, kv="fp8-e4m3")["k_proj"]
    assert op.act_out_bytes == 0 and op.kv_write_bytes == 2 * 1024 * 1  # 8 KV heads x 128, one byte


def test_weight_format_sets_weight_bytes():
    fp16 = ops("llama-2-7b")["q_proj"].weight_bytes
    assert ops("llama-2-7b", weights="int8")["q_proj"].weight_bytes == pytest.approx(fp16 / 2, rel=0.01)


def test_flash_attention_moves_no_scores_and_skips_masked_tiles():
    plain = ops("llama-2-7b", "prefill", batch=1, prompt=2048)
    flash = ops("llama-2-7b", "prefill", batch=1, prompt=2048, flash_attention=True)
    assert "softmax" not in flash and "qk_matmul" not in flash
    fa = flash["flash_attention"]
    unfused = plain["qk_matmul"].flops + plain["sv_matmul"].flops + plain["softmax"].flops
    assert fa.flops == pytest.approx(unfused * (2048 * 2049 / 2) / 2048**2)
    m = load_model("llama-2-7b")
    assert fa.bytes == 4 * 2048 * m.hidden_size * 2  # Q, K, V read once, O written once


def test_moe_routes_top_k_tokens():
    m = load_model("mixtral-8x7b")
    dense_like = 2 * 64 * 2 * m.hidden_size * m.intermediate_size  # 64 tokens x top-2
    op = ops("mixtral-8x7b", "prefill", batch=1, prompt=64)["gate_proj"]
    assert op.flops == pytest.approx(dense_like)
    one = ops("mixtral-8x7b", batch=1)["gate_proj"]  # one token touches exactly top_k experts
    assert one.weight_bytes == pytest.approx(2 * m.hidden_size * m.intermediate_size * 2)
    many = ops("mixtral-8x7b", batch=256)["gate_proj"]  # 256 tokens touch all 8 experts (expected)
    assert many.weight_bytes == pytest.approx(8 * m.hidden_size * m.intermediate_size * 2, rel=1e-6)


def test_sliding_window_caps_kv():
    short = ops("mistral-7b", kv_len=4096)["qk_matmul"]
    long = ops("mistral-7b", kv_len=10000)["qk_matmul"]
    assert long.kv_read_bytes == short.kv_read_bytes


def test_array_shapes_broadcast():
    batch = xr.DataArray([1, 8, 64], dims="batch")
    op = ops("llama-2-7b", batch=batch, prompt=512)["q_proj"]
    assert op.flops.dims == ("batch",)
    np.testing.assert_allclose(op.flops.values, [2 * b * 4096 * 4096 for b in (1, 8, 64)])
