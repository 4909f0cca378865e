"""LLM architecture configs, read from Hugging Face ``config.json`` files offline."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from hwdse._catalog import Spec, locate, read, validate
from hwdse._errors import HwdseError

__all__ = ["ModelConfig", "load_model", "from_hf_config"]

Activation = Literal["silu", "gelu", "relu"]


class ModelConfig(Spec):
    """A decoder-only transformer, in the terms the operator tables need."""

    name: str
    family: str = Field(description="HF model_type (llama, mistral, mixtral, qwen2, opt, gpt2)")
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt
    intermediate_size: PositiveInt = Field(description="FFN width (per expert for MoE)")
    activation: Activation
    gated_ffn: bool = Field(description="gate/up/down (SwiGLU) instead of fc1/fc2")
    norm: Literal["rmsnorm", "layernorm"]
    vocab_size: PositiveInt
    tie_embeddings: bool
    learned_positions: PositiveInt | None = Field(None, description="rows of a learned position table (OPT, GPT)")
    attention_bias: bool = False
    mlp_bias: bool = False
    num_experts: PositiveInt = 1
    experts_per_token: PositiveInt = 1
    sliding_window: PositiveInt | None = None
    max_position_embeddings: PositiveInt | None = None
    source: str = ""

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def layer_params(self) -> dict[str, int]:
        """Parameters of one layer by group (attention, ffn, router, norms), biases included."""
        h, ffn, e = self.hidden_size, self.intermediate_size, self.num_experts
        attn = h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h
        if self.attention_bias:
            attn += self.q_dim + 2 * self.kv_dim + h
        expert = (3 if self.gated_ffn else 2) * h * ffn + (ffn + h if self.mlp_bias else 0)
        norms = 2 * h * (2 if self.norm == "layernorm" else 1)
        return {"attention": attn, "ffn": e * expert, "router": h * e if self.is_moe else 0, "norms": norms}

    @property
    def num_params(self) -> int:
        """All parameters (embeddings and lm_head included, counted once when tied)."""
        h = self.hidden_size
        per_layer = sum(self.layer_params.values())
        embed = self.vocab_size * h * (1 if self.tie_embeddings else 2)
        pos = (self.learned_positions or 0) * h
        final_norm = h * (2 if self.norm == "layernorm" else 1)
        return self.num_layers * per_layer + embed + pos + final_norm


class _HF(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _LlamaLike(_HF):
    """llama, mistral, mixtral, qwen2 (and other Llama-shaped) configs."""

    model_type: str
    hidden_size: PositiveInt
    intermediate_size: PositiveInt
    num_hidden_layers: PositiveInt
    num_attention_heads: PositiveInt
    num_key_value_heads: PositiveInt | None = None
    head_dim: PositiveInt | None = None
    hidden_act: str = "silu"
    vocab_size: PositiveInt
    tie_word_embeddings: bool = False
    max_position_embeddings: PositiveInt | None = None
    sliding_window: PositiveInt | None = None
    use_sliding_window: bool | None = None
    attention_bias: bool = False
    mlp_bias: bool = False
    num_local_experts: PositiveInt | None = None
    num_experts: PositiveInt | None = None
    num_experts_per_tok: PositiveInt | None = None


class _OPT(_HF):
    hidden_size: PositiveInt
    ffn_dim: PositiveInt
    num_hidden_layers: PositiveInt
    num_attention_heads: PositiveInt
    activation_function: str = "relu"
    vocab_size: PositiveInt
    max_position_embeddings: PositiveInt
    tie_word_embeddings: bool = True
    enable_bias: bool = True


class _GPT2(_HF):
    n_embd: PositiveInt
    n_layer: PositiveInt
    n_head: PositiveInt
    n_inner: PositiveInt | None = None
    activation_function: str = "gelu_new"
    vocab_size: PositiveInt
    n_positions: PositiveInt
    tie_word_embeddings: bool = True


def _activation(name: str, where: str, field: str) -> Activation:
    name = name.lower()
    for kind in ("silu", "gelu", "relu"):
        if name.startswith(kind) or (kind == "silu" and name == "swish"):
            return kind  # type: ignore[return-value]
    raise HwdseError(where, field, f"unsupported activation {name!r} (expected silu, gelu or relu)")


def from_hf_config(data: dict, name: str, where: str = "config.json") -> ModelConfig:
    """Translate a Hugging Face ``config.json`` mapping into a :class:`ModelConfig`."""
    model_type = data.get("model_type")
    if model_type is None:
        raise HwdseError(where, "model_type", "missing (needed to read the config)")
    source = str(data.get("hwdse_source", where))
    if model_type == "opt":
        c = validate(_OPT, data, where)
        return ModelConfig(
            name=name, family="opt", hidden_size=c.hidden_size, num_layers=c.num_hidden_layers,
            num_heads=c.num_attention_heads, num_kv_heads=c.num_attention_heads,
            head_dim=c.hidden_size // c.num_attention_heads, intermediate_size=c.ffn_dim,
            activation=_activation(c.activation_function, where, "activation_function"), gated_ffn=False,
            norm="layernorm", vocab_size=c.vocab_size, tie_embeddings=c.tie_word_embeddings,
            learned_positions=c.max_position_embeddings + 2,  # OPT offsets positions by 2
            attention_bias=c.enable_bias, mlp_bias=c.enable_bias,
            max_position_embeddings=c.max_position_embeddings, source=source)
    if model_type in ("gpt2", "gpt3"):
        c = validate(_GPT2, data, where)
        return ModelConfig(
            name=name, family="gpt2", hidden_size=c.n_embd, num_layers=c.n_layer, num_heads=c.n_head,
            num_kv_heads=c.n_head, head_dim=c.n_embd // c.n_head, intermediate_size=c.n_inner or 4 * c.n_embd,
            activation=_activation(c.activation_function, where, "activation_function"), gated_ffn=False,
            norm="layernorm", vocab_size=c.vocab_size, tie_embeddings=c.tie_word_embeddings,
            learned_positions=c.n_positions, attention_bias=True, mlp_bias=True,
            max_position_embeddings=c.n_positions, source=source)
    c = validate(_LlamaLike, data, where)
    heads = c.num_attention_heads
    if c.hidden_size % heads and c.head_dim is None:
        raise HwdseError(where, "head_dim", f"missing and hidden_size {c.hidden_size} is not divisible by {heads} heads")
    kv_heads = c.num_key_value_heads or heads
    if heads % kv_heads:
        raise HwdseError(where, "num_key_value_heads", f"must divide num_attention_heads ({heads}), got {kv_heads}")
    experts = c.num_local_experts or c.num_experts or 1
    uses_window = c.use_sliding_window if c.use_sliding_window is not None else model_type != "qwen2"
    return ModelConfig(
        name=name, family=model_type, hidden_size=c.hidden_size, num_layers=c.num_hidden_layers,
        num_heads=heads, num_kv_heads=kv_heads, head_dim=c.head_dim or c.hidden_size // heads,
        intermediate_size=c.intermediate_size, activation=_activation(c.hidden_act, where, "hidden_act"),
        gated_ffn=True, norm="rmsnorm", vocab_size=c.vocab_size, tie_embeddings=c.tie_word_embeddings,
        attention_bias=c.attention_bias or model_type == "qwen2", mlp_bias=c.mlp_bias,
        num_experts=experts, experts_per_token=(c.num_experts_per_tok or 1) if experts > 1 else 1,
        sliding_window=c.sliding_window if uses_window else None, max_position_embeddings=c.max_position_embeddings, source=source)


def load_model(name_or_path: str | Path | ModelConfig) -> ModelConfig:
    """A bundled model by name (``llama-2-7b``) or any Hugging Face ``config.json`` path."""
    if isinstance(name_or_path, ModelConfig):
        return name_or_path
    path = locate("models", name_or_path)
    name = path.parent.name if path.stem == "config" else path.stem
    return from_hf_config(read(path), name=name, where=str(path) if Path(name_or_path).exists() else f"models/{path.name}")
