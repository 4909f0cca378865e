"""One continuous-batching step: ``decode`` sequences each add a token while ``prefill`` prompt tokens
(chunks of prompts of ``isl`` tokens) ride along, timed with the device's own per-operator model.

A step runs the token-parallel operators (projections, FFN, norms, collectives) once over all
``decode + prefill`` tokens, decode attention over each decoding sequence's KV cache, and the
prefill chunk's causal attention (its share, ``prefill / isl``, of a whole prompt's attention), plus
the engine's per-step and per-decoding-request costs. Logits are computed for the decoding
sequences. Every input may be an array or DataArray (a sweep); nothing loops over design points.
Each step's dynamic energy (the operators' ``energy_J``) comes with its time; engine costs are host
time and add no device energy beyond the static power charged over the wall time. Under speculative
decoding (:mod:`hwdse.serving.speculative`) each decoding sequence brings ``k + 1`` verify tokens to
the token-parallel operators and the logits, reads its cache once, and the step adds the draft's
``k`` passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdse._params import Number
from hwdse.hardware import Timing
from hwdse.serving.engine import Engine, with_engine_kernels
from hwdse.serving.speculative import Speculative
from hwdse.workload import ModelConfig, Scenario, load_model, operator_table

__all__ = ["StepModel", "Cost"]

US = 1e-6
Cost = tuple[Number, Number]
"""(seconds, dynamic joules) of some operators of a step."""


@dataclass(frozen=True)
class StepModel:
    """Times engine steps of ``model`` on ``arch`` (formats from ``scenario``) under ``engine`` (its
    kernels: :func:`hwdse.serving.engine.with_engine_kernels`)."""

    model: ModelConfig
    arch: Any
    scenario: Scenario
    mode: str
    engine: Engine
    speculative: Speculative | None = None

    def __post_init__(self) -> None:
        spec = self.speculative
        if spec is not None and spec.draft is not None:  # on the plain arch: it applies the engine kernels itself
            object.__setattr__(self, "_draft", StepModel(load_model(spec.draft), self.arch, self.scenario, self.mode,
                                                         self.engine))
        object.__setattr__(self, "arch", with_engine_kernels(self.arch, self.engine))

    def _sum(self, timings: list[Timing], keep) -> Cost:
        """Seconds of the kept operators (with the engine's share of their fixed per-kernel cost) and
        their dynamic energy (J)."""
        retained = self.engine.kernel_overhead_retained
        seconds: Number = 0.0
        joules: Number = 0.0
        for t in timings:
            if keep(t):
                seconds = seconds + t.op.count * (t.seconds - (1 - retained) * t.serial_s.get("overhead", 0.0))
                joules = joules + t.op.count * t.energy_J
        return seconds, joules

    def tokens(self, tokens: Number) -> Cost:
        """Token-parallel operators over ``tokens`` tokens (no attention, no logits), placed as a decode
        step's (on a GPU+PIM system the FC placement policy sees all the step's tokens)."""
        ops = operator_table(self.model, self.scenario.with_(batch=tokens), "decode")
        return self._sum(self.arch.schedule(ops, self.mode), lambda t: t.op.kind != "attention"
                         and t.op.name != "lm_head")

    def decode(self, decode: Number, kv_len: Number, queries: Number = 1) -> Cost:
        """Decode attention of ``decode`` sequences at ``kv_len`` cached positions (the cache read once
        for their ``queries`` tokens each) and the logits of all their tokens."""
        if np.ndim(queries) == 0 and queries == 1:
            return self._decode_part(decode, kv_len, lambda t: t.op.kind == "attention" or t.op.name == "lm_head")
        attn = self._decode_part(decode, kv_len, lambda t: t.op.kind == "attention")
        logits = self._decode_part(decode * queries, kv_len, lambda t: t.op.name == "lm_head")
        return attn[0] + logits[0], attn[1] + logits[1]

    def _decode_part(self, rows: Number, kv_len: Number, keep) -> Cost:
        seqs = np.maximum(rows, 1.0)
        ops = operator_table(self.model, self.scenario.with_(batch=seqs, prompt=kv_len), "decode", kv_len)
        seconds, joules = self._sum(self.arch.schedule(ops, self.mode), keep)
        return seconds * rows / seqs, joules * rows / seqs

    def draft(self, decode: Number, kv_len: Number) -> Cost:
        """The draft's ``k`` passes for ``decode`` sequences (0 without speculation): a draft model's
        decode steps, or the target's MTP module (one layer's share of the token-parallel operators and
        attention, plus the logits)."""
        spec = self.speculative
        if spec is None:
            return 0.0, 0.0
        k = spec.draft_tokens
        if spec.draft is not None:
            d = self._draft
            tok, att = d.tokens(np.maximum(decode, 1.0)), d.decode(decode, kv_len)
            return k * (tok[0] + att[0]), k * (tok[1] + att[1])
        layers = self.model.num_layers
        tok = self.tokens(np.maximum(decode, 1.0))
        att = self._decode_part(decode, kv_len, lambda t: t.op.kind == "attention")
        logits = self._decode_part(decode, kv_len, lambda t: t.op.name == "lm_head")
        return (k * ((tok[0] + att[0]) / layers + logits[0]), k * ((tok[1] + att[1]) / layers + logits[1]))

    def prefill_attention(self, isl: Number) -> Cost:
        """Causal attention of one whole prompt of ``isl`` tokens."""
        ops = operator_table(self.model, self.scenario.with_(batch=1, prompt=isl), "prefill")
        return self._sum(self.arch.schedule(ops, self.mode), lambda t: t.op.kind == "attention")

    def step_s(self, decode: Number, prefill: Number, isl: Number, kv_len: Number,
               prompt_attention: Cost | None = None) -> Number:
        """Seconds of one step with ``decode`` decoding sequences and ``prefill`` prompt tokens."""
        return self.pair(decode, prefill, isl, kv_len, prompt_attention, decode_only=False)[1]

    def pair(self, decode: Number, prefill: Number, isl: Number, kv_len: Number,
             prompt_attention: Cost | None = None, decode_only: bool = True) -> tuple[Number, ...]:
        """(seconds, seconds, J, J) of a decode-only step and of the same step carrying ``prefill``
        prompt tokens (the decode attention, logits and engine cost computed once for both);
        ``prompt_attention``: :meth:`prefill_attention` of ``isl``, where the caller has it."""
        attn_s, attn_j = self.prefill_attention(isl) if prompt_attention is None else prompt_attention
        queries = 1 if self.speculative is None else self.speculative.draft_tokens + 1
        dec_s, dec_j = self.decode(decode, kv_len, queries)
        draft_s, draft_j = self.draft(decode, kv_len)
        dec_s, dec_j = dec_s + draft_s, dec_j + draft_j
        fixed = dec_s + self.engine.step_overhead_us * US + self.engine.sequence_overhead_us * US * decode
        verify = decode * queries
        mix_s, mix_j = self.tokens(np.maximum(verify + prefill, 1.0))
        alone_s = alone_j = None
        if decode_only:
            tok_s, tok_j = self.tokens(np.maximum(verify, 1.0))
            alone_s, alone_j = tok_s + fixed, tok_j + dec_j
        return alone_s, mix_s + fixed + attn_s * prefill / isl, alone_j, mix_j + dec_j + attn_j * prefill / isl
