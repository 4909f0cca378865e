import json

import pytest

from hwdse._catalog import names
from hwdse._errors import HwdseError
from hwdse.workload import from_hf_config, load_model

# Parameter counts published with the models (model cards / papers), in billions.
PUBLISHED_PARAMS_B = {
    "llama-2-7b": 6.74, "llama-2-13b": 13.0, "llama-2-70b": 69.0, "llama-3-8b": 8.03, "llama-3-70b": 70.6,
    "mistral-7b": 7.24, "mixtral-8x7b": 46.7, "opt-13b": 12.9, "gpt3-175b": 175.0, "llama-3.1-405b": 405.0,
}


# Today's models: (total, active) in billions as published, and the relative tolerance their rounding
# allows. DeepSeek-V3: 671B / 37B (DeepSeek-V3 technical report, MTP module excluded); Qwen3-235B-A22B:
# 235B / 22B (Qwen3 model card); Mixtral 8x7B: 12.9B active (Mistral AI); Kimi K2: "1T" total (Moonshot
# model card, one significant figure); Llama 4 Maverick: 400B / 17B (Meta model card); Llama 4 Scout:
# 17B active (its 109B total counts the vision encoder, which is not modelled: see below).
PUBLISHED_MOE = {"deepseek-v3": (671.0, 37.0, 0.015), "qwen3-235b-a22b": (235.0, 22.0, 0.01),
                 "mixtral-8x7b": (46.7, 12.9, 0.01), "kimi-k2": (1000.0, None, 0.05),
                 "llama-4-maverick": (400.0, 17.0, 0.015), "llama-4-scout": (None, 17.0, 0.015)}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MOE))
def test_moe_total_and_active_parameters_match_published(name):
    total, active, tol = PUBLISHED_MOE[name]
    model = load_model(name)
    if total is not None:
        assert model.num_params / 1e9 == pytest.approx(total, rel=tol)
    if active is not None:
        assert model.active_params / 1e9 == pytest.approx(active, rel=tol)
    assert model.active_params < model.num_params


def test_published_active_counts_leave_out_the_embedding_lookup():
    """DeepSeek-V3 "37B activated" (technical report) and Kimi K2 "32B activated" (Moonshot model card) are
    whole billions; the matmul parameters a token uses (the input embedding lookup left out, as OpenAI
    counts gpt-oss) fall in both rounding intervals, the counts with the lookup (37.55B, 32.86B) in
    neither."""
    for name, published in (("deepseek-v3", 37), ("kimi-k2", 32)):
        m = load_model(name)
        lookup = m.vocab_size * m.hidden_size
        assert published - 0.5 <= (m.active_params - lookup) / 1e9 < published + 0.5
        assert not published - 0.5 <= m.active_params / 1e9 < published + 0.5


def test_gpt_oss_parameters_match_openai():
    """OpenAI's model card: 116.83B / 20.91B total, 5.13B / 3.61B active, counting the matmuls a token
    uses (the input embedding lookup excluded, the unembedding included)."""
    for name, total, active in (("gpt-oss-120b", 116.83, 5.13), ("gpt-oss-20b", 20.91, 3.61)):
        m = load_model(name)
        lookup = m.vocab_size * m.hidden_size
        assert m.num_params / 1e9 == pytest.approx(total, rel=0.005)
        assert (m.active_params - lookup) / 1e9 == pytest.approx(active, rel=0.01)


def test_mla_caches_one_latent_per_token():
    """DeepSeek-V2 §2.1.2: MLA caches (d_c + d_h^R) l elements per token, d_c = 4 d_h, d_h^R = d_h / 2."""
    v3 = load_model("deepseek-v3")
    d_h = 128
    assert v3.is_mla and v3.kv_elements * v3.num_layers == (4 * d_h + d_h // 2) * 61
    assert v3.num_kv_heads == 1 and v3.q_dim == 128 * 128
    assert (v3.dense_layers, v3.moe_layers, v3.shared_experts, v3.expert_size) == (3, 58, 1, 2048)
    k2 = load_model("kimi-k2")
    assert (k2.num_heads, k2.num_experts, k2.dense_layers) == (64, 384, 1)


def test_llama4_interleaves_moe_with_a_shared_expert_and_chunks_three_layers_in_four():
    """Llama 4 (transformers Llama4TextConfig): MoE every ``interleave_moe_layer_step``-th layer with one
    shared expert of the routed width, dense FFNs of ``intermediate_size_mlp`` between; RoPE layers
    attend within 8192-token chunks, every 4th (NoPE) layer globally. Scout's text model counts 107.8B
    against the published 109B, which includes the vision encoder."""
    scout, maverick = load_model("llama-4-scout"), load_model("llama-4-maverick")
    assert (maverick.moe_layers, maverick.dense_layers, maverick.num_experts, maverick.shared_experts) == (24, 24, 128, 1)
    assert (maverick.expert_size, maverick.intermediate_size) == (8192, 16384)
    assert (scout.moe_layers, scout.dense_layers, scout.num_experts) == (48, 0, 16)
    assert (scout.attention_chunk, scout.local_layers, scout.num_layers) == (8192, 36, 48)
    assert 0.98 < scout.num_params / 109e9 < 0.99
    assert scout.kv_elements * scout.num_layers == 2 * 8 * 128 * 48  # 196,608 elements per token at full context


def test_interleaved_moe_layers_are_refused():
    cfg = {
        "model_type": "qwen3_moe", "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 64,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "num_experts": 8,
        "num_experts_per_tok": 2, "decoder_sparse_step": 2, "vocab_size": 1000}
    with pytest.raises(HwdseError, match="decoder_sparse_step"):
        from_hf_config(cfg, "tiny")


def test_bundled_models_are_the_issue_list():
    assert set(names("models")) >= set(PUBLISHED_PARAMS_B) | set(PUBLISHED_MOE) | {"llama-3.1-8b", "llama-3.1-70b",
                                                                                "gpt-oss-120b", "gpt-oss-20b",
                                                                                "qwen3-32b"}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS_B))
def test_parameter_count_matches_published(name):
    model = load_model(name)
    assert model.num_params / 1e9 == pytest.approx(PUBLISHED_PARAMS_B[name], rel=0.015)


def test_gqa_moe_and_window_fields():
    assert load_model("llama-2-70b").num_kv_heads == 8
    assert load_model("llama-2-7b").num_kv_heads == 32
    mixtral = load_model("mixtral-8x7b")
    assert (mixtral.num_experts, mixtral.experts_per_token, mixtral.sliding_window) == (8, 2, None)
    assert load_model("mistral-7b").sliding_window == 4096
    opt = load_model("opt-13b")
    assert (opt.gated_ffn, opt.activation, opt.norm, opt.tie_embeddings) == (False, "relu", "layernorm", True)


def test_user_config_json_path(tmp_path):
    # A Qwen2-7B-shaped config (values from Qwen/Qwen2-7B config.json).
    cfg = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4, "hidden_act": "silu", "vocab_size": 152064,
           "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": 131072}
    folder = tmp_path / "Qwen2-7B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    model = load_model(folder / "config.json")
    assert model.name == "Qwen2-7B" and model.sliding_window is None and model.attention_bias
    assert model.num_params / 1e9 == pytest.approx(7.62, rel=0.01)


def test_missing_field_names_file_and_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                                "num_hidden_layers": 32, "vocab_size": 32000}))
    with pytest.raises(HwdseError) as err:
        load_model(path)
    assert str(path) in str(err.value) and "num_attention_heads" in str(err.value) and "\n" not in str(err.value)


def test_bad_gqa_ratio():
    with pytest.raises(HwdseError, match="num_key_value_heads"):
        from_hf_config({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                        "num_attention_heads": 8, "num_key_value_heads": 3, "vocab_size": 10}, "x")
