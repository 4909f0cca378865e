"""Format selection across the operating regime: the recommendation per batch, from latency-bound to compute-bound.

A format that wins at batch 1 (weights read once per token: fewer bits, faster) can lose where the GEMMs
turn compute-bound (a weight-only format dequantizes to the activations' 16-bit tensor cores, a W8A8
format runs twice their rate). :func:`format_regimes` runs :func:`hwdse.perf.format_selection.format_selection`
at each batch on one basis (one mode for every batch and candidate) and says where the recommendation
changes and why: the decode GEMMs' compute class and what bounds them (memory or compute).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from hwdse._errors import HwdseError
from hwdse.hardware._base import DEFAULT_MODE, resolve_mode
from hwdse.perf.evaluate import resolve
from hwdse.perf.format_selection import format_selection

__all__ = ["BATCHES", "PER_BATCH_ATTRS", "format_regimes", "regime_summary"]

PER_BATCH_ATTRS = ("recommendation", "margin", "recommendation_kernel")  # attrs of one batch's selection

BATCHES = (1, 8, 64, 512)  # latency-bound decode to compute-bound (a modern GPU's ridge sits near 100-300 rows)
_PER_BATCH = ("ttft_s", "tpot_s", "tpot_band", "fits", "energy_j_per_token", "recommended", "meets_floor",
              "gemm_class_decode", "gemm_bound_decode")


def format_regimes(model: Any, arch: Any, triples: Sequence[tuple[str, str, str]] | None = None,
                   batches: Sequence[int] = BATCHES, *, min_qsnr_db: float = 25.0,
                   floor_tensors: Sequence[str] = ("weights", "activations"), mode: str = DEFAULT_MODE,
                   **fields: Any) -> xr.Dataset:
    """The format-selection Dataset with a ``batch`` dim on the speed variables and the recommendation
    (``recommended`` per batch); attrs ``recommendation_<batch>`` and ``regimes`` (:func:`regime_summary`).
    Quality, bits and silicon cost do not depend on batch and keep the candidate dim only."""
    if not batches or any(b < 1 for b in batches):
        raise HwdseError("formats", "batches", f"need one or more batches >= 1, got {list(batches)}")
    if "batch" in fields:
        raise HwdseError("formats", "batch", "give the regime's batches as batches=[...], not batch")
    mode = resolve_mode(mode, resolve(model, arch, None)[1])
    runs = [format_selection(model, arch, triples, min_qsnr_db=min_qsnr_db, floor_tensors=floor_tensors, mode=mode,
                             batch=int(b), **fields) for b in batches]
    first = runs[0]
    per_batch = xr.concat([r[list(_PER_BATCH)] for r in runs], dim=xr.DataArray(list(batches), dims="batch",
                                                                               name="batch"))
    ds = first.drop_vars(list(_PER_BATCH)).assign(per_batch)
    for key in PER_BATCH_ATTRS:
        ds.attrs.pop(key, None)
        for b, r in zip(batches, runs):
            ds.attrs[f"{key}_{b}"] = r.attrs.get(key, "")
    ds.attrs["regimes"] = regime_summary(ds)
    ds.attrs["scenario"] = first.attrs["scenario"].replace(f"batch={batches[0]}", "batch=" + "/".join(map(str, batches)))
    return ds


def regime_summary(ds: xr.Dataset) -> str:
    """One line per run of batches sharing a recommendation: the candidate, its decode GEMMs' class and bound,
    e.g. ``int4-g128-asym/bf16/bf16 at batch 1-64 (decode GEMMs bf16, memory-bound at 1, compute-bound at 64)``."""
    parts = []
    batches = [int(b) for b in ds.batch.values]
    picks = [ds.attrs.get(f"recommendation_{b}", "") for b in batches]
    start = 0
    for i in range(1, len(batches) + 1):
        if i < len(batches) and picks[i] == picks[start]:
            continue
        span = f"{batches[start]}" if i - 1 == start else f"{batches[start]}-{batches[i - 1]}"
        pick = picks[start]
        if pick:
            at = ds.sel(candidate=pick, batch=batches[start:i])
            bounds = list(dict.fromkeys(str(b) for b in at.gemm_bound_decode.values))
            bound = (f"{bounds[0]}-bound" if len(bounds) == 1 else
                     f"{bounds[0]}-bound at {batches[start]}, {bounds[-1]}-bound at {batches[i - 1]}")
            parts.append(f"{pick} at batch {span} (decode GEMMs {at.gemm_class_decode.values[0]}, {bound})")
        else:
            parts.append(f"none at batch {span} (no candidate meets the floor, fits and runs)")
        start = i
    return "; ".join(parts)

