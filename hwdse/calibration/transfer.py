"""``hwdse calibrate --transfer``: the shared efficiency parameters of :mod:`hwdse.hardware.gpu.transfer`,
fitted jointly on every GPU with kernel data, and their leave-one-device-out (LODO) error.

Per stage (GEMM, prefill attention, decode attention, all-reduce), the stage's shared parameters are
fitted on the training rows (four in five, by shape hash, as :mod:`hwdse.calibration.kernels`) of every
device's kernel sets at once: a robust (soft-L1) loss of ``log(predicted / measured)``. A keyed
parameter (a class family, a memory family) is fitted only where the training devices hold rows of
it; elsewhere the GPU takes the ``bf16`` (``hbm``) entry. For each device, the same fit without
that device predicts its held-out rows (LODO); the joint fit's error on the same rows and, where the
catalog has one, the device's own calibrated block's error are reported beside it.

Elementwise kernels (LLMCompass softmax, LayerNorm, GeLU) were measured on an A100 and an MI210,
host-timed: each set's timing floor is a harness term read off its own fastest training row
(:func:`hwdse.calibration.kernels.host_floor_s`), the streaming fraction is shared. Kernel sets that are
never fitted, of a GPU without its own calibration (LLMCompass MI210 matmuls), are scored with the
joint fit: a transfer to a device no fit has seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import least_squares

from hwdse._catalog import catalog_dir
from hwdse.calibration.data import KernelSet, kernel_sets
from hwdse.calibration.kernels import F_SCALE, TOL, errors, predict_timed
from hwdse.hardware import load_arch
from hwdse.hardware._base import operand_class
from hwdse.hardware.gpu.transfer import TransferEfficiency, class_family, memory_family, transferred_efficiency

__all__ = ["STAGES", "FAMILIES", "fit_transfer", "transfer_table", "in_sample_ratio", "calibrate_transfer", "LODO_FILE"]

# (parameter, start, lower, upper) per stage; "{fam}" / "{mem}" entries exist per class / memory family.
STAGES: dict[str, tuple[tuple[str, float, float, float], ...]] = {
    "gemm": (("compute_fraction.{fam}", 0.75, 0.1, 1.2), ("bandwidth_fraction.{mem}", 0.8, 0.2, 1.2),
             ("overlap_exponent", 2.0, 1.0, 20.0), ("split_k_us", 2.0, 0.0, 50.0), ("overhead_us.{fam}", 5.0, 0.0, 60.0),
             ("quantize_passes.{lowfam}", 2.0, 0.0, 10.0), ("k_step_cycles.{nosplitfam}", 3.0, 0.0, 50.0),
             ("l2_fit_fraction", 0.3, 0.01, 2.0), ("l2_bytes_per_clock", 16.0, 1.0, 128.0)),
    "prefill_attention": (("prefill_compute_fraction.{fam}", 0.5, 0.05, 1.2), ("prefill_overhead_us", 10.0, 0.0, 200.0),
                          ("prefill_wave_us", 5.0, 0.0, 100.0)),
    "decode_attention": (("decode_bandwidth_fraction", 0.8, 0.1, 1.2),
                         ("decode_half_bandwidth_ctas_per_unit", 0.03, 0.0, 5.0), ("decode_cta_us", 1.5, 0.0, 50.0),
                         ("decode_overhead_cycles", 15000.0, 0.0, 2e5), ("decode_vector_fraction", 0.1, 0.01, 1.0)),
    "vector": (("vector_bandwidth_fraction", 0.7, 0.05, 1.2),),
    "all_reduce": (("collective_bandwidth_fraction", 0.65, 0.1, 1.2), ("collective_latency_cycles", 10000.0, 0.0, 2e5),
                   ("collective_latency_per_peer_cycles", 3000.0, 0.0, 1e5)),
}
FAMILIES = tuple(STAGES)
LODO_FILE = "transfer_lodo.yaml"
SOURCE = ("hwdse calibrate --transfer (hwdse/calibration/transfer.py) on every GPU's kernel tables in shared/validation "
          "(training rows, 4 of 5 by shape hash, soft-L1 on log time)")


def _sets() -> list[KernelSet]:
    return [s for s in kernel_sets() if s.fit and s.family in STAGES]


def _checks() -> list[KernelSet]:
    """Validation-only sets of GPUs without their own calibration: every row is held out from every fit."""
    return [s for s in kernel_sets() if not s.fit and s.family in STAGES and load_arch(s.arch).efficiency is None]


def _families(kset: KernelSet) -> set[str]:
    """Class families of a kernel set's operators."""
    return {class_family(operand_class(op.operands)) for op in kset.ops if op.operands}


def _specs(stage: str, sets: Sequence[KernelSet]) -> list[tuple[str, float, float, float]]:
    """The stage's parameters the training ``sets`` determine."""
    fams = set().union(*(_families(s) for s in sets)) if sets else set()
    mems = {memory_family(load_arch(s.arch).memory.technology) for s in sets}
    keys = {"{fam}": sorted(fams), "{lowfam}": sorted(fams - {"bf16"}), "{nosplitfam}": sorted(fams & {"fp4"}),
            "{mem}": sorted(mems)}
    out = []
    for path, *bounds in STAGES[stage]:
        key = next((k for k in keys if k in path), None)
        values = keys[key] if key else [None]
        out += [(path.replace(key, v) if key else path, *bounds) for v in values]
    return out


def _shared(values: dict[str, Any]) -> TransferEfficiency:
    return TransferEfficiency.model_construct(source=SOURCE, **values)


def _start() -> dict[str, Any]:
    """Every parameter at its start value; a keyed table starts with its default entry (``bf16``, ``hbm``),
    which a family without data falls back to."""
    defaults = {"{fam}": "bf16", "{mem}": "hbm"}
    out: dict[str, Any] = {}
    for specs in STAGES.values():
        for path, x0, *_ in specs:
            head, _, key = path.partition(".")
            out[head] = {defaults[key]: x0} if key in defaults else {} if key else x0
    return out


def _with(values: dict[str, Any], specs: Sequence[tuple], x: np.ndarray) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for (path, *_), value in zip(specs, x):
        head, _, key = path.partition(".")
        if key:
            out[head][key] = float(value)
        else:
            out[head] = float(value)
    return out


def _predict(shared: TransferEfficiency, kset: KernelSet) -> np.ndarray:
    gpu = load_arch(kset.arch)
    return predict_timed(gpu.model_copy(update={"efficiency": transferred_efficiency(gpu, shared)}), kset)


def fit_transfer(exclude: str | None = None) -> dict[str, Any]:
    """Shared parameter values fitted on every device's training rows but ``exclude``'s."""
    values = _start()
    sets = [s for s in _sets() if s.arch != exclude]
    for stage in STAGES:
        mine = [s for s in sets if s.family == stage]
        if not mine:
            continue
        specs = _specs(stage, mine)

        def residuals(x: np.ndarray) -> np.ndarray:
            shared = _shared(_with(values, specs, x))
            return np.concatenate([np.log(_predict(shared, s)[s.train] / s.measured_s[s.train]) for s in mine])

        x0, lo, hi = (np.array([s[i] for s in specs], dtype=float) for i in (1, 2, 3))
        result = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=F_SCALE, x_scale="jac",
                               ftol=TOL, xtol=TOL, gtol=TOL)
        values = _with(values, specs, result.x)
    return values


def _stats(pred: np.ndarray, kset: KernelSet) -> tuple[float, float]:
    scored = kset.held_out if kset.fit else np.ones_like(kset.held_out)
    e = errors(pred[scored], kset.measured_s[scored])
    return float(np.median(e)), float(np.percentile(e, 90))


def transfer_table(joint: dict[str, Any], lodo: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kernel set (device x family x format): held-out rows, and median / p90 |relative error| of the
    device's own calibrated block (NaN where it has none), the joint fit and the fit without the device."""
    rows = []
    for s in _sets() + _checks():
        gpu = load_arch(s.arch)
        own = _stats(predict_timed(gpu, s), s) if gpu.efficiency is not None else (np.nan, np.nan)
        joint_stats = _stats(_predict(_shared(joint), s), s)
        held = lodo.get(s.arch)
        rows.append({"set": s.name, "arch": s.arch, "family": s.family, "fitted": s.fit,
                     "rows": int(s.held_out.sum()) if s.fit else int(s.held_out.size), "calibrated": own,
                     "joint": joint_stats, "lodo": joint_stats if not s.fit else
                     _stats(_predict(_shared(held), s), s) if held is not None else (np.nan, np.nan)})
    return rows


def _held_out(table: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per family, the median over the devices' sets of their LODO median and p90 (the band of a transferred
    prediction: what a typical GPU left out of the fit sees; the worst set is in validation/transfer.md)."""
    out = {}
    for family in FAMILIES:
        lodo = [t["lodo"] for t in table if t["family"] == family and np.isfinite(t["lodo"][0])]
        if lodo:
            out[family] = (round(float(np.median([m for m, _ in lodo])), 4),
                           round(float(np.median([p for _, p in lodo])), 4))
    return out


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: {kk: float(f"{vv:.4g}") for kk, vv in v.items()} if isinstance(v, dict) else float(f"{v:.4g}")
            for k, v in values.items()}


def _paths() -> tuple[Path, Path]:
    return catalog_dir("arch") / "efficiency" / "transfer.yaml", catalog_dir("arch").parent / "validation" / LODO_FILE


def _markdown(table: Sequence[dict[str, Any]]) -> list[str]:
    pct = lambda pair: "–" if not np.isfinite(pair[0]) else f"{pair[0] * 100:.1f} / {pair[1] * 100:.0f}"  # noqa: E731
    lines = ["| kernel set | device | family | held-out rows | own calibration % | joint fit % | leave-device-out % "
             "| LODO / in-sample |", "|---|---|---|---|---|---|---|---|"]
    for t in table:
        ratio = in_sample_ratio(t)
        mark = " (> 2)" if ratio > 2 else ""
        lines.append(f"| {t['set']} | {t['arch']} | {t['family']} | {t['rows']} | {pct(t['calibrated'])} | "
                     f"{pct(t['joint'])} | {pct(t['lodo'])} | {'–' if not np.isfinite(ratio) else f'{ratio:.2f}'}{mark} |")
    return lines


def in_sample_ratio(row: dict[str, Any]) -> float:
    """LODO median over the in-sample median: the device's own calibration where it has one, else the joint fit
    (NaN for a validation-only set: no fit saw its device, so it has no in-sample figure)."""
    if not row["fitted"]:
        return float("nan")
    own = row["calibrated"][0] if np.isfinite(row["calibrated"][0]) else row["joint"][0]
    return row["lodo"][0] / own


def calibrate_transfer(write: bool) -> list[str]:
    """Fit (``write``: into ``arch/efficiency/transfer.yaml`` and ``validation/transfer_lodo.yaml``, and
    ``validation/transfer.md``) or load the committed parameters; the LODO table as lines to print."""
    shared_path, lodo_path = _paths()
    devices = sorted({s.arch for s in _sets()})
    if write or not lodo_path.is_file():
        joint = _rounded(fit_transfer())
        lodo = {d: _rounded(fit_transfer(exclude=d)) for d in devices}
    else:
        data = yaml.safe_load(shared_path.read_text())
        joint = {k: data[k] for k in _start()}
        lodo = yaml.safe_load(lodo_path.read_text())["lodo"]
    table = transfer_table(joint, lodo)
    lines = _markdown(table)
    if write:
        held = _held_out(table)
        shared_path.parent.mkdir(parents=True, exist_ok=True)
        shared_path.write_text(yaml.safe_dump({"source": SOURCE + "; held_out: per family, the median over devices of "
                                               "the leave-one-device-out |relative error| median and p90 (validation/"
                                               "transfer.md)",
                                               **joint, "held_out": {k: list(v) for k, v in held.items()}},
                                              sort_keys=False))
        lodo_path.write_text(yaml.safe_dump({"source": "fit_transfer(exclude=device) per device with kernel data",
                                             "lodo": lodo}, sort_keys=False))
        report = lodo_path.with_name("transfer.md")
        report.write_text("\n".join(["# Transferred GPU efficiency: leave-one-device-out", "",
                                     "Generated by `hwdse calibrate --transfer --write`. Each row: one kernel table's "
                                     "held-out rows (1 in 5 by shape hash), median / p90 |relative error| of the "
                                     "device's own calibrated `efficiency:` block (where the catalog has one), of the "
                                     "shared parameters fitted on every device, and of the shared parameters fitted "
                                     "without this device (what a GPU without data gets). The last column divides the "
                                     "leave-device-out median by the in-sample one (the device's own calibration "
                                     "where it has one, else the joint fit); the goal is at most 2.", "", *lines, ""]))
        lines += [f"wrote {shared_path}", f"wrote {lodo_path}", f"wrote {report}"]
    return lines
