"""One continuous-batching step: ``decode`` sequences each add a token while ``prefill`` prompt tokens
(chunks of prompts of ``isl`` tokens) ride along, timed with the device's own per-operator model.

A step runs the token-parallel operators (projections, FFN, norms, collectives) once over all
``decode + prefill`` tokens, decode attention over each decoding sequence's KV cache, and the
prefill chunk's causal attention (its share, ``prefill / isl``, of a whole prompt's attention), plus
the engine's per-step and per-decoding-request costs. Logits are computed for the decoding
sequences. Every input may be an array or DataArray (a sweep); nothing loops over design points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdse._params import Number
from hwdse.hardware import Timing
from hwdse.serving.engine import Engine, with_engine_kernels
from hwdse.workload import ModelConfig, Scenario, operator_table

__all__ = ["StepModel"]

US = 1e-6


@dataclass(frozen=True)
class StepModel:
    """Times engine steps of ``model`` on ``arch`` (formats from ``scenario``) under ``engine`` (its
    kernels: :func:`hwdse.serving.engine.with_engine_kernels`)."""

    model: ModelConfig
    arch: Any
    scenario: Scenario
    mode: str
    engine: Engine

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", with_engine_kernels(self.arch, self.engine))

    def _sum(self, timings: list[Timing], keep) -> Number:
        """Seconds of the kept operators, with the engine's share of their fixed per-kernel cost."""
        retained = self.engine.kernel_overhead_retained
        total: Number = 0.0
        for t in timings:
            if keep(t):
                total = total + t.op.count * (t.seconds - (1 - retained) * t.serial_s.get("overhead", 0.0))
        return total

    def tokens_s(self, tokens: Number) -> Number:
        """Token-parallel operators over ``tokens`` tokens (no attention, no logits), placed as a decode
        step's (on a GPU+PIM system the FC placement policy sees all the step's tokens)."""
        ops = operator_table(self.model, self.scenario.with_(batch=tokens), "decode")
        return self._sum(self.arch.schedule(ops, self.mode), lambda t: t.op.kind != "attention"
                         and t.op.name != "lm_head")

    def decode_s(self, decode: Number, kv_len: Number) -> Number:
        """Decode attention and logits of ``decode`` sequences at ``kv_len`` cached positions."""
        seqs = np.maximum(decode, 1.0)
        ops = operator_table(self.model, self.scenario.with_(batch=seqs, prompt=kv_len), "decode", kv_len)
        busy = self._sum(self.arch.schedule(ops, self.mode), lambda t: t.op.kind == "attention"
                         or t.op.name == "lm_head")
        return busy * decode / seqs

    def prefill_attention_s(self, isl: Number) -> Number:
        """Causal attention of one whole prompt of ``isl`` tokens."""
        ops = operator_table(self.model, self.scenario.with_(batch=1, prompt=isl), "prefill")
        return self._sum(self.arch.schedule(ops, self.mode), lambda t: t.op.kind == "attention")

    def step_s(self, decode: Number, prefill: Number, isl: Number, kv_len: Number,
               prompt_attention_s: Number | None = None) -> Number:
        """Seconds of one step with ``decode`` decoding sequences and ``prefill`` prompt tokens."""
        return self.pair_s(decode, prefill, isl, kv_len, prompt_attention_s, decode_only=False)[1]

    def pair_s(self, decode: Number, prefill: Number, isl: Number, kv_len: Number,
               prompt_attention_s: Number | None = None, decode_only: bool = True) -> tuple[Number, Number]:
        """Seconds of a decode-only step and of the same step carrying ``prefill`` prompt tokens (the
        decode attention, logits and engine cost computed once for both)."""
        attn = self.prefill_attention_s(isl) if prompt_attention_s is None else prompt_attention_s
        fixed = (self.decode_s(decode, kv_len) + self.engine.step_overhead_us * US
                 + self.engine.sequence_overhead_us * US * decode)
        alone = self.tokens_s(np.maximum(decode, 1.0)) + fixed if decode_only else None
        return alone, self.tokens_s(np.maximum(decode + prefill, 1.0)) + fixed + attn * prefill / isl
