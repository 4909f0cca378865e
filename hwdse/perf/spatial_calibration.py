"""Achieved decode rates of spatial chips, fitted to measured batch-1 kernels (``validation/spatial_kernels.yaml``).

A chip's ``efficiency`` block (:class:`hwdse.hardware.spatial.SpatialEfficiency`) holds the share
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

__all__ = ["SpatialFit", "fit", "fits", "kernel_rows"]

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


def _layer(row: dict[str, Any]) -> tuple[list[Op], float]:
    """The decode operators of one WaferLLM layer (count 2 in a two-layer table: no LM head) and its KV length."""
    d = int(row["dim"])
    config = ModelConfig(name=row["model"], family="llama", hidden_size=d, num_layers=2, num_heads=1, num_kv_heads=1,
                         head_dim=d, intermediate_size=int(row["ffn_dim"]), activation="silu", gated_ffn=True,
                         norm="rmsnorm", vocab_size=1, tie_embeddings=False)
    kv = float(row["seq_len"])
    scenario = Scenario(batch=1, prompt=int(kv), gen=1, flash_attention=True)
    return [op for op in operator_table(config, scenario, "decode", kv) if op.count == 2], kv


def _waferllm_cycles(arch: Any, params: Sequence[float], entry: dict[str, Any]) -> np.ndarray:
    """Model cycles per layer for every WaferLLM row (grid of P x P cores, per-core SRAM bandwidth kept)."""
    eff = _efficiency(params, ("sram_fraction", "op_cycles", "hop_cycles"), "fit")
    out = []
    for row in entry["rows"]:
        cores = float(row["P"]) ** 2
        grid = with_overrides(arch, {"pe.count": cores, "efficiency": eff,
                                     "sram_bandwidth_TBps": arch.sram_bandwidth_TBps * cores / arch.pe.count})
        ops, _ = _layer(row)
        seconds = sum(float(t.seconds) for t in grid.chip_schedule(ops, "achieved"))
        out.append(seconds * arch.pe.clock_GHz * 1e9)
    return np.array(out)


def _lstm_op(row: dict[str, Any]) -> Op:
    """One LSTM step's four gate GEMVs as one int8 GEMM of [batch, input + hidden] x [input + hidden, 4 hidden]."""
    k, n, b = int(row["input"]) + int(row["hidden"]), 4 * int(row["hidden"]), int(row["batch"])
    return Op("lstm_gates", "gemm", 1, 2.0 * b * k * n, weight_bytes=k * n, act_in_bytes=b * k, act_out_bytes=4 * b * n,
              operands=("int8", "int8"), shape={"m": b, "n": n, "k": k, "groups": 1})


def _lstm_cycles(arch: Any, params: Sequence[float], entry: dict[str, Any]) -> np.ndarray:
    eff = _efficiency(params, ("sram_fraction", "op_cycles"), "fit")
    chip = with_overrides(arch, {"efficiency": eff})
    return np.array([float(chip.chip_schedule([_lstm_op(r)], "achieved")[0].seconds) * arch.pe.clock_GHz * 1e9
                     for r in entry["rows"]])


def _measured_cycles(name: str, entry: dict[str, Any]) -> np.ndarray:
    hz = entry["clock_GHz"] * 1e9
    if name == "waferllm-wse2":
        return np.array([hz / (r["tok_s_per_request"] * r["layers"]) for r in entry["rows"]])
    return np.array([float(r["cycles"]) for r in entry["rows"]])


# name -> (model cycles, parameter names, start, lower bounds, upper bounds)
_SETS: dict[str, tuple[Callable[..., np.ndarray], tuple[str, ...], tuple, tuple, tuple]] = {
    "waferllm-wse2": (_waferllm_cycles, ("sram_fraction", "op_cycles", "hop_cycles"), (0.1, 100.0, 1.0),
                      (1e-3, 0.0, 0.0), (1.0, 1e5, 100.0)),
    "groq-lstm": (_lstm_cycles, ("sram_fraction", "op_cycles"), (0.1, 100.0), (1e-3, 0.0), (1.0, 1e5)),
}


def fit(name: str) -> SpatialFit:
    """Fit one kernel set's arch efficiency block (see the module docstring)."""
    entry = kernel_rows()[name]
    model, names, start, lower, upper = _SETS[name]
    arch = load_arch(entry["arch"])
    measured = _measured_cycles(name, entry)
    held = np.array([r.get("P") == entry["held_out_P"] if "held_out_P" in entry else False for r in entry["rows"]])
    train = ~held

    def residual(p: np.ndarray) -> np.ndarray:
        return np.log(model(arch, p, entry)[train] / measured[train])

    best = least_squares(residual, np.array(start), bounds=(lower, upper), x_scale="jac")
    params = [float(f"{p:.3g}") for p in best.x]
    labels = tuple(" ".join([r.get("model", "lstm")] + [f"{k}={r[k]}" for k in entry["columns"][:3] if k != "model"])
                   for r in entry["rows"])
    errors = model(arch, params, entry) / measured - 1
    source = (f"hwdse calibrate --spatial (hwdse/perf/spatial_calibration.py) on validation/{KERNELS.name} '{name}': "
              f"{len(measured[train])} rows fitted, max |error| "
              f"{np.abs(errors[train]).max() * 100:.1f} %" +
              (f", held-out max {np.abs(errors[held]).max() * 100:.1f} %" if held.any() else ""))
    return SpatialFit(name, entry["arch"], _efficiency(params, names, source), labels, errors, held)


def fits() -> list[SpatialFit]:
    """Every kernel set's fit."""
    return [fit(name) for name in kernel_rows()]
