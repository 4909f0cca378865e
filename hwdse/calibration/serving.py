"""Measured serving runs (``shared/validation/aic_silicon_dev.csv``) against :func:`hwdse.serving.serve`.

Rows: aggregated dense runs on H100/H200/B200 (Llama-3.1-8B/70B, Qwen3-32B). A row's system is the
catalog GPU, tensor-parallel over ``tp_size`` GPUs; ``precision`` sets the formats ('' = bf16; fp8 =
FP8 E4M3 weights and activations; fp4 = NVFP4). The file does not record the KV-cache format of a
quantized sweep: ModelOpt checkpoints quantize it to FP8, an FP8 checkpoint of another quantizer may keep
it at BF16. It is FP8 unless the fit chose BF16 for the sweep on its training rows; BF16 for BF16 rows.
The split holds out one row in five by a hash of its id; the fit (:mod:`hwdse.calibration.serving_fit`)
uses the others only.

Each row comes from a benchmark campaign: its harness (``dump``: the 2026 database dump; ``gap``: the
per-version gap-analysis tables; ``dynamo``: Dynamo deployment jobs) with one engine version, and
within it from one sweep (one model and precision: one client configuration; the gap campaign of
TensorRT-LLM 1.0.0rc3 times Llama-3.1-8B's TTFT growing with OSL and Qwen3-32B's flat in it). Client
terms (:class:`hwdse.serving.Harness`: slot wait, start wave, request-path latency) are fitted on the
training rows of each deployment (a sweep on one GPU system: one client host), sweep, campaign and
harness with enough of them; a row takes the narrowest.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdse.calibration.campaigns import (
    FORMATS,
    HELD_OUT_EVERY,
    MODELS,
    SYSTEMS,
    Run,
    campaign_name,
    harness_name,
    harness_of,
    kv_of,
    sweep_name,
)
from hwdse.calibration.data import load_rows
from hwdse.hardware import load_arch
from hwdse.hardware.systems import with_parallelism
from hwdse.perf import evaluate
from hwdse.serving import serve, serve_disaggregated

__all__ = ["ServingRow", "DisaggRow", "serving_rows", "disagg_rows", "predict_disagg", "predict_rows", "static_tpot",
           "error_table"]



@dataclass(frozen=True)
class ServingRow(Run):
    """An aggregated run on ``tp`` GPUs."""

    tp: int
    held_out: bool
    harness: str     # "dump": the 2026 database dump; "gap": per-version gap-analysis tables; "dynamo": Dynamo jobs
    campaign: str    # harness, engine and engine version
    sweep: str       # campaign, model and precision: one benchmark sweep (one client configuration)


@dataclass(frozen=True)
class DisaggRow(Run):
    """A disaggregated run: pools of ``*_workers`` copies of the GPU at ``*_tp``; ``concurrency`` is the decode
    batch x decode workers (read as per worker; the file leaves batch_size empty). ``recorded``: the run's
    source records the benchmark's concurrency (``silicon_concurrency``) and it equals that product; else
    the decode batch is a server setting and the clients' load is unknown."""

    prefill_tp: int
    prefill_workers: int
    decode_tp: int
    decode_workers: int
    recorded: bool


def _model(path: str) -> str | None:
    return next((name for key, name in MODELS.items() if key in path), None)


def _dense_runs(mode: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(CSV row, the :class:`_Run` fields but ``concurrency``) of the dense ``mode`` rows on the catalog GPUs."""
    out = []
    for r in load_rows("aic_silicon_dev.csv"):
        model = _model(r["model_path"])
        if r["mode"] != mode or model is None or r["system"] not in SYSTEMS or r["precision"] not in FORMATS:
            continue
        out.append((r, dict(id=r["id"], system=r["system"], arch=SYSTEMS[r["system"]], engine=r["backend"],
                            model=model, precision=r["precision"], isl=float(r["isl"]), osl=float(r["osl"]),
                            ttft_s=float(r["silicon_ttft_ms"]) / 1e3, tpot_s=float(r["silicon_tpot_ms"]) / 1e3)))
    return out


def serving_rows(mode: str = "agg") -> list[ServingRow]:
    """Dense rows of ``mode`` on the catalog GPUs with a single pipeline stage and no attention DP."""
    return [ServingRow(**run, concurrency=float(r["batch_size"]), tp=int(r["tp_size"]),
                       held_out=int(hashlib.sha256(r["id"].encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0,
                       harness=harness_name(r), campaign=campaign_name(r), sweep=sweep_name(r, run["model"]))
            for r, run in _dense_runs(mode) if r["pp_size"] in ("", "1") and r["attention_dp_size"] in ("", "1")]


def disagg_rows() -> list[DisaggRow]:
    """Dense disaggregated rows on the catalog GPUs."""
    out = []
    for r, run in _dense_runs("disagg"):
        concurrency = float(r["decode_batch_size"]) * int(r["decode_num_workers"])
        noted = re.search(r"silicon_concurrency=(\d+)", r["silicon_data_source"])
        out.append(DisaggRow(**run, concurrency=concurrency, prefill_tp=int(r["prefill_tp_size"]),
                             prefill_workers=int(r["prefill_num_workers"]), decode_tp=int(r["decode_tp_size"]),
                             decode_workers=int(r["decode_num_workers"]),
                             recorded=noted is not None and float(noted.group(1)) == concurrency))
    return out


def _system(arch: str, tp: int, gpus: Mapping[str, Any] | None = None) -> Any:
    """The catalog GPU (or ``gpus[arch]``), tensor-parallel over ``tp`` of them."""
    gpu = (gpus or {}).get(arch) or load_arch(arch)
    return gpu if tp == 1 else with_parallelism(gpu, tp)


def _grouped(rows: Sequence[ServingRow], *keys: str) -> dict[tuple, tuple[list[int], dict[str, np.ndarray]]]:
    """Row indices and the (concurrency, isl, osl) columns of the rows sharing ``keys``."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[tuple(getattr(r, k) for k in keys)].append(i)
    return {key: (idx, {f: np.array([getattr(rows[i], f) for i in idx]) for f in ("concurrency", "isl", "osl")})
            for key, idx in groups.items()}


def predict_rows(rows: Sequence[ServingRow], engines: Mapping[str, Any] | None = None,
                 harnesses: Mapping[str, Any] | None = None,
                 kv: Mapping[str, str] | None = None, gpus: Mapping[str, Any] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (TTFT, TPOT) seconds per row; rows of one system/model/format/TP/engine/sweep are one
    call. ``engines``: engine specs by family (default: the catalog); ``harnesses``: client terms by
    sweep, campaign or harness (default: none, TTFT as the server sees it); ``kv``: KV-cache formats by
    sweep (default: the precision's); ``gpus``: GPUs by catalog name (default: the catalog's)."""
    ttft, tpot = np.empty(len(rows)), np.empty(len(rows))
    for (arch, model, precision, tp, engine, _), (idx, cols) in _grouped(
            rows, "arch", "model", "precision", "tp", "engine", "sweep").items():
        ds = serve(model, _system(arch, tp, gpus), **cols, engine=(engines or {}).get(engine, engine),
                   weights=FORMATS[precision][0], kv=kv_of(rows[idx[0]], kv or {}), mode="achieved",
                   harness=harness_of(rows[idx[0]], harnesses or {}))
        ttft[idx], tpot[idx] = np.asarray(ds.ttft_s), np.asarray(ds.tpot_s)
    return ttft, tpot


def predict_disagg(rows: Sequence[DisaggRow]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (TTFT, TPOT) seconds of disaggregated rows with the committed engines (never fit on them)."""
    ttft, tpot = np.empty(len(rows)), np.empty(len(rows))
    for i, r in enumerate(rows):
        fmt, kv = FORMATS[r.precision]
        ds = serve_disaggregated(r.model, _system(r.arch, r.prefill_tp), _system(r.arch, r.decode_tp),
                                 concurrency=r.concurrency, isl=r.isl, osl=r.osl, prefill_instances=r.prefill_workers,
                                 decode_instances=r.decode_workers, engine=r.engine, weights=fmt, kv=kv, mode="achieved")
        ttft[i], tpot[i] = float(ds.ttft_s), float(ds.tpot_s)
    return ttft, tpot


def static_tpot(rows: Sequence[ServingRow], kv: Mapping[str, str] | None = None) -> np.ndarray:
    """TPOT of the static-batch evaluator at batch = concurrency (achieved mode, fused attention; ``kv``
    as in :func:`predict_rows`): the figure serving mode replaces."""
    out = np.empty(len(rows))
    for (arch, model, precision, tp, _), (idx, cols) in _grouped(rows, "arch", "model", "precision", "tp",
                                                                  "sweep").items():
        fmt = FORMATS[precision][0]
        ds = evaluate(model, _system(arch, tp), mode="achieved", batch=cols["concurrency"], prompt=cols["isl"],
                      gen=cols["osl"], weights=fmt, activations=fmt, kv=kv_of(rows[idx[0]], kv or {}))
        out[idx] = np.asarray(ds.tpot_s)
    return out


def error_table(rows: Sequence[ServingRow], ttft: np.ndarray, tpot: np.ndarray, static: np.ndarray,
                held_out_only: bool = True) -> list[dict[str, Any]]:
    """Per system x engine x precision (and all rows of each system): rows scored, median / p90
    |relative error| of TPOT and TTFT, and the static-batch TPOT median it replaces."""
    keys = [(r.system, r.engine, r.precision or "bf16") for r in rows]
    scored = np.array([r.held_out or not held_out_only for r in rows])
    measured_tpot = np.array([r.tpot_s for r in rows])
    measured_ttft = np.array([r.ttft_s for r in rows])
    groups = sorted(set(keys)) + sorted({(k[0], "all", "all") for k in keys})
    table = []
    for key in groups:
        mask = scored & np.array([k == key or (key[1] == "all" and k[0] == key[0]) for k in keys])
        if not mask.any():
            continue
        e_tpot = np.abs(tpot[mask] / measured_tpot[mask] - 1)
        e_ttft = np.abs(ttft[mask] / measured_ttft[mask] - 1)
        e_static = np.abs(static[mask] / measured_tpot[mask] - 1)
        table.append({"system": key[0], "engine": key[1], "precision": key[2], "rows": int(mask.sum()),
                      "tpot_median": float(np.median(e_tpot)), "tpot_p90": float(np.percentile(e_tpot, 90)),
                      "ttft_median": float(np.median(e_ttft)), "ttft_p90": float(np.percentile(e_ttft, 90)),
                      "static_tpot_median": float(np.median(e_static))})
    return table
