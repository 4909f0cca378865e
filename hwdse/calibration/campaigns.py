"""What every measured serving run of ``aic_silicon_dev.csv`` shares: its record, the benchmark scopes it
belongs to (deployment, sweep, campaign, harness), and the client terms and KV-cache formats fitted per
scope (``validation/serving_fit.yaml``). Dense (:mod:`~hwdse.calibration.serving`) and MoE
(:mod:`~hwdse.calibration.moe`) rows both build on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwdse._catalog import catalog_dir
from hwdse.serving import SERVER, Harness

__all__ = ["Run", "harness_name", "campaign_name", "sweep_name", "scopes", "harness_of", "kv_of", "fit_path",
           "committed_harnesses", "committed_kv", "SYSTEMS", "MODELS", "FORMATS", "HELD_OUT_EVERY", "FIT_FILE"]

SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200"}
MODELS = {"Llama-3.1-8B": "llama-3-8b", "Llama-3.1-70B": "llama-3-70b", "Qwen3-32B": "qwen3-32b"}
FORMATS = {"": ("bf16", "bf16"), "fp8": ("fp8-e4m3", "fp8-e4m3"), "fp4": ("nvfp4", "fp8-e4m3")}  # weights, KV
HELD_OUT_EVERY = 5
FIT_FILE = "serving_fit.yaml"


@dataclass(frozen=True)
class Run:
    """What every measured serving run records (seconds; lengths in tokens)."""

    id: str
    system: str
    arch: str
    engine: str
    model: str
    precision: str
    isl: float
    osl: float
    concurrency: float
    ttft_s: float
    tpot_s: float


def harness_name(r: dict[str, str]) -> str:
    """The benchmark harness a CSV row came from (``dump``, ``gap`` or ``dynamo``)."""
    if not r["backend_version"]:
        return "dump"
    return "dynamo" if "gtl_job_id=" in r["silicon_data_source"] else "gap"


def campaign_name(r: dict[str, str]) -> str:
    """A CSV row's campaign: harness, engine and engine version."""
    return " ".join(filter(None, (harness_name(r), r["backend"], r["backend_version"])))


def sweep_name(r: dict[str, str], model: str) -> str:
    """A CSV row's sweep: campaign, model and precision (one benchmark client configuration)."""
    return f"{campaign_name(r)} {model} {r['precision'] or 'bf16'}"


def scopes(row: Run) -> tuple[str, str, str, str]:
    """The benchmark scopes of ``row``, narrowest first: its deployment (the sweep on one GPU system: one
    client host and engine build), sweep, campaign and harness."""
    return f"{row.sweep} {row.system}", row.sweep, row.campaign, row.harness


def harness_of(row: Run, harnesses: Mapping[str, Any]) -> Any:
    """The client terms of ``row``: those of its narrowest scope that has them, else none."""
    return next((harnesses[k] for k in scopes(row) if k in harnesses), SERVER)


def kv_of(row: Run, kv: Mapping[str, str]) -> str:
    """The KV-cache format of ``row``: its sweep's fitted choice, else its precision's default."""
    return kv.get(row.sweep, FORMATS[row.precision][1])


def fit_path() -> Path:
    """``validation/serving_fit.yaml``: the fitted client terms and KV-cache formats."""
    return catalog_dir("arch").parent / "validation" / FIT_FILE


def committed_harnesses() -> dict[str, Harness]:
    """The client terms of ``validation/serving_fit.yaml`` by scope."""
    return {k: Harness(**v) for k, v in yaml.safe_load(fit_path().read_text())["harness"].items()}


def committed_kv() -> dict[str, str]:
    """The KV-cache formats of ``validation/serving_fit.yaml`` by sweep."""
    return dict(yaml.safe_load(fit_path().read_text()).get("kv_cache", {}))
