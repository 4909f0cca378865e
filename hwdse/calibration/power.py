"""GPU board power while serving: the :class:`hwdse.hardware.power.GPUPower` terms fitted to measured runs.

Data: ``validation/gpu_serving_power.csv`` (ML.ENERGY Benchmark v3, vLLM, steady-state NVML board
power per GPU under continuous batching; sources per row, ``validation/power_measurements.md``).
A row's system is the catalog GPU, tensor-parallel over ``tp`` of them, serving at closed-loop
concurrency = the measured mean batch with the engine's ``max_batch`` = the run's ``max_num_seqs``.

Predicted board power per GPU is linear in the fitted terms:
``P = idle_W + busy_W + compute_scale x C + memory_scale x M + L``, where C and M are the per-op
model's MAC and byte-moving power at unit scales and L the links' energy rate (all from
:func:`hwdse.serving.serve`), and ``idle_W`` is the catalog's measured idle power. ``busy_W`` is per
GPU; the two scales are shared by the GPUs of one process family (TSMC 4N/4NP: H100, H200, B200),
since they correct the same per-op energy tables. The fit is a non-negative least squares on
relative residuals over the training rows (4 of 5 by a hash of the row id); the held-out rows are
scored with the fitted terms, and a leave-one-out pass over all rows reports the procedure's error.
H200 (the H100's GH100 die with HBM3E) takes the H100's busy floor: no H200 serving power was found.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from hwdse._catalog import catalog_dir
from hwdse.hardware import load_arch
from hwdse.hardware.power import GPUPower
from hwdse.hardware.systems.multi import with_parallelism
from hwdse.serving import serve

__all__ = ["PowerRow", "power_rows", "power_parts", "fit_power", "predict_power", "leave_one_out", "from_other_gpus", "committed_params",
           "power_table", "summary", "calibrate_power", "FIT_ARCHS", "TRANSFERS"]

FILE = "gpu_serving_power.csv"
HELD_OUT_EVERY = 5
FIT_ARCHS = ("h100-sxm", "b200")      # GPUs with measured serving power: one busy floor each
TRANSFERS = {"h200": "h100-sxm"}      # same die, no measurements: takes the other's busy floor
ENGINE = "vllm"                       # ML.ENERGY v3 ran vLLM 0.11.1


@dataclass(frozen=True)
class PowerRow:
    """One measured serving run: board power per GPU (W) at a closed-loop load."""

    id: str
    arch: str
    model: str
    tp: int
    weights: str
    kv: str
    concurrency: float
    max_num_seqs: int
    isl: float
    osl: float
    power_w: float
    held_out: bool


def data_path() -> Path:
    return catalog_dir("arch").parent / "validation" / FILE


def power_rows() -> list[PowerRow]:
    """The rows of ``validation/gpu_serving_power.csv``; one in ``HELD_OUT_EVERY`` held out by id hash."""
    with data_path().open(newline="") as fh:
        return [PowerRow(id=r["id"], arch=r["arch"], model=r["model"], tp=int(r["tp"]), weights=r["weights"],
                         kv=r["kv"], concurrency=float(r["concurrency"]), max_num_seqs=int(r["max_num_seqs"]),
                         isl=float(r["isl"]), osl=float(r["osl"]), power_w=float(r["power_w_per_gpu"]),
                         held_out=int(hashlib.sha256(r["id"].encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0)
                for r in csv.DictReader(fh)]


def _gpu(arch: str, compute_scale: float, memory_scale: float) -> Any:
    """The catalog GPU with its idle power only (no busy floor), the given energy scales and no power
    budget (its power stays linear in the scales; :func:`predict_power` applies the budget)."""
    gpu = load_arch(arch)
    idle = 0.0 if gpu.power is None else gpu.power.idle_W
    return gpu.model_copy(update={"tdp_W": np.inf, "power": GPUPower(idle_W=idle, compute_scale=compute_scale,
                                                                      memory_scale=memory_scale)})


def power_parts(rows: list[PowerRow]) -> np.ndarray:
    """Per row and GPU (W): idle, MAC power and byte-moving power at unit scales, the links' power;
    shape ``(rows, 4)``. Three serving evaluations per row (scales (1, 1), (2, 1), (1, 2)) separate
    the linear parts."""
    out = np.empty((len(rows), 4))
    for i, r in enumerate(rows):
        totals = []
        for scales in ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0)):
            gpu = _gpu(r.arch, *scales)
            system = gpu if r.tp == 1 else with_parallelism(gpu, r.tp)
            ds = serve(r.model, system, concurrency=r.concurrency, isl=r.isl, osl=r.osl, engine=ENGINE,
                       engine_overrides={"max_batch": r.max_num_seqs}, weights=r.weights, kv=r.kv, mode="achieved")
            totals.append(float(ds.avg_power_w) / r.tp)
        idle = float(_gpu(r.arch, 1.0, 1.0).power.idle_W)
        compute, memory = totals[1] - totals[0], totals[2] - totals[0]
        out[i] = idle, compute, memory, totals[0] - idle - compute - memory
    return out


def _design(rows: list[PowerRow], parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns: one busy floor per fitted GPU, then the compute and memory scales; target: power less
    idle and links. Both divided by the measured power (relative residuals)."""
    busy = np.array([[float(TRANSFERS.get(r.arch, r.arch) == a) for a in FIT_ARCHS] for r in rows])
    a = np.column_stack([busy, parts[:, 1], parts[:, 2]])
    b = np.array([r.power_w for r in rows]) - parts[:, 0] - parts[:, 3]
    w = 1 / np.array([r.power_w for r in rows])
    return a * w[:, None], b * w


def fit_power(rows: list[PowerRow], parts: np.ndarray) -> dict[str, float]:
    """``busy_W:<arch>`` per fitted GPU, ``compute_scale``, ``memory_scale``: non-negative least squares."""
    x, _ = nnls(*_design(rows, parts))
    return {**{f"busy_W:{a}": float(v) for a, v in zip(FIT_ARCHS, x)},
            "compute_scale": float(x[-2]), "memory_scale": float(x[-1])}


def predict_power(rows: list[PowerRow], parts: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """Board power per GPU (W) of each row under ``params``, at most its TDP (a run over it throttles to it:
    :mod:`hwdse.perf.power_cap`)."""
    busy = np.array([params[f"busy_W:{TRANSFERS.get(r.arch, r.arch)}"] for r in rows])
    tdp = np.array([load_arch(r.arch).tdp_W for r in rows])
    return np.minimum(parts[:, 0] + busy + params["compute_scale"] * parts[:, 1] + params["memory_scale"] * parts[:, 2]
                      + parts[:, 3], tdp)


def leave_one_out(rows: list[PowerRow], parts: np.ndarray) -> np.ndarray:
    """Each row predicted by a fit on all the others (W)."""
    out = np.empty(len(rows))
    for i in range(len(rows)):
        keep = [j for j in range(len(rows)) if j != i]
        params = fit_power([rows[j] for j in keep], parts[keep])
        out[i] = predict_power([rows[i]], parts[[i]], params)[0]
    return out


def from_other_gpus(rows: list[PowerRow], parts: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """Each row predicted as a GPU without power measurements is (:class:`hwdse.hardware.power.SharedPower`):
    idle and busy floors at the other measured GPUs' fractions of TDP, the fitted energy factors (W)."""
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        others = [load_arch(a) for a in FIT_ARCHS if a != TRANSFERS.get(r.arch, r.arch)]
        floors = np.mean([(g.power.idle_W + params[f"busy_W:{g.name}"]) / g.tdp_W for g in others])
        tdp = load_arch(r.arch).tdp_W
        out[i] = min(floors * tdp + params["compute_scale"] * parts[i, 1] + params["memory_scale"] * parts[i, 2]
                     + parts[i, 3], tdp)
    return out


def _write(params: dict[str, float], source: str, held_out_p90: float) -> list[Path]:
    """Rewrite the ``power:`` line (idle kept, fitted terms set) and ``sources.power`` of every fitted or
    transferred GPU's ``arch/<name>.yaml``; other lines kept."""
    paths = []
    for arch in (*FIT_ARCHS, *TRANSFERS):
        path = catalog_dir("arch") / f"{arch}.yaml"
        values = {"idle_W": load_arch(arch).power.idle_W, "busy_W": params[f"busy_W:{TRANSFERS.get(arch, arch)}"],
                  "compute_scale": params["compute_scale"], "memory_scale": params["memory_scale"],
                  "held_out_p90": held_out_p90}
        lines = []
        for line in path.read_text().splitlines():
            if line.startswith("power: {"):
                line = "power: {" + ", ".join(f"{k}: {v:.4g}" for k, v in values.items()) + "}"
            elif line.startswith('  power: "'):
                note = "" if arch in FIT_ARCHS else f" (busy_W: {TRANSFERS[arch]}'s, same die; no measurements)"
                line = f'  power: "{source}{note}"'
            lines.append(line)
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def committed_params() -> dict[str, float]:
    """The fitted terms as the catalog holds them (``arch/<name>.yaml`` ``power:``)."""
    gpus = {a: load_arch(a).power for a in FIT_ARCHS}
    first = gpus[FIT_ARCHS[0]]
    return {**{f"busy_W:{a}": p.busy_W for a, p in gpus.items()}, "compute_scale": first.compute_scale,
            "memory_scale": first.memory_scale}


def power_table(refit: bool = False) -> dict[str, Any]:
    """Rows, measured and predicted W/GPU (the catalog's terms, or a fit on the training rows with
    ``refit``), leave-one-out predictions, and the terms used."""
    rows = power_rows()
    parts = power_parts(rows)
    train = [i for i, r in enumerate(rows) if not r.held_out]
    params = fit_power([rows[i] for i in train], parts[train]) if refit else committed_params()
    return {"rows": rows, "measured": np.array([r.power_w for r in rows]), "params": params,
            "predicted": predict_power(rows, parts, params), "loo": leave_one_out(rows, parts),
            "other_gpus": from_other_gpus(rows, parts, params), "held_out": np.array([r.held_out for r in rows])}


def summary(table: dict[str, Any]) -> str:
    """Held-out and leave-one-out |error| of a :func:`power_table`."""
    err = np.abs(table["predicted"] / table["measured"] - 1)
    loo = np.abs(table["loo"] / table["measured"] - 1)
    held = table["held_out"]
    other = np.abs(table["other_gpus"] / table["measured"] - 1)
    return (f"held-out median/max |error| {np.median(err[held]) * 100:.1f}/{err[held].max() * 100:.1f} % "
            f"({held.sum()} rows); leave-one-out median/p90 {np.median(loo) * 100:.1f}/"
            f"{np.percentile(loo, 90) * 100:.1f} % ({len(loo)} rows); floors from the other GPUs' fractions of "
            f"TDP median/p90 {np.median(other) * 100:.1f}/{np.percentile(other, 90) * 100:.1f} %")


def calibrate_power(write: bool) -> list[str]:
    """Fit the power terms on the training rows (``write``: into the catalog) or score the catalog's;
    held-out and leave-one-out rows. Returns the lines to print."""
    table = power_table(refit=write)
    lines = [", ".join(f"{k} {v:.4g}" for k, v in table["params"].items())]
    lines += [f"{r.id} {r.arch} {r.model} tp{r.tp} C={r.concurrency:g}: measured {r.power_w:.0f} W/GPU, predicted "
              f"{p:.0f} ({'held out' if r.held_out else 'train'}), leave-one-out {q:.0f}"
              for r, p, q in zip(table["rows"], table["predicted"], table["loo"])]
    lines.append(summary(table))
    if write:
        source = (f"busy_W, compute_scale, memory_scale fitted by hwdse calibrate --power on validation/{FILE} "
                  f"(ML.ENERGY v3 vLLM serving, training rows 4 of 5 by id hash); {summary(table)}")
        loo_p90 = float(np.percentile(np.abs(table["loo"] / table["measured"] - 1), 90))
        lines += [f"wrote {p}" for p in _write(table["params"], source, loo_p90)]
    return lines
