"""Speculative decoding in serving: tokens per step, the verify pass and the draft's cost."""

import numpy as np
import pytest

from hwdse.serving import serve
from hwdse.serving.speculative import Speculative, tokens_per_step


@pytest.mark.parametrize("k, a", [(1, 0.5), (3, 0.7), (5, 0.9), (4, 1.0)])
def test_tokens_per_step_matches_sampled_acceptance(k, a):
    """Each drafted token is accepted with probability a until the first rejection; the target adds one."""
    rng = np.random.default_rng(0)
    accepted = np.cumprod(rng.random((200_000, k)) < a, axis=1).sum(axis=1) + 1
    assert float(tokens_per_step(Speculative(draft_tokens=k, acceptance=a))) == pytest.approx(accepted.mean(), rel=0.01)
    assert tokens_per_step(None) == 1.0


def _tpot(speculative=None, concurrency=1):
    ds = serve("llama-3.1-70b", "dgx-h100", concurrency=concurrency, isl=1024, osl=512, weights="fp8-e4m3",
               mode="achieved", speculative=speculative)
    return float(ds.tpot_s), ds


def test_speculation_pays_only_when_drafts_are_accepted():
    """At batch 1 the verify pass of 4 tokens costs about one memory-bound decode step, so full
    acceptance cuts TPOT by more than half; near-zero acceptance pays the verify and the draft for
    nothing; TPOT falls as acceptance rises; a separate draft model costs more than the MTP module."""
    plain, _ = _tpot()
    sure, ds = _tpot(Speculative(draft_tokens=3, acceptance=1.0))
    never, _ = _tpot(Speculative(draft_tokens=3, acceptance=1e-6))
    assert sure < plain / 2 and never > plain
    curve = [_tpot(Speculative(draft_tokens=3, acceptance=a))[0] for a in (0.3, 0.6, 0.9)]
    assert curve[0] > curve[1] > curve[2]
    drafted, _ = _tpot(Speculative(draft_tokens=3, acceptance=0.6, draft="llama-3.1-8b"))
    assert drafted > curve[1]
    assert '"draft_tokens": 3' in ds.attrs["speculative"]


def test_speculation_keeps_the_traffic_balance():
    """Closed loop: throughput = request rate x osl, and the decoding requests obey Little's law with
    the shorter TPOT."""
    tpot, ds = _tpot(Speculative(draft_tokens=2, acceptance=0.8), concurrency=32)
    assert float(ds.throughput_tok_s) == pytest.approx(float(ds.request_rate) * 512)
    assert float(ds.requests_decoding) == pytest.approx(float(ds.request_rate) * 511 * tpot, rel=1e-3)  # to the bisection's 2^-12
