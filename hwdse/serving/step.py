"""One continuous-batching step: ``decode`` sequences each add a token while ``prefill`` prompt tokens
(chunks of prompts of ``isl`` tokens) ride along, timed with the device's own per-operator model.

A step runs the token-parallel operators (projections, FFN, norms, collectives) once over all
``decode + prefill`` tokens, decode attention over each decoding sequence's KV cache, and the
prefill chunk's causal attention (its share, ``prefill / isl``, of a whole prompt's attention), plus
the engine's per-step and per-decoding-request costs. Logits are computed for the decoding
sequences. Every input may be an array or DataArray (a sweep); nothing loops over design points.
Each step's dynamic energy (the operators' ``energy_J``) comes with its time; engine costs are host
time and add no device energy beyond the static power charged over the wall time. Steps are timed at
the rated clock; the serving solvers throttle the steady state's mix of them to the system's power
budget (:mod:`hwdse.perf.power_cap`). Under speculative
decoding (:mod:`hwdse.serving.speculative`) each decoding sequence brings ``k + 1`` verify tokens to
the token-parallel operators and the logits, reads its cache once, and the step adds the draft's
``k`` passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdse._array import where
from hwdse._params import Number
from hwdse.hardware import Timing
from hwdse.hardware._base import basis_of
from hwdse.perf.phases import prefill_phase
from hwdse.perf.power_cap import Work
from hwdse.perf.uncertainty import phase_band
from hwdse.serving.engine import Engine, with_engine_kernels
from hwdse.serving.speculative import Speculative
from hwdse.workload import ModelConfig, Scenario, load_model, operator_table

__all__ = ["StepModel"]

US = 1e-6
NONE = Work(0.0, 0.0, 0.0, 0.0)


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

    def _sum(self, timings: list[Timing], keep) -> Work:
        """Seconds of the kept operators (with the engine's share of their fixed per-kernel cost) and
        their dynamic energy (J)."""
        retained = self.engine.kernel_overhead_retained
        work = NONE
        for t in timings:
            if keep(t):
                clocked = where(t.compute_s >= t.memory_s, t.compute_s, 0.0)
                seconds = t.seconds - (1 - retained) * t.serial_s.get("overhead", 0.0)
                work = work + Work(seconds, clocked, t.energy_J, t.energy_J * t.core_share).scaled(t.op.count)
        return work

    def tokens(self, tokens: Number) -> Work:
        """Token-parallel operators over ``tokens`` tokens (no attention, no logits), placed as a decode
        step's (on a GPU+PIM system the FC placement policy sees all the step's tokens)."""
        ops = operator_table(self.model, self.scenario.with_(batch=tokens), "decode")
        return self._sum(self.arch.schedule(ops, self.mode), lambda t: t.op.kind != "attention"
                         and t.op.name != "lm_head")

    def decode(self, decode: Number, kv_len: Number, queries: Number = 1) -> Work:
        """Decode attention of ``decode`` sequences at ``kv_len`` cached positions (the cache read once
        for their ``queries`` tokens each) and the logits of all their tokens."""
        if np.ndim(queries) == 0 and queries == 1:
            return self._decode_part(decode, kv_len, lambda t: t.op.kind == "attention" or t.op.name == "lm_head")
        attn = self._decode_part(decode, kv_len, lambda t: t.op.kind == "attention")
        return attn + self._decode_part(decode * queries, kv_len, lambda t: t.op.name == "lm_head")

    def _decode_part(self, rows: Number, kv_len: Number, keep) -> Work:
        seqs = np.maximum(rows, 1.0)
        ops = operator_table(self.model, self.scenario.with_(batch=seqs, prompt=kv_len), "decode", kv_len)
        return self._sum(self.arch.schedule(ops, self.mode), keep).scaled(rows / seqs)

    def draft(self, decode: Number, kv_len: Number) -> Work:
        """The draft's ``k`` passes for ``decode`` sequences (none without speculation): a draft model's
        decode steps, or the target's MTP module (one layer's share of the token-parallel operators and
        attention, plus the logits)."""
        spec = self.speculative
        if spec is None:
            return NONE
        k = spec.draft_tokens
        if spec.draft is not None:
            d = self._draft
            return (d.tokens(np.maximum(decode, 1.0)) + d.decode(decode, kv_len)).scaled(k)
        layers = self.model.num_layers
        tok = self.tokens(np.maximum(decode, 1.0))
        att = self._decode_part(decode, kv_len, lambda t: t.op.kind == "attention")
        logits = self._decode_part(decode, kv_len, lambda t: t.op.name == "lm_head")
        return ((tok + att).scaled(1 / layers) + logits).scaled(k)

    def prefill_attention(self, isl: Number) -> Work:
        """Causal attention of one whole prompt of ``isl`` tokens."""
        ops = operator_table(self.model, self.scenario.with_(batch=1, prompt=isl), "prefill")
        return self._sum(self.arch.schedule(ops, self.mode), lambda t: t.op.kind == "attention")

    def band(self, decode: Number, prefill: Number, kv_len: Number) -> Number:
        """p90 relative error band of a step with ``decode`` decoding sequences and ``prefill`` prompt tokens
        at ``kv_len`` cached positions: its operators' kernel-family bands weighted by their time
        (:func:`hwdse.perf.uncertainty.phase_band`; NaN in roofline mode, a bound)."""
        ops = operator_table(self.model, self.scenario.with_(batch=np.maximum(decode + prefill, 1.0), prompt=kv_len),
                             "decode", kv_len)
        return self._band(ops, True)

    def prefill_band(self, isl: Number) -> Number:
        """p90 relative error band of one whole prompt's prefill of ``isl`` tokens, as :meth:`band`."""
        return self._band(operator_table(self.model, self.scenario.with_(batch=1, prompt=isl), "prefill"), False)

    def _band(self, ops: list, decode: bool) -> Number:
        """Time-weighted kernel-family band of ``ops`` (a roofline bound has none: nothing is scheduled)."""
        if self.mode == "roofline":
            return np.nan
        return phase_band(self.arch, basis_of(self.arch, self.mode), prefill_phase(self.arch.schedule(ops, self.mode)),
                          decode)

    def step_s(self, decode: Number, prefill: Number, isl: Number, kv_len: Number,
               prompt_attention: Work | None = None) -> Number:
        """Seconds of one step with ``decode`` decoding sequences and ``prefill`` prompt tokens (at the
        rated clock)."""
        return self.pair(decode, prefill, isl, kv_len, prompt_attention, decode_only=False)[1].seconds

    def pair(self, decode: Number, prefill: Number, isl: Number, kv_len: Number,
             prompt_attention: Work | None = None, decode_only: bool = True) -> tuple[Work | None, Work]:
        """A decode-only step's work (None unless ``decode_only``) and the same step's carrying ``prefill``
        prompt tokens, at the rated clock (the decode attention, logits and engine cost computed once for
        both); ``prompt_attention``: :meth:`prefill_attention` of ``isl``, where the caller has it."""
        attn = self.prefill_attention(isl) if prompt_attention is None else prompt_attention
        queries = 1 if self.speculative is None else self.speculative.draft_tokens + 1
        dec = self.decode(decode, kv_len, queries) + self.draft(decode, kv_len)
        host = self.engine.step_overhead_us * US + self.engine.sequence_overhead_us * US * decode
        fixed = dec + Work(host, 0.0, 0.0, 0.0)
        verify = decode * queries
        mix = self.tokens(np.maximum(verify + prefill, 1.0)) + fixed + attn.scaled(prefill / isl)
        alone = self.tokens(np.maximum(verify, 1.0)) + fixed if decode_only else None
        return alone, mix
