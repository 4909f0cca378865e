"""LLM architecture configs, read from Hugging Face ``config.json`` files offline."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

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
    moe_intermediate_size: PositiveInt | None = Field(None, description="routed/shared expert FFN width "
                                                      "(None: intermediate_size)")
    shared_experts: int = Field(0, ge=0, description="always-active experts of every MoE layer (DeepSeek, Kimi)")
    dense_layers: int = Field(0, ge=0, description="layers of a MoE model with a dense FFN of intermediate_size "
                                                   "(first_k_dense_replace, or between interleaved MoE layers)")
    kv_lora_rank: PositiveInt | None = Field(None, description="MLA: latent KV width (None: ordinary attention)")
    q_lora_rank: PositiveInt | None = Field(None, description="MLA: latent query width (None: a full q_proj)")
    qk_rope_head_dim: int = Field(0, ge=0, description="MLA: decoupled RoPE key width, shared by the heads")
    qk_nope_head_dim: int = Field(0, ge=0, description="MLA: per-head query/key width without RoPE")
    qk_norm: bool = Field(False, description="RMSNorm on q and k per head (Qwen3)")
    attention_sinks: bool = Field(False, description="a learned sink logit per head and layer (gpt-oss)")
    sliding_window: PositiveInt | None = None
    window_layers: int | None = Field(None, ge=0, description="layers attending within sliding_window; the rest "
                                                              "full (None: every layer, Mistral-style)")
    attention_chunk: PositiveInt | None = Field(None, description="chunked attention (Llama 4): a token attends "
                                                "to the earlier tokens of its own chunk of this many")
    chunked_layers: int | None = Field(None, ge=0, description="layers with chunked attention; the rest full "
                                                               "(None: every layer)")
    max_position_embeddings: PositiveInt | None = None
    source: str = ""

    @model_validator(mode="after")
    def _one_local_pattern(self) -> "ModelConfig":
        if self.attention_chunk is not None and self.sliding_window is not None:
            raise ValueError("a model has a sliding window or chunked attention, not both")
        return self

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention (DeepSeek-V2/V3, Kimi K2): the cache holds one latent per token."""
        return self.kv_lora_rank is not None

    @property
    def expert_size(self) -> int:
        """FFN width of one routed (or shared) expert."""
        return self.moe_intermediate_size or self.intermediate_size

    @property
    def moe_layers(self) -> int:
        """Layers whose FFN is the routed experts (the rest, ``dense_layers``, a dense FFN)."""
        return self.num_layers - self.dense_layers if self.is_moe else 0

    @property
    def kv_elements(self) -> int:
        """Cached elements per token per layer: K and V of every KV head, or MLA's latent + RoPE key."""
        return self.kv_lora_rank + self.qk_rope_head_dim if self.is_mla else 2 * self.kv_dim

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def _attention_params(self) -> int:
        h, H = self.hidden_size, self.num_heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * H * qk if self.q_lora_rank
                 else h * H * qk)
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv += self.kv_lora_rank * H * (self.qk_nope_head_dim + self.head_dim)
            return q + kv + H * self.head_dim * h
        attn = h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h
        if self.attention_bias:
            attn += self.q_dim + 2 * self.kv_dim + h
        return attn + (2 * self.head_dim if self.qk_norm else 0) + (H if self.attention_sinks else 0)

    def _ffn_params(self, width: int) -> int:
        h = self.hidden_size
        bias = ((2 if self.gated_ffn else 1) * width + h) if self.mlp_bias else 0
        return (3 if self.gated_ffn else 2) * h * width + bias

    @property
    def windowed_layers(self) -> int:
        """Layers whose attention is capped at ``sliding_window`` (0 without a window)."""
        if self.sliding_window is None:
            return 0
        return self.num_layers if self.window_layers is None else self.window_layers

    @property
    def local_layers(self) -> int:
        """Layers whose attention reaches only chunk-local tokens (0 without chunked attention)."""
        if self.attention_chunk is None:
            return 0
        return self.num_layers if self.chunked_layers is None else self.chunked_layers

    @property
    def layer_params(self) -> dict[str, int]:
        """Parameters of one FFN-type layer by group (attention, ffn, router, norms), biases included:
        a MoE layer's for MoE models (all experts), else a dense layer's."""
        h, e = self.hidden_size, self.num_experts
        norms = 2 * h * (2 if self.norm == "layernorm" else 1)
        router = h * e + (e if self.mlp_bias else 0)
        if not self.is_moe:
            return {"attention": self._attention_params(), "ffn": self._ffn_params(self.intermediate_size),
                    "router": 0, "norms": norms}
        ffn = (e + self.shared_experts) * self._ffn_params(self.expert_size)
        return {"attention": self._attention_params(), "ffn": ffn, "router": router, "norms": norms}

    def _outside_layers(self) -> int:
        h = self.hidden_size
        embed = self.vocab_size * h * (1 if self.tie_embeddings else 2)
        return embed + (self.learned_positions or 0) * h + h * (2 if self.norm == "layernorm" else 1)

    def _layer(self, experts: int) -> int:
        """Parameters of one layer that uses ``experts`` expert FFNs (0: a dense-FFN layer)."""
        p = self.layer_params
        if experts == 0:
            return p["attention"] + p["norms"] + self._ffn_params(self.intermediate_size)
        return p["attention"] + p["norms"] + p["router"] + experts * self._ffn_params(self.expert_size)

    def _total(self, experts: int) -> int:
        return (self.moe_layers * self._layer(experts) + (self.num_layers - self.moe_layers) * self._layer(0)
                + self._outside_layers())

    @property
    def num_params(self) -> int:
        """All parameters (embeddings and lm_head included, counted once when tied; an MTP module,
        a separate checkpoint part, excluded)."""
        return self._total(self.num_experts + self.shared_experts)

    @property
    def expert_params(self) -> int:
        """Parameters of the routed and shared experts of every MoE layer (their own weight format)."""
        return self.moe_layers * (self.num_experts + self.shared_experts) * self._ffn_params(self.expert_size)

    @property
    def routed_params(self) -> int:
        """Parameters of the routed experts of every MoE layer (``expert_params`` less the shared experts)."""
        return self.moe_layers * self.num_experts * self._ffn_params(self.expert_size)

    @property
    def dense_ffn_params(self) -> int:
        """Parameters of the dense FFNs: every layer's of a dense model, the ``dense_layers``' of a MoE model."""
        return (self.num_layers - self.moe_layers) * self._ffn_params(self.intermediate_size)

    @property
    def projection_params(self) -> int:
        """Parameters of the FC layers outside the FFNs: every layer's attention block (projections with their
        biases, per-head norms and sinks), the MoE routers and lm_head (the embedding table when tied)."""
        p = self.layer_params
        return self.num_layers * p["attention"] + self.moe_layers * p["router"] + self.vocab_size * self.hidden_size

    @property
    def active_params(self) -> int:
        """Parameters one token uses: every layer's attention and norms, the dense FFNs, the shared and
        ``experts_per_token`` routed experts and the router of each MoE layer, embeddings and lm_head."""
        return self._total(self.experts_per_token + self.shared_experts)


class _HF(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _LlamaLike(_HF):
    """llama, mistral, mixtral, qwen2/qwen3(-moe), deepseek_v3/kimi_k2 (MLA + fine-grained MoE), gpt_oss and
    llama4_text (interleaved MoE with a shared expert, chunked attention) configs."""

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
    n_routed_experts: PositiveInt | None = None
    num_experts_per_tok: PositiveInt | None = None
    moe_intermediate_size: PositiveInt | None = None
    n_shared_experts: int | None = None
    first_k_dense_replace: int = 0
    moe_layer_freq: int = 1
    decoder_sparse_step: int = 1
    mlp_only_layers: list[int] = []
    kv_lora_rank: PositiveInt | None = None
    q_lora_rank: PositiveInt | None = None
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: PositiveInt | None = None
    layer_types: list[str] | None = None
    interleave_moe_layer_step: PositiveInt = 1
    intermediate_size_mlp: PositiveInt | None = None
    attention_chunk_size: PositiveInt | None = None
    no_rope_layers: list[int] | None = None


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
    if "text_config" in data:  # a multimodal checkpoint (Llama 4): the language model's own config
        return from_hf_config({**data["text_config"], "hwdse_source": source}, name, where)
    c = validate(_LlamaLike, data, where)
    heads = c.num_attention_heads
    if c.hidden_size % heads and c.head_dim is None:
        raise HwdseError(where, "head_dim", f"missing and hidden_size {c.hidden_size} is not divisible by {heads} heads")
    kv_heads = c.num_key_value_heads or heads
    if heads % kv_heads:
        raise HwdseError(where, "num_key_value_heads", f"must divide num_attention_heads ({heads}), got {kv_heads}")
    experts = c.num_local_experts or c.num_experts or c.n_routed_experts or 1
    for field, value in (("moe_layer_freq", c.moe_layer_freq), ("decoder_sparse_step", c.decoder_sparse_step)):
        if experts > 1 and value != 1:
            raise HwdseError(where, field, f"interleaved dense and MoE layers ({field} {value}) are not modelled; "
                                           "every layer after first_k_dense_replace must be MoE")
    if experts > 1 and c.mlp_only_layers:
        raise HwdseError(where, "mlp_only_layers", "dense layers between MoE layers are not modelled")
    uses_window = c.use_sliding_window if c.use_sliding_window is not None else model_type not in (
        "qwen2", "qwen3", "qwen3_moe")
    gpt_oss = model_type == "gpt_oss"
    mla = c.kv_lora_rank is not None
    llama4 = model_type == "llama4_text"  # every MoE layer has one shared expert of the routed experts' width
    step = c.interleave_moe_layer_step
    if experts > 1 and step > 1 and c.first_k_dense_replace:
        raise HwdseError(where, "interleave_moe_layer_step", "interleaved MoE layers after dense-first layers are not modelled")
    chunked = None
    if c.attention_chunk_size is not None and c.no_rope_layers is not None:  # RoPE layers chunked, NoPE layers global
        chunked = sum(1 for x in c.no_rope_layers if x)
    windowed = None
    if c.layer_types is not None:  # hybrid attention: sliding-window layers beside full ones (gpt-oss)
        unknown = sorted(set(c.layer_types) - {"sliding_attention", "full_attention"})
        if unknown:
            raise HwdseError(where, "layer_types", f"unknown attention type {unknown[0]!r} "
                                                   "(expected sliding_attention or full_attention)")
        windowed = c.layer_types.count("sliding_attention")
    if mla and (c.v_head_dim is None or not c.qk_nope_head_dim):
        raise HwdseError(where, "v_head_dim", "an MLA config (kv_lora_rank) needs v_head_dim and qk_nope_head_dim")
    return ModelConfig(
        name=name, family=model_type, hidden_size=c.hidden_size, num_layers=c.num_hidden_layers,
        num_heads=heads, num_kv_heads=1 if mla else kv_heads,
        head_dim=c.v_head_dim if mla else (c.head_dim or c.hidden_size // heads),
        intermediate_size=c.intermediate_size_mlp if llama4 and c.intermediate_size_mlp else c.intermediate_size,
        activation=_activation(c.hidden_act, where, "hidden_act"),
        gated_ffn=True, norm="rmsnorm", vocab_size=c.vocab_size, tie_embeddings=c.tie_word_embeddings,
        attention_bias=c.attention_bias or model_type == "qwen2", mlp_bias=c.mlp_bias or gpt_oss,
        num_experts=experts, experts_per_token=(c.num_experts_per_tok or 1) if experts > 1 else 1,
        moe_intermediate_size=(c.intermediate_size if llama4 else c.moe_intermediate_size) if experts > 1 else None,
        shared_experts=(1 if llama4 else c.n_shared_experts or 0) if experts > 1 else 0,
        dense_layers=(c.first_k_dense_replace or c.num_hidden_layers - c.num_hidden_layers // step) if experts > 1 else 0,
        kv_lora_rank=c.kv_lora_rank, q_lora_rank=c.q_lora_rank if mla else None,
        qk_rope_head_dim=c.qk_rope_head_dim if mla else 0, qk_nope_head_dim=c.qk_nope_head_dim if mla else 0,
        qk_norm=model_type in ("qwen3", "qwen3_moe"), attention_sinks=gpt_oss,
        sliding_window=c.sliding_window if uses_window and windowed != 0 else None, window_layers=windowed,
        attention_chunk=c.attention_chunk_size, chunked_layers=chunked,
        max_position_embeddings=c.max_position_embeddings, source=source)


def load_model(name_or_path: str | Path | ModelConfig) -> ModelConfig:
    """A bundled model by name (``llama-2-7b``) or any Hugging Face ``config.json`` path (parsed once per
    version of the file: a changed modification time reads it again)."""
    if isinstance(name_or_path, ModelConfig):
        return name_or_path
    try:
        path = _located(name_or_path)
        version = path.stat().st_mtime_ns
    except OSError:  # moved or removed since it was found: look again
        _located.cache_clear()
        path = _located(name_or_path)
        version = path.stat().st_mtime_ns
    return _parsed(str(name_or_path), path, version)


@lru_cache(maxsize=256)
def _located(name_or_path: str | Path) -> Path:
    """The file of a model name or path (:func:`hwdse._catalog.locate`), found once (the modification time
    is read on every load)."""
    return locate("models", name_or_path)


@lru_cache(maxsize=64)
def _parsed(name_or_path: str, path: Path, mtime_ns: int) -> ModelConfig:
    """The model of ``name_or_path`` (found at ``path``) as of the file's ``mtime_ns``."""
    name = path.parent.name if path.stem == "config" else path.stem
    where = str(path) if Path(name_or_path).exists() else f"models/{path.name}"
    return from_hf_config(read(path), name=name, where=where)
