"""Memory footprint of a static batch: weights, KV cache, peak activations (bytes, whole model).

Defined here (workload layer) so hardware that sizes itself to a workload (spatial chips) and
perf (the `fits` check) use one formula; :mod:`hwdse.perf.footprint` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwdse._params import Number
from hwdse.formats import get as get_format
from hwdse.workload.config import ModelConfig
from hwdse.workload.scenario import Scenario

__all__ = ["Footprint", "footprint", "LOGIT_BYTES"]

LOGIT_BYTES = 4  # logits are kept in fp32 for sampling


@dataclass(frozen=True)
class Footprint:
    """Bytes of each tensor class. The weight classes a placement moves (GPU + PIM systems) are parts of
    ``weights_bytes``: routed experts, dense FFNs (shared experts included) and the other FC layers'
    weights (attention projections, routers, lm_head); the rest of it is embeddings and norms."""

    weights_bytes: Number
    kv_cache_bytes: Number
    activation_bytes: Number
    routed_weights_bytes: Number = 0.0
    ffn_weights_bytes: Number = 0.0
    projection_weights_bytes: Number = 0.0

    @property
    def total_bytes(self) -> Number:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes

    def scaled(self, weights: Number, kv: Number, activations: Number) -> Footprint:
        """Every weight class times ``weights``, the KV cache times ``kv``, activations times ``activations``
        (one device's share of a multi-device system)."""
        return replace(self, weights_bytes=self.weights_bytes * weights, kv_cache_bytes=self.kv_cache_bytes * kv,
                       activation_bytes=self.activation_bytes * activations,
                       routed_weights_bytes=self.routed_weights_bytes * weights,
                       ffn_weights_bytes=self.ffn_weights_bytes * weights,
                       projection_weights_bytes=self.projection_weights_bytes * weights)


def footprint(model: ModelConfig, scenario: Scenario) -> Footprint:
    """Bytes resident during the run.

    KV cache: ``batch x positions x kv_elements`` elements in the KV format (``2 x kv_dim``, or
    MLA's latent + RoPE key), ``positions`` = ``prompt + gen`` per full layer and at most the window
    per windowed layer (the chunk per chunked layer: a finished chunk's pages are freed).
    Activations: the largest live set of one prefill layer (the residual stream plus
    the widest intermediate: QKV output, FFN intermediate(s), or, without FlashAttention, the
    score matrix in and out of softmax) plus fp32 logits for one token per sequence.
    Weights: each in the weights format, the routed and shared experts in ``expert_weights`` when given.
    """
    m, s = model, scenario
    wb, ab, kb = (get_format(f).bits_per_element / 8 for f in (s.weights, s.activations, s.kv))
    window = m.sliding_window or np.inf
    context = s.prompt + s.gen
    full = m.num_layers - m.windowed_layers - m.local_layers
    positions = (full * context + m.windowed_layers * np.minimum(context, window)
                 + m.local_layers * np.minimum(context, m.attention_chunk or np.inf))
    kv = s.batch * positions * m.kv_elements * kb
    tokens = s.batch * s.prompt
    ffn = (np.maximum(m.experts_per_token * m.expert_size, m.intermediate_size if m.dense_layers else 0)
           if m.is_moe else m.intermediate_size)
    widest = np.maximum(tokens * (m.q_dim + 2 * m.kv_dim), tokens * ffn * (2 if m.gated_ffn else 1))
    if not s.flash_attention:
        widest = np.maximum(widest, 2 * s.batch * m.num_heads * s.prompt * np.minimum(s.prompt, window))
    activations = (tokens * m.hidden_size + widest) * ab + s.batch * m.vocab_size * LOGIT_BYTES
    ewb = get_format(s.expert_weights).bits_per_element / 8 if s.expert_weights else wb
    shared = m.expert_params - m.routed_params
    return Footprint((m.num_params - m.expert_params) * wb + m.expert_params * ewb, kv, activations,
                     routed_weights_bytes=m.routed_params * ewb,
                     ffn_weights_bytes=m.dense_ffn_params * wb + shared * ewb,
                     projection_weights_bytes=m.projection_params * wb)
