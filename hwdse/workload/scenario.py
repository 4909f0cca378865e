"""Inference scenarios: batch, prompt and generation lengths, and the formats of each tensor class."""

from __future__ import annotations

from pathlib import Path

import yaml

from hwdse._catalog import Spec, validate
from hwdse._errors import HwdseError
from hwdse._params import quantity

__all__ = ["Scenario", "named_scenarios", "scenario"]

_Tokens = quantity(ge=1, unit="tokens")


class Scenario(Spec):
    """One static batch: ``batch`` sequences of ``prompt`` tokens, each generating ``gen`` tokens.

    Lengths may be numbers, numpy arrays or ``xarray.DataArray`` (a sweep). ``weights``,
    ``activations`` and ``kv`` name formats from the ``formats/`` catalog. ``flash_attention``
    (default True) is the fused kernel every serving engine runs; ``expert_weights`` (MoE) gives the
    experts' weights their own format (gpt-oss: MXFP4 experts beside BF16 attention); False materialises the score matrix
    (the LLM-Viewer convention of the survey's Table 1, kept by ``hwdse roofline``).
    """

    name: str = "custom"
    batch: quantity(ge=1, unit="sequences") = 1
    prompt: _Tokens = 512
    gen: _Tokens = 128
    weights: str = "fp16"
    expert_weights: str | None = None  # routed and shared experts' weights (None: ``weights``), e.g. gpt-oss's MXFP4
    activations: str = "fp16"
    kv: str = "fp16"
    flash_attention: bool = True  # fused attention, as serving engines run it; False: the unfused convention
    source: str = ""

    def with_(self, **changes) -> "Scenario":
        """A validated copy with some fields changed."""
        return validate(Scenario, {**dict(self), **changes}, "scenario")


def named_scenarios() -> dict[str, Scenario]:
    """The bundled usage scenarios (chat, rag, code-completion, summarization)."""
    data = yaml.safe_load((Path(__file__).parent / "scenarios.yaml").read_text())
    return {name: validate(Scenario, {"name": name, **spec}, "hwdse/workload/scenarios.yaml")
            for name, spec in data.items()}


def scenario(name: str, **changes) -> Scenario:
    """A bundled scenario by name, optionally with fields changed (``batch=16``)."""
    known = named_scenarios()
    if name not in known:
        raise HwdseError("scenario", "name", f"unknown scenario {name!r}; known: {', '.join(known)}")
    return known[name].with_(**changes) if changes else known[name]
