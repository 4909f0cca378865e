"""``roofline``: the per-operator table of one prefill pass and one decode step (LLM-Viewer style)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from hwdse.hardware import Mode
from hwdse.perf.evaluate import _detail, resolve
from hwdse.perf.phases import prefill_phase
from hwdse.workload import Phase, operator_table

__all__ = ["roofline", "roofline_rows"]


def roofline(model: Any, arch: Any, *, batch: Any = 1, seq: Any = 2048, weights: str = "fp16",
             activations: str = "fp16", kv: str = "fp16", flash_attention: bool = False,
             mode: Mode = "roofline", overrides: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Per-operator roofline over dims ``(phase, op)``: prefill of ``batch x seq`` tokens and one
    decode step over a KV cache of ``seq`` positions. Values are per instance (per layer for
    layer operators); ``op_count`` gives the multiplicity. Attention is unfused by default here, on
    purpose: the table reproduces the survey's Table 1 (``attrs["attention"]`` says which)."""
    model, arch, scen = resolve(model, arch, None, overrides, batch=batch, prompt=seq, gen=1, weights=weights,
                                activations=activations, kv=kv, flash_attention=flash_attention)
    phases = [prefill_phase(arch.schedule(operator_table(model, scen, p, seq), mode))
              for p in ("prefill", "decode")]
    ds = _detail(*phases)
    ds.attrs.update(model=model.name, arch=arch.name, mode=mode, batch=str(batch), seq=str(seq),
                    attention="fused (FlashAttention)" if flash_attention else
                    "unfused: the score matrix is written and read (survey Table 1 convention; --flash fuses it)")
    return ds


def roofline_rows(ds: xr.Dataset, phase: Phase | None = None) -> list[dict[str, Any]]:
    """Rows ``name, phase, ops, bytes, intensity, attainable_ops_per_s, bound, time_s`` (scalar runs)."""
    rows = []
    for p in ([phase] if phase else list(ds.phase.values)):
        sub = ds.sel(phase=p)
        for op in sub.op.values:
            r = sub.sel(op=op)
            rows.append({"name": str(op), "phase": str(p), "ops": float(r.op_flops), "bytes": float(r.op_bytes),
                         "intensity": float(r.op_intensity),
                         "attainable_ops_per_s": float(np.nan_to_num(r.op_attainable_ops_per_s)),
                         "bound": str(r.op_bound.values), "time_s": float(r.op_time_s)})
    return rows
