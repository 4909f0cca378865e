"""Speculative decoding: a draft proposes ``draft_tokens`` tokens per step, the target verifies them in
one pass, and the accepted prefix plus one target token are kept.

With each drafted token accepted independently with probability ``acceptance`` (a), a step yields
``(1 - a^(k+1)) / (1 - a)`` tokens per sequence (Leviathan et al., "Fast Inference from Transformers
via Speculative Decoding", ICML 2023, eq. 1). The verify pass is a decode step with ``k + 1`` query
tokens per sequence: the token-parallel operators and the logits run over all of them, attention
reads each sequence's cache once (the queries share it; at the draft depths used, 1-7, the kernel
stays bandwidth-bound). The draft is the target's own multi-token-prediction module when ``draft``
is None (DeepSeek-V3 MTP, EAGLE-style heads: one target layer and the logits per drafted token),
else a catalog model decoding ``k`` tokens on the same system.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from hwdse._catalog import Spec
from hwdse._params import count, quantity

__all__ = ["Speculative", "tokens_per_step"]


class Speculative(Spec):
    """A speculative-decoding configuration (fields sweepable)."""

    draft_tokens: count(ge=1) = Field(description="tokens the draft proposes per step (k)")
    acceptance: quantity(gt=0, le=1, unit="1") = Field(description="probability each drafted token is accepted")
    draft: str | None = Field(None, description="draft model (catalog name or config path); None: the target's "
                                                "own MTP module (one layer + logits per drafted token)")


def tokens_per_step(spec: Speculative | None) -> Any:
    """Expected tokens each decoding sequence gains per step (1 without speculation)."""
    if spec is None:
        return 1.0
    a, k = np.asarray(spec.acceptance, dtype=float), spec.draft_tokens
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a < 1, (1 - a ** (k + 1)) / np.where(a < 1, 1 - a, 1.0), k + 1.0)
