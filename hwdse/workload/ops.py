"""Operator tables: every operator of a prefill pass or a decode step, with FLOPs and bytes.

Counting rules (the LLM-Viewer conventions of arXiv 2402.16363, Table 1, except where noted):

* a multiply-accumulate is 2 ops; softmax costs 5 ops/element (max, subtract, exp, sum, divide);
  RMSNorm 7 ops/element, LayerNorm 9 (assumption: two more for the mean); the residual add 1;
  SiLU-gated activation 5 ops/element (negate, exp, add, divide, gate multiply), GELU 8
  (tanh approximation), ReLU 1;
* norm weights (``hidden`` elements) are taken as cache-resident and move no bytes, as in the
  survey's table (they are in the weight footprint);
* bytes are counted per tensor class (weights, activations in/out, KV-cache read/write), each in
  its own format; the residual add reads **both** inputs (the paper counts one: a real add reads
  the residual stream and the branch output);
* prefill computes logits only for the last token of each sequence (as serving engines do);
* the unfused attention materialises the full ``q_len x kv_len`` score matrix (no causal skip);
  the fused FlashAttention op skips masked tiles (causal pairs only) and moves no scores: DRAM
  sees Q, K and V read once and O written once (the re-reads of K/V tiles by the thread blocks of
  the query tiles of one head run concurrently and hit the L2 cache);
* MoE experts see ``tokens x top_k / experts`` routed tokens each; the weights of the expected
  number of distinct experts touched, ``E (1 - (1 - k/E)^tokens)`` (uniform routing), are read;
  shared experts (every token) and the leading dense layers (``first_k_dense_replace``) are their
  own operators (``shared_*``, ``dense_*``) with the layer counts they run on;
* multi-head latent attention (MLA) caches one latent per token; see :func:`_mla` for the prefill
  (decompressed) and decode (absorbed) paths;
* a sliding window caps the KV extent at the window; a hybrid model (``window_layers`` of its
  layers windowed, gpt-oss) has a ``swa_attention`` op for those layers, which carries its window
  in ``shape["window"]`` so the decode average caps it alone; chunked attention (Llama 4: a token
  attends within its own chunk of ``attention_chunk`` tokens) is a ``chunked_attention`` op for
  ``chunked_layers``, whose decode extent is the exact mean over the generated tokens
  (:func:`chunk_extent`; in a serving step, over ``gen`` tokens from the step's KV length).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hwdse._errors import HwdseError
from hwdse._params import Number
from hwdse.formats import get as get_format
from hwdse.workload.config import ModelConfig
from hwdse.workload.scenario import Scenario

__all__ = ["Op", "Phase", "operator_table", "OPS_PER_ELEMENT"]

Phase = Literal["prefill", "decode"]
Kind = Literal["gemm", "attention", "elementwise", "embedding", "collective"]

OPS_PER_ELEMENT = {"softmax": 5, "rmsnorm": 7, "layernorm": 9, "add": 1, "silu": 5, "gelu": 8, "relu": 1}


@dataclass(frozen=True, slots=True)
class Op:
    """One operator instance; ``count`` instances run per forward pass (e.g. one per layer).

    Quantities are per instance: ``flops`` in ops (a MAC is 2), bytes in bytes.
    ``operands`` names the formats a matmul multiplies (weights/activations, or
    activations/KV); vector work has none. ``shape`` holds the dimensions a detailed
    (achieved-mode) model needs: ``m, n, k`` for GEMMs, attention extents for attention.
    """

    name: str
    kind: Kind
    count: int
    flops: Number
    weight_bytes: Number = 0.0
    act_in_bytes: Number = 0.0
    act_out_bytes: Number = 0.0
    kv_read_bytes: Number = 0.0
    kv_write_bytes: Number = 0.0
    operands: tuple[str, ...] = ()
    shape: Mapping[str, Number] = field(default_factory=dict)

    @property
    def bytes(self) -> Number:
        return self.weight_bytes + self.act_in_bytes + self.act_out_bytes + self.kv_read_bytes + self.kv_write_bytes

    @property
    def intensity(self) -> Number:
        """Arithmetic intensity in ops/byte."""
        return self.flops / self.bytes


def _prefill_pairs(n: Number, window: int | None) -> Number:
    """(query, key) pairs a causal kernel computes for a prompt of ``n`` tokens."""
    if window is None:
        return n * (n + 1) / 2
    m = np.minimum(n, window)
    return m * (m + 1) / 2 + (n - m) * window


def _chunked_pairs(n: Number, chunk: int) -> Number:
    """(query, key) pairs of a prompt of ``n`` tokens under chunked attention (causal inside each chunk)."""
    full = np.floor(n / chunk)
    rest = n - full * chunk
    return full * chunk * (chunk + 1) / 2 + rest * (rest + 1) / 2


def chunk_extent(start: Number, steps: Number, chunk: int) -> Number:
    """Mean keys a chunked-attention layer reads per decode step, over the ``steps`` tokens from
    position ``start`` on (a token at position ``p`` attends to ``p mod chunk + 1`` of its chunk)."""
    def below(x: Number) -> Number:  # sum of p mod chunk for p < x
        full = np.floor(x / chunk)
        rest = x - full * chunk
        return full * chunk * (chunk - 1) / 2 + rest * (rest - 1) / 2

    steps = np.maximum(steps, 1)
    return (below(start + steps) - below(start)) / steps + 1


def _mla(m: ModelConfig, s: Scenario, phase: Phase, b: Number, q_len: Number, kv_len: Number, tokens: Number,
         gemm, widths: tuple[float, float, float]) -> list[Op]:
    """Multi-head latent attention as the serving kernels run it (DeepSeek-V2 §2.1; FlashMLA, vLLM).

    The cache holds one latent ``c_kv`` (``kv_lora_rank``) and one shared RoPE key per token.
    Prefill decompresses it (``kv_b_proj``: per-head K and V) and runs causal attention with
    ``qk_nope + qk_rope`` wide queries/keys and ``v_head_dim`` values. Decode absorbs the
    up-projections: the no-RoPE query goes into latent space (``q_absorb``, W_UK per head), attention
    runs over the latent cache itself (one KV "head" of ``kv_lora + rope`` elements shared by all
    heads), and the latent context comes back per head through W_UV (``v_absorb``).
    """
    wb, ab, kb = widths
    h, H, L = m.hidden_size, m.num_heads, m.num_layers
    nope, rope, lat, v = m.qk_nope_head_dim, m.qk_rope_head_dim, m.kv_lora_rank, m.head_dim
    qk = nope + rope
    gemm_fmt, attn_fmt = (s.weights, s.activations), (s.activations, s.kv)
    if m.q_lora_rank:
        ops = [gemm("q_a_proj", tokens, m.q_lora_rank, h), gemm("q_b_proj", tokens, H * qk, m.q_lora_rank)]
    else:
        ops = [gemm("q_proj", tokens, H * qk, h)]
    ops.append(gemm("kv_a_proj", tokens, lat + rope, h, out_to_kv=True))
    softmax = OPS_PER_ELEMENT["softmax"]
    if phase == "prefill":
        pairs = _prefill_pairs(s.prompt, m.sliding_window)
        ops += [
            gemm("kv_b_proj", tokens, H * (nope + v), lat),
            Op("flash_attention", "attention", L, b * H * pairs * (2 * qk + 2 * v + softmax),
               act_in_bytes=tokens * H * (2 * qk + v) * ab, act_out_bytes=tokens * H * v * ab, operands=attn_fmt,
               shape={"batch": b, "heads": H, "kv_heads": H, "q_len": q_len, "kv_len": kv_len, "head_dim": qk}),
        ]
        return ops

    def absorb(name: str, k: int, n: int) -> Op:  # a per-head (batched) projection: H groups of k x n
        return Op(name, "gemm", L, 2 * tokens * H * k * n, weight_bytes=H * k * n * wb,
                  act_in_bytes=tokens * H * k * ab, act_out_bytes=tokens * H * n * ab, operands=gemm_fmt,
                  shape={"m": tokens, "n": n, "k": k, "groups": H})

    ops += [
        absorb("q_absorb", nope, lat),
        Op("mla_attention", "attention", L, b * H * kv_len * (2 * (lat + rope) + 2 * lat + softmax),
           act_in_bytes=tokens * H * (lat + rope) * ab, act_out_bytes=tokens * H * lat * ab,
           kv_read_bytes=b * kv_len * (lat + rope) * kb, operands=attn_fmt,
           shape={"batch": b, "heads": H, "kv_heads": 1, "q_len": q_len, "kv_len": kv_len, "head_dim": lat + rope}),
        absorb("v_absorb", lat, v),
    ]
    return ops


def operator_table(model: ModelConfig, scenario: Scenario, phase: Phase, kv_len: Number | None = None
                   ) -> tuple[Op, ...]:
    """The operators of one prefill pass or one decode step.

    ``kv_len`` (decode only) is the number of cached positions the new token attends to,
    itself included; it defaults to the prompt length.
    """
    m, s = model, scenario
    wb, ab, kb = (get_format(f).bits_per_element / 8 for f in (s.weights, s.activations, s.kv))
    expert_fmt = s.expert_weights or s.weights
    ewb = get_format(expert_fmt).bits_per_element / 8
    b = s.batch
    if phase == "prefill":
        q_len = s.prompt
        kv = s.prompt
    else:
        q_len = 1
        kv = s.prompt if kv_len is None else kv_len
    hybrid = 0 < m.windowed_layers < m.num_layers  # sliding-window layers beside full ones (gpt-oss)
    window = np.inf if m.sliding_window is None or hybrid else float(m.sliding_window)
    kv_eff = np.minimum(kv, window)
    tokens = b * q_len
    h, d, H, KVH, L = m.hidden_size, m.head_dim, m.num_heads, m.num_kv_heads, m.num_layers
    gemm_fmt = (s.weights, s.activations)
    attn_fmt = (s.activations, s.kv)

    def gemm(name: str, rows: Number, n: int, k: int, *, count: int = L, out_to_kv: bool = False,
             experts: int = 1, routed: Number = 1.0, copies: bool = False, expert: bool = False) -> Op:
        """rows x k activations times k x n weights; MoE: ``routed`` rows per row, over ``experts``;
        ``copies``: the routed rows are copies of the layer's input rows (``input_copies`` = routed);
        ``expert``: an expert's weights, in the expert format."""
        routed_rows = rows * routed
        active = experts * (1 - (1 - routed / experts) ** rows) if experts > 1 else 1
        out = routed_rows * n * ab
        moe = {"experts": experts, **({"input_copies": routed} if copies else {})} if experts > 1 else {}
        own = expert or experts > 1
        return Op(name, "gemm", count, 2 * routed_rows * n * k, weight_bytes=active * n * k * (ewb if own else wb),
                  act_in_bytes=routed_rows * k * ab, act_out_bytes=0 if out_to_kv else out,
                  kv_write_bytes=routed_rows * n * kb if out_to_kv else 0,
                  operands=(expert_fmt, s.activations) if own else gemm_fmt,
                  shape={"m": routed_rows / experts, "n": n, "k": k, "groups": experts, **moe})

    def vector(name: str, elements: Number, ops: int, inputs: int = 1, count: int = L) -> Op:
        return Op(name, "elementwise", count, ops * elements, act_in_bytes=inputs * elements * ab,
                  act_out_bytes=elements * ab, shape={"elements": elements})

    norm_ops = OPS_PER_ELEMENT[m.norm]
    attn_shape = {"batch": b, "heads": H, "kv_heads": KVH, "q_len": q_len, "kv_len": kv_eff, "head_dim": d}
    ops: list[Op] = [vector("attn_norm", tokens * h, norm_ops)]
    q_bytes = tokens * m.q_dim * ab
    qkv = [gemm("q_proj", tokens, m.q_dim, h), gemm("k_proj", tokens, m.kv_dim, h, out_to_kv=True),
           gemm("v_proj", tokens, m.kv_dim, h, out_to_kv=True)]
    if m.is_mla:  # always the fused kernels (FlashMLA-style): no unfused MLA convention is modelled
        ops += _mla(m, s, phase, b, q_len, kv_eff, tokens, gemm, (wb, ab, kb))
    elif s.flash_attention:
        ops += qkv
        groups = []  # (op, layers, keys per query-row at decode / pairs at prefill, shape extras)
        for name, layers, w in ([("flash_attention", L - m.windowed_layers, None),
                                 ("swa_attention", m.windowed_layers, m.sliding_window)] if hybrid
                                else [("flash_attention", L - m.local_layers, None)]):
            span = kv_eff if w is None else np.minimum(kv, w)
            pairs = _prefill_pairs(s.prompt, m.sliding_window if w is None and not hybrid else w)
            groups.append((name, layers, span, pairs, {"window": w} if w is not None else {}))
        if m.local_layers:  # chunked layers (Llama 4): at decode the exact mean extent over the generated tokens
            c = m.attention_chunk
            span = np.minimum(s.prompt, c) if phase == "prefill" else chunk_extent(s.prompt, s.gen, c)
            groups.append(("chunked_attention", m.local_layers, span, _chunked_pairs(s.prompt, c), {"chunk": c}))
        for name, layers, span, pairs, extra in groups:
            pairs = pairs if phase == "prefill" else span
            ops.append(Op(name, "attention", layers, b * H * pairs * (4 * d + OPS_PER_ELEMENT["softmax"]),
                          act_in_bytes=q_bytes, act_out_bytes=q_bytes, kv_read_bytes=2 * b * span * m.kv_dim * kb,
                          operands=attn_fmt, shape={**attn_shape, "kv_len": span, **extra}))
    elif hybrid or m.local_layers:
        raise HwdseError("scenario", "flash_attention", f"{m.name} mixes local and full attention layers: only the "
                                                        "fused attention is modelled for it")
    else:
        scores = b * H * q_len * kv_eff
        ops += qkv + [
            Op("qk_matmul", "attention", L, 2 * scores * d, act_in_bytes=q_bytes,
               kv_read_bytes=b * kv_eff * m.kv_dim * kb, act_out_bytes=scores * ab, operands=attn_fmt, shape=attn_shape),
            vector("softmax", scores, OPS_PER_ELEMENT["softmax"]),
            Op("sv_matmul", "attention", L, 2 * scores * d, act_in_bytes=scores * ab,
               kv_read_bytes=b * kv_eff * m.kv_dim * kb, act_out_bytes=q_bytes, operands=attn_fmt, shape=attn_shape),
        ]
    ops += [
        gemm("o_proj", tokens, h, m.q_dim),
        vector("attn_add", tokens * h, OPS_PER_ELEMENT["add"], inputs=2),
        vector("mlp_norm", tokens * h, norm_ops),
    ]
    act = m.activation

    def ffn(prefix: str, width: int, layers: int, moe: dict, routed: Number) -> list[Op]:
        """One FFN block (gated or not) over ``layers`` layers; ``routed``: rows per token."""
        routed_in = "experts" in moe  # the routed experts' inputs are copies of the tokens
        if m.gated_ffn:
            return [gemm(f"{prefix}gate_proj", tokens, width, h, count=layers, copies=routed_in, **moe),
                    gemm(f"{prefix}up_proj", tokens, width, h, count=layers, copies=routed_in, **moe),
                    vector(f"{prefix}act", tokens * routed * width, OPS_PER_ELEMENT[act], inputs=2, count=layers),
                    gemm(f"{prefix}down_proj", tokens, h, width, count=layers, **moe)]
        return [gemm(f"{prefix}fc1", tokens, width, h, count=layers, copies=routed_in, **moe),
                vector(f"{prefix}act", tokens * routed * width, OPS_PER_ELEMENT[act], count=layers),
                gemm(f"{prefix}fc2", tokens, h, width, count=layers, **moe)]

    if m.is_moe:  # routed experts on the MoE layers; shared experts and leading dense FFNs beside them
        moe_l = m.moe_layers
        ops.append(gemm("router", tokens, m.num_experts, h, count=moe_l))
        ops += ffn("", m.expert_size, moe_l, dict(experts=m.num_experts, routed=m.experts_per_token),
                   m.experts_per_token)
        if m.shared_experts:
            ops += ffn("shared_", m.expert_size * m.shared_experts, moe_l, {"expert": True}, 1)
        if m.dense_layers:
            ops += ffn("dense_", m.intermediate_size, m.dense_layers, {}, 1)
    else:
        ops += ffn("", m.intermediate_size, L, {}, 1)
    ops.append(vector("mlp_add", tokens * h, OPS_PER_ELEMENT["add"], inputs=2))

    positions = 2 if m.learned_positions else 1
    ops += [
        Op("embedding", "embedding", 1, (positions - 1) * tokens * h, weight_bytes=positions * tokens * h * wb,
           act_out_bytes=tokens * h * ab, shape={"elements": tokens * h}),
        vector("final_norm", b * h, norm_ops, count=1),
        gemm("lm_head", b, m.vocab_size, h, count=1),
    ]
    return tuple(ops)
