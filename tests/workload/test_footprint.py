"""The footprint's weight classes: routed experts, dense FFNs (shared experts included), the other FC layers;
with embeddings and norms they add up to the weights, each in its own format (every catalog model)."""

import pytest

from hwdse._catalog import names
from hwdse.formats import get
from hwdse.workload import Scenario, load_model
from hwdse.workload.footprint import footprint


def _ffn(m, width: int) -> int:
    """One FFN of ``width``, written out: gate/up/down (or fc1/fc2) and their biases."""
    h = m.hidden_size
    return (3 if m.gated_ffn else 2) * h * width + (((2 if m.gated_ffn else 1) * width + h) if m.mlp_bias else 0)


@pytest.mark.parametrize("name", names("models"))
def test_weight_classes_add_up_to_the_weights(name):
    m = load_model(name)
    wb, ewb = get("bf16").bits_per_element / 8, get("fp8-e4m3").bits_per_element / 8
    mem = footprint(m, Scenario(batch=1, prompt=16, gen=1, weights="bf16", expert_weights="fp8-e4m3"))
    moe = m.num_layers - m.dense_layers if m.num_experts > 1 else 0
    routed = moe * m.num_experts * _ffn(m, m.expert_size)
    shared = moe * m.shared_experts * _ffn(m, m.expert_size)
    assert mem.routed_weights_bytes == routed * ewb
    assert mem.ffn_weights_bytes == (m.num_layers - moe) * _ffn(m, m.intermediate_size) * wb + shared * ewb
    h, norm = m.hidden_size, (2 if m.norm == "layernorm" else 1) * m.hidden_size
    embeddings = (0 if m.tie_embeddings else m.vocab_size * h) + (m.learned_positions or 0) * h
    rest = embeddings + (2 * m.num_layers + 1) * norm  # two norms per layer and the final one
    moved = mem.routed_weights_bytes + mem.ffn_weights_bytes + mem.projection_weights_bytes
    assert mem.weights_bytes - moved == pytest.approx(rest * wb, rel=1e-9)


def test_qwen3_routed_experts_are_all_of_its_experts():
    """Qwen3-235B-A22B has no shared experts: its expert parameters are the routed ones; DeepSeek-V3's one
    shared expert per MoE layer is not routed."""
    qwen, deepseek = load_model("qwen3-235b-a22b"), load_model("deepseek-v3")
    assert qwen.routed_params == qwen.expert_params == 94 * 128 * 3 * 4096 * 1536
    assert deepseek.expert_params - deepseek.routed_params == 58 * 1 * 3 * 7168 * 2048
