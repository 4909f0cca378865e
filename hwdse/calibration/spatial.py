"""Achieved decode rates of spatial chips, fitted to measured batch-1 kernels (``validation/spatial_kernels.yaml``).

A chip's ``efficiency`` block (:class:`hwdse.hardware.spatial.device.SpatialEfficiency`) holds the share
of its SRAM bandwidth a decode matrix operator streams, the fixed cycles per dependent matrix step
and, on a mesh, the cycles per hop of the operator's region. Every measured row is re-timed with
the model's own decode path (:meth:`Spatial.chip_schedule`: the kernel's matrices spread over the
cores it ran on), and ``scipy.optimize.least_squares`` fits the parameters to ``log(model /
measured)``. Times are compared in cycles (a row's time x the clock its authors converted with),
so the fit does not depend on the clock; the catalog clock converts back.

* ``waferllm-wse2``: one LLM decoder layer on a P x P grid of a Cerebras WSE-2 (three parameters;
  the rows of ``held_out_P`` are left out of the fit and their error is reported).
* ``groq-lstm``: one LSTM step (four int8 GEMVs, one per MXM plane) on a Groq TSP (two
  parameters, two rows: an exact fit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import least_squares

from hwdse.hardware import load_arch, with_overrides
from hwdse.workload import Scenario, operator_table
from hwdse.workload.config import ModelConfig
from hwdse.workload.ops import Op

__all__ = ["SpatialFit", "fit", "fits", "kernel_rows", "report"]

KERNELS = Path(__file__).resolve().parents[2] / "validation" / "spatial_kernels.yaml"


@dataclass(frozen=True)
class SpatialFit:
    """A fitted efficiency block and the error of every row (model / measured - 1; ``held_out`` marks test rows)."""

    name: str
    arch: str
    efficiency: dict[str, Any]
    labels: tuple[str, ...]
    errors: np.ndarray
    held_out: np.ndarray

    def summary(self) -> str:
        train, test = np.abs(self.errors[~self.held_out]), np.abs(self.errors[self.held_out])
        held = f", held-out max {test.max() * 100:.1f} % ({test.size} rows)" if test.size else ""
        return f"{self.name}: fit max {train.max() * 100:.1f} % ({train.size} rows){held}"


@cache
def kernel_rows() -> dict[str, dict[str, Any]]:
    """The measured kernel sets, each with its rows as dicts keyed by ``columns``."""
    data = yaml.safe_load(KERNELS.read_text())
    for entry in data.values():
        entry["rows"] = [dict(zip(entry["columns"], row)) for row in entry["rows"]]
    return data


def _efficiency(params: Sequence[float], names: Sequence[str], source: str) -> dict[str, Any]:
    return {**dict(zip(names, (float(p) for p in params))), "source": source}


@cache
def _layer(model: str, dim: int, ffn: int, seq_len: int) -> tuple[Op, ...]:
    """The decode operators of one WaferLLM layer (count 2 in a two-layer table: no LM head)."""
    config = ModelConfig(name=model, family="llama", hidden_size=dim, num_layers=2, num_heads=1, num_kv_heads=1,
                         head_dim=dim, intermediate_size=ffn, activation="silu", gated_ffn=True, norm="rmsnorm",
                         vocab_size=1, tie_embeddings=False)
    scenario = Scenario(batch=1, prompt=seq_len, gen=1, flash_attention=True)
    return tuple(op for op in operator_table(config, scenario, "decode", float(seq_len)) if op.count == 2)


def _waferllm_seconds(chip: Any, row: dict[str, Any]) -> float:
    """Model seconds of one layer on a P x P grid of ``chip``'s cores (per-core SRAM bandwidth kept)."""
    cores = float(row["P"]) ** 2
    bandwidth = chip.sram_bandwidth_TBps * cores / chip.pe.count
    grid = with_overrides(chip, {"pe.count": cores, "sram_bandwidth_TBps": bandwidth})
    ops = _layer(row["model"], int(row["dim"]), int(row["ffn_dim"]), int(row["seq_len"]))
    return sum(float(t.seconds) for t in grid.chip_schedule(ops, "achieved"))


def _lstm_seconds(chip: Any, row: dict[str, Any]) -> float:
    """Model seconds of one LSTM step's four gate GEMVs, an int8 [batch, in + hidden] x [in + hidden, 4 hidden]."""
    k, n, b = int(row["input"]) + int(row["hidden"]), 4 * int(row["hidden"]), int(row["batch"])
    op = Op("lstm_gates", "gemm", 1, 2.0 * b * k * n, weight_bytes=k * n, act_in_bytes=b * k, act_out_bytes=4 * b * n,
            operands=("int8", "int8"), shape={"m": b, "n": n, "k": k, "groups": 1})
    return float(chip.chip_schedule([op], "achieved")[0].seconds)


@dataclass(frozen=True)
class _Kernels:
    """How one kernel set is fitted: parameters, their start and bounds, model seconds and measured cycles per row."""

    names: tuple[str, ...]
    start: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    seconds: Callable[[Any, dict[str, Any]], float]
    measured_cycles: Callable[[dict[str, Any], float], float]  # (row, the authors' clock in Hz)


_SETS = {
    "waferllm-wse2": _Kernels(("sram_fraction", "op_cycles", "hop_cycles"), (0.1, 100.0, 1.0), (1e-3, 0.0, 0.0),
                              (1.0, 1e5, 100.0), _waferllm_seconds,
                              lambda row, hz: hz / (row["tok_s_per_request"] * row["layers"])),
    "groq-lstm": _Kernels(("sram_fraction", "op_cycles"), (0.1, 100.0), (1e-3, 0.0), (1.0, 1e5), _lstm_seconds,
                          lambda row, hz: float(row["cycles"])),
}


def fit(name: str) -> SpatialFit:
    """Fit one kernel set's arch efficiency block (see the module docstring)."""
    entry = kernel_rows()[name]
    kernels, rows = _SETS[name], entry["rows"]
    arch = load_arch(entry["arch"])
    measured = np.array([kernels.measured_cycles(r, entry["clock_GHz"] * 1e9) for r in rows])
    held = np.array([r.get("P") == entry["held_out_P"] if "held_out_P" in entry else False for r in rows])
    train = ~held

    def cycles(params: Sequence[float]) -> np.ndarray:
        chip = with_overrides(arch, {"efficiency": _efficiency(params, kernels.names, "fit")})
        return np.array([kernels.seconds(chip, r) for r in rows]) * arch.pe.clock_GHz * 1e9

    best = least_squares(lambda p: np.log(cycles(p)[train] / measured[train]), np.array(kernels.start),
                         bounds=(kernels.lower, kernels.upper), x_scale="jac")
    params = [float(f"{p:.3g}") for p in best.x]
    labels = tuple(" ".join([r.get("model", "lstm")] + [f"{k}={r[k]}" for k in entry["columns"][:3] if k != "model"])
                   for r in rows)
    errors = cycles(params) / measured - 1
    source = (f"hwdse calibrate --spatial (hwdse/calibration/spatial.py) on validation/{KERNELS.name} '{name}': "
              f"{train.sum()} rows fitted, max |error| {np.abs(errors[train]).max() * 100:.1f} %" +
              (f", held-out max {np.abs(errors[held]).max() * 100:.1f} %" if held.any() else ""))
    return SpatialFit(name, entry["arch"], _efficiency(params, kernels.names, source), labels, errors, held)


def fits() -> list[SpatialFit]:
    """Every kernel set's fit."""
    return [fit(name) for name in kernel_rows()]


def report() -> list[str]:
    """Per kernel set: the fit summary, the efficiency it gives its arch, and every row's error."""
    lines = []
    for f in fits():
        lines.append(f"{f.summary()} -> arch {f.arch} efficiency: " +
                     ", ".join(f"{k} {v}" for k, v in f.efficiency.items() if k != "source"))
        lines += [f"  {label}: {err * 100:+.1f} %{' (held out)' if held else ''}"
                  for label, err, held in zip(f.labels, f.errors, f.held_out)]
    return lines
