"""Serving engines (catalog ``arch/engines/``): scheduler settings and the per-step costs of real engines.

An engine adds to the kernels' own times what a continuous-batching server pays once per step
(scheduling, sampling, input preparation, the CUDA-graph launch: ``step_overhead_us``), what it pays
per decoding request per step on the host (stop checks, detokenization, request bookkeeping:
``sequence_overhead_us``), and how much of each kernel's fixed cost survives inside a CUDA graph,
where kernels launch back to back and prologues overlap the previous epilogue
(``kernel_overhead_retained``, a fraction of the fitted per-kernel ``overhead`` terms of the
achieved GPU model). Engines autotune their GEMM tactics at start-up; where the kernel tables' own
kernels never split K (``gemm.no_split_k``, the measured NVFP4 GEMMs), the engine's main loop per k
is ``k_step_retained`` of theirs (:func:`with_engine_kernels`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hwdse._catalog import Spec, catalog_dir, load_in
from hwdse._params import quantity

__all__ = ["Engine", "load_engine", "engine_names", "with_engine_kernels"]


class Engine(Spec):
    """One serving engine's scheduler and overheads (all fields sweepable)."""

    name: str
    description: str = ""
    chunked_prefill: bool = Field(description="split prompts into chunks that fill each step's token budget")
    token_budget: quantity(ge=1, unit="tokens") = Field(description="most tokens (decode + prefill) per step")
    max_batch: quantity(ge=1, unit="sequences") = Field(description="most requests in flight in the engine")
    kv_memory_fraction: quantity(gt=0, le=1, unit="1") = Field(
        description="share of device memory the engine gives to weights + activations + paged KV cache")
    step_overhead_us: quantity(ge=0, unit="us") = Field(description="per step: scheduler, sampling, graph launch")
    sequence_overhead_us: quantity(ge=0, unit="us") = Field(
        default=0.0, description="per decoding request per step: host-side request bookkeeping")
    kernel_overhead_retained: quantity(ge=0, le=1, unit="1") = Field(
        description="share of each kernel's fixed cost (achieved-mode 'overhead') left under CUDA graphs")
    k_step_retained: quantity(ge=0, le=1, unit="1") = Field(
        default=1.0, description="share of the no-split-K GEMMs' per-k main-loop step left in the engine's "
        "autotuned kernels")
    sources: dict[str, str] = Field(default_factory=dict)


def engine_names() -> list[str]:
    """Names of the engine catalog entries (``arch/engines/*.yaml``)."""
    return sorted(p.stem for p in (catalog_dir("arch") / "engines").glob("*.yaml"))


def load_engine(name_or_path: str | Engine) -> Engine:
    """An engine from ``arch/engines/`` by name, or a YAML path (an :class:`Engine` passes through)."""
    return name_or_path if isinstance(name_or_path, Engine) else load_in("arch/engines", "engine", name_or_path, Engine)


def with_engine_kernels(arch: Any, engine: Engine) -> Any:
    """``arch`` with the engine's GEMM main loops: every ``gemm.k_step_ns`` scaled by
    ``k_step_retained`` (a GPU with an achieved-mode block, or the GPU member of a multi-GPU or GPU+PIM
    system); other kinds are returned as they are."""
    eff = getattr(arch, "efficiency", None)
    gemm = getattr(eff, "gemm", None)
    if gemm is not None and getattr(gemm, "k_step_ns", None):
        steps = {cls: v * engine.k_step_retained for cls, v in gemm.k_step_ns.items()}
        return arch.model_copy(update={"efficiency": eff.model_copy(update={"gemm": gemm.model_copy(
            update={"k_step_ns": steps})})})
    for field in ("device", "xpu"):
        member = getattr(arch, field, None)
        if member is not None and not isinstance(member, str):
            return arch.model_copy(update={field: with_engine_kernels(member, engine)})
    return arch
