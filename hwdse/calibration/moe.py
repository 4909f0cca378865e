"""MoE serving runs of ``shared/validation/aic_silicon_dev.csv`` scored with the committed engine terms.

Rows: aggregated DeepSeek-V3/R1, Qwen3-235B-A22B and gpt-oss-120b runs on H100/H200/B200 (the
architectures the catalog models: ``deepseek-v3``, ``qwen3-235b-a22b``, ``gpt-oss-120b``). Nothing is fitted on them: the engines' and
harnesses' terms come from the dense fit (:mod:`hwdse.calibration.serving`), so every row is
held out. A row's layout maps onto one :class:`hwdse.hardware.systems.multi.MultiGPU` stage of ``tp_size x
attention_dp_size`` GPUs (= ``moe_tp_size x moe_ep_size``): ``attention_dp`` = attention_dp_size and
``ep`` = moe_ep_size; beyond 8 GPUs the nodes of 8 are joined by one 400 Gb/s InfiniBand NIC per GPU
(``ib-ndr``: the DGX H100/H200/B200 compute fabric, ConnectX-7). Rows with pipeline stages or whose
attention and expert layouts count different GPUs are left out and counted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdse._catalog import validate
from hwdse.calibration.campaigns import (
    SYSTEMS,
    Run,
    campaign_name,
    committed_harnesses,
    harness_name,
    harness_of,
    sweep_name,
)
from hwdse.calibration.data import load_rows
from hwdse.hardware import load_arch
from hwdse.hardware.systems.multi import MultiGPU, with_parallelism
from hwdse.serving import serve

__all__ = ["MoeRow", "moe_rows", "predict_moe", "moe_error_table", "MOE_MODELS"]

MOE_MODELS = {"DeepSeek-R1": "deepseek-v3", "DeepSeek-V3": "deepseek-v3", "Qwen3-235B-A22B": "qwen3-235b-a22b",
              "gpt-oss-120b": "gpt-oss-120b"}
FORMATS = {"fp8": ("fp8-e4m3", "fp8-e4m3", "fp8-e4m3"), "fp4": ("nvfp4", "nvfp4", "fp8-e4m3")}  # weights, acts, KV
# gpt-oss ships MXFP4 experts beside BF16 attention (the checkpoint's formats) and runs the experts weight-only
# with BF16 activations and KV: (weights, activations, KV, expert weights)
MODEL_FORMATS = {"gpt-oss-120b": {"fp4": ("bf16", "bf16", "bf16", "mxfp4")}}


@dataclass(frozen=True)
class MoeRow(Run):
    """One aggregated MoE run on ``devices`` GPUs: ``attention_dp`` data-parallel attention groups, ``ep``
    expert groups."""

    devices: int
    attention_dp: int
    ep: int
    harness: str
    campaign: str
    sweep: str


NODE_DEVICES = 8      # GPUs per HGX/DGX node
SCALE_OUT = "ib-ndr"  # between nodes: one ConnectX-7 NIC per GPU


def _layout(r: dict[str, str]) -> tuple[int, int, int] | None:
    """(devices, attention_dp, ep) of a row's layout, or None where the system model has no equivalent."""
    num = {k: int(r[k] or 1) for k in ("tp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size", "pp_size")}
    devices = num["tp_size"] * num["attention_dp_size"]
    if num["pp_size"] != 1 or devices != num["moe_tp_size"] * num["moe_ep_size"]:
        return None
    return devices, num["attention_dp_size"], num["moe_ep_size"]


def moe_rows() -> tuple[list[MoeRow], int]:
    """The representable MoE rows and how many MoE rows on the catalog GPUs were left out."""
    rows, skipped = [], 0
    for r in load_rows("aic_silicon_dev.csv"):
        model = next((name for key, name in MOE_MODELS.items() if key in r["model_path"]), None)
        if r["mode"] != "agg" or model is None or r["system"] not in SYSTEMS or r["precision"] not in FORMATS:
            continue
        layout = _layout(r)
        if layout is None:
            skipped += 1
            continue
        harness, campaign = harness_name(r), campaign_name(r)
        rows.append(MoeRow(id=r["id"], system=r["system"], arch=SYSTEMS[r["system"]], engine=r["backend"], model=model,
                           precision=r["precision"], isl=float(r["isl"]), osl=float(r["osl"]),
                           concurrency=float(r["batch_size"]), ttft_s=float(r["silicon_ttft_ms"]) / 1e3,
                           tpot_s=float(r["silicon_tpot_ms"]) / 1e3, devices=layout[0],
                           attention_dp=layout[1], ep=layout[2],
                           harness=harness, campaign=campaign, sweep=sweep_name(r, model)))
    return rows, skipped


def predict_moe(rows: list[MoeRow], harnesses: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (TTFT, TPOT) seconds per row with the catalog engines; one serve call per group."""
    harnesses = committed_harnesses() if harnesses is None else harnesses
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r.arch, r.model, r.precision, r.devices, r.attention_dp, r.ep, r.engine, r.campaign)].append(i)
    ttft, tpot = np.empty(len(rows)), np.empty(len(rows))
    for (arch, model, precision, devices, dp, ep, engine, _), idx in groups.items():
        system = _system(load_arch(arch), devices, dp, ep)
        weights, acts, kv, *expert = MODEL_FORMATS.get(model, FORMATS).get(precision, FORMATS[precision])
        cols = {f: np.array([getattr(rows[i], f) for i in idx]) for f in ("concurrency", "isl", "osl")}
        with np.errstate(divide="ignore", invalid="ignore"):
            ds = serve(model, system, **cols, engine=engine, weights=weights, activations=acts, kv=kv, mode="achieved",
                       harness=harness_of(rows[idx[0]], harnesses), expert_weights=expert[0] if expert else None)
        ttft[idx], tpot[idx] = np.asarray(ds.ttft_s), np.asarray(ds.tpot_s)
    return ttft, tpot


def _system(gpu: Any, devices: int, attention_dp: int, ep: int) -> Any:
    """The GPU, or a stage of ``devices`` of them in the row's layout (nodes of ``NODE_DEVICES``)."""
    if devices == 1:
        return gpu
    system = with_parallelism(gpu, devices, ep=ep, attention_dp=attention_dp)
    if devices <= NODE_DEVICES:
        return system
    return validate(MultiGPU, {**system.model_dump(mode="python", round_trip=True), "node_devices": NODE_DEVICES,
                               "scale_out": {"link": SCALE_OUT}}, f"arch {system.name}")


def moe_error_table(rows: list[MoeRow], ttft: np.ndarray, tpot: np.ndarray) -> list[dict[str, Any]]:
    """Per model x system x engine x precision, and per model: rows, median / p90 |relative error|."""
    keys = [(r.model, r.system, r.engine, r.precision) for r in rows]
    groups = sorted(set(keys)) + sorted({(k[0], "all", "all", "all") for k in keys})
    out = []
    for key in groups:
        mask = np.array([k == key or (key[1] == "all" and k[0] == key[0]) for k in keys])
        e_tpot = np.abs(tpot[mask] / np.array([r.tpot_s for r in rows])[mask] - 1)
        e_ttft = np.abs(ttft[mask] / np.array([r.ttft_s for r in rows])[mask] - 1)
        finite = np.isfinite(e_tpot) & np.isfinite(e_ttft)
        out.append({"model": key[0], "system": key[1], "engine": key[2], "precision": key[3], "rows": int(mask.sum()),
                    "unstable": int((~finite).sum()),
                    "tpot_median": float(np.median(e_tpot[finite])) if finite.any() else np.nan,
                    "tpot_p90": float(np.percentile(e_tpot[finite], 90)) if finite.any() else np.nan,
                    "ttft_median": float(np.median(e_ttft[finite])) if finite.any() else np.nan,
                    "ttft_p90": float(np.percentile(e_ttft[finite], 90)) if finite.any() else np.nan})
    return out
