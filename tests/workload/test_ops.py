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


def test_decode_expert_weights_grow_with_batch_as_sampled_top_k_routing_predicts():
    """Uniform top-k routing without replacement per token: the distinct experts a decode step touches,
    sampled directly, match E (1 - (1 - k/E)^B) within 1 %, and so do the expert weight bytes read."""
    from hwdse.formats import get

    model = load_model("deepseek-v3")
    e, k = model.num_experts, model.experts_per_token
    rng = np.random.default_rng(0)
    per_expert = model.expert_size * model.hidden_size * get("fp8-e4m3").bits_per_element / 8
    for batch in (1, 4, 16, 64, 256):
        picks = np.argsort(rng.random((400, batch, e)), axis=-1)[..., :k]   # 400 steps of `batch` tokens
        touched = np.mean([np.unique(p).size for p in picks])
        ops = {o.name: o for o in operator_table(model, Scenario(batch=batch, prompt=512, weights="fp8-e4m3"),
                                                 "decode")}
        assert ops["gate_proj"].weight_bytes / per_expert == pytest.approx(touched, rel=0.01)
        assert ops["shared_gate_proj"].weight_bytes == pytest.approx(per_expert)  # the shared expert: always read


def test_moe_layers_shared_experts_and_dense_layers_have_their_counts():
    ops = {o.name: o for o in operator_table(load_model("deepseek-v3"), Scenario(batch=2, prompt=64), "decode")}
    assert ops["mla_attention"].count == 61 and ops["router"].count == 58
    assert ops["gate_proj"].count == ops["shared_down_proj"].count == 58 and ops["dense_gate_proj"].count == 3
    assert "k_proj" not in ops and ops["kv_a_proj"].kv_write_bytes > 0


def test_mla_decode_reads_the_latent_cache_once_for_all_heads_and_prefill_decompresses_it():
    from hwdse.formats import get

    model = load_model("deepseek-v3")
    scen = Scenario(batch=4, prompt=1024, kv="fp8-e4m3")
    dec = {o.name: o for o in operator_table(model, scen, "decode", 1024)}
    kb = get("fp8-e4m3").bits_per_element / 8
    assert dec["mla_attention"].kv_read_bytes == pytest.approx(4 * 1024 * (512 + 64) * kb)
    assert dec["mla_attention"].shape["kv_heads"] == 1
    pre = {o.name: o for o in operator_table(model, scen, "prefill")}
    assert "kv_b_proj" in pre and "q_absorb" not in pre and pre["flash_attention"].kv_read_bytes == 0


def test_tensor_parallel_mla_replicates_the_latent_cache_and_pipeline_keeps_layer_counts():
    import hwdse
    from hwdse.hardware.systems.multi import with_parallelism
    from hwdse.perf import evaluate

    h200 = hwdse.load_arch("h200")
    one = evaluate("deepseek-v3", with_parallelism(h200, 8), batch=8, prompt=1024, gen=64, weights="fp8-e4m3",
                   kv="fp8-e4m3")
    assert float(one.kv_cache_bytes) == pytest.approx(8 * (1024 + 64) * 61 * 576)  # every rank holds it all
    piped = evaluate("deepseek-v3", with_parallelism(h200, 8, 2), batch=8, prompt=1024, gen=64, weights="fp8-e4m3",
                     kv="fp8-e4m3", detail=True)
    counts = dict(zip(piped.op.values, piped.op_count.sel(phase="decode").values))
    assert counts["dense_gate_proj"] == 3 and counts["gate_proj"] == 58 and counts["mla_attention"] == 61


def test_hybrid_attention_caps_only_the_windowed_layers_and_decode_averages_exactly():
    """gpt-oss: 18 of 36 layers attend within 128 tokens. Their op reads at most the window; the other
    layers the whole cache; the closed-form decode mean equals the explicit mean over the steps across
    the point where the window starts to cap (prompt 100, 60 steps, window 128)."""
    import hwdse
    from hwdse.perf.evaluate import resolve
    from hwdse.workload.footprint import footprint

    model = load_model("gpt-oss-120b")
    assert (model.windowed_layers, model.sliding_window, model.attention_sinks) == (18, 128, True)
    ops = {o.name: o for o in operator_table(model, Scenario(batch=2, prompt=1000), "decode", 1000)}
    assert ops["flash_attention"].count == ops["swa_attention"].count == 18
    assert ops["swa_attention"].kv_read_bytes * 1000 == pytest.approx(ops["flash_attention"].kv_read_bytes * 128)
    kv = footprint(model, Scenario(batch=1, prompt=1000, gen=24, kv="bf16")).kv_cache_bytes
    assert kv == pytest.approx((18 * 1024 + 18 * 128) * model.kv_elements * 2)
    small, arch, scen = resolve("gpt-oss-20b", "h100-sxm", None, None, batch=2, prompt=100, gen=60, weights="bf16",
                                activations="bf16", kv="bf16")
    steps = [sum(t.op.count * float(np.maximum(t.compute_s, t.memory_s) + sum(t.serial_s.values()))
                 for t in arch.schedule(operator_table(small, scen, "decode", 100 + j))) for j in range(60)]
    assert float(hwdse.evaluate(small, arch, scen, mode="roofline").tpot_s) == pytest.approx(np.mean(steps), rel=1e-9)


def test_chunked_attention_reads_its_chunk_and_decode_averages_exactly():
    """Llama-4-style chunked layers (3 of 4, chunk 16 here): prefill computes causal pairs inside each
    chunk, the cache keeps one chunk per chunked layer, and the decode mean over steps that cross a
    chunk boundary (prompt 10, 30 steps) equals the explicit mean of one-token steps at each position."""
    import hwdse
    from hwdse.hardware import load_arch
    from hwdse.workload import from_hf_config
    from hwdse.workload.footprint import footprint
    from hwdse.workload.ops import chunk_extent

    tiny = from_hf_config({"model_type": "llama4_text", "hidden_size": 256, "intermediate_size": 128,
                           "intermediate_size_mlp": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
                           "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000, "num_local_experts": 4,
                           "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "attention_chunk_size": 16,
                           "no_rope_layers": [1, 1, 1, 0]}, "tiny")
    assert chunk_extent(10, 30, 16) == pytest.approx(np.mean([(p % 16) + 1 for p in range(10, 40)]))
    ops = {o.name: o for o in operator_table(tiny, Scenario(batch=1, prompt=40), "prefill")}
    assert (ops["flash_attention"].count, ops["chunked_attention"].count) == (1, 3)
    pairs = 2 * 16 * 17 / 2 + 8 * 9 / 2
    assert ops["chunked_attention"].flops * 40 * 41 / 2 == pytest.approx(ops["flash_attention"].flops * pairs)
    kv = footprint(tiny, Scenario(batch=1, prompt=40, gen=8, kv="bf16")).kv_cache_bytes
    assert kv == pytest.approx((1 * 48 + 3 * 16) * tiny.kv_elements * 2)
    gpu = load_arch("h100-sxm")
    scen = Scenario(batch=2, prompt=10, gen=30, weights="bf16", activations="bf16", kv="bf16")
    steps = [sum(t.op.count * float(np.maximum(t.compute_s, t.memory_s) + sum(t.serial_s.values()))
                 for t in gpu.schedule(operator_table(tiny, scen.with_(prompt=10 + j, gen=1), "decode", 10 + j)))
             for j in range(30)]
    assert float(hwdse.evaluate(tiny, gpu, scen, mode="roofline").tpot_s) == pytest.approx(np.mean(steps), rel=1e-9)


def test_experts_may_have_their_own_weight_format():
    """gpt-oss ships MXFP4 experts beside BF16 attention: the expert GEMMs read and multiply MXFP4, the
    attention BF16, and the footprint counts each in its format."""
    from hwdse.formats import get
    from hwdse.workload.footprint import footprint

    model = load_model("gpt-oss-120b")
    scen = Scenario(batch=1, prompt=128, gen=8, weights="bf16", activations="bf16", kv="bf16", expert_weights="mxfp4")
    ops = {o.name: o for o in operator_table(model, scen, "decode", 128)}
    assert ops["gate_proj"].operands == ("mxfp4", "bf16") and ops["q_proj"].operands == ("bf16", "bf16")
    plain = {o.name: o for o in operator_table(model, scen.with_(expert_weights=None), "decode", 128)}
    ratio = get("mxfp4").bits_per_element / get("bf16").bits_per_element
    assert ops["gate_proj"].weight_bytes == pytest.approx(plain["gate_proj"].weight_bytes * ratio)
    assert ops["q_proj"].weight_bytes == plain["q_proj"].weight_bytes
    w = footprint(model, scen).weights_bytes
    want = (model.num_params - model.expert_params) * 2 + model.expert_params * get("mxfp4").bits_per_element / 8
    assert w == pytest.approx(want) and 60e9 < w < 66e9  # ~61 GiB as the checkpoint ships
