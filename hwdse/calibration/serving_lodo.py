"""Leave-one-device-out serving: each GPU with measured serving runs predicted as a GPU without data would be.

For each device of ``aic_silicon_dev.csv`` the serving fit (:func:`hwdse.calibration.serving_fit.fit`:
engine terms, client terms, KV-cache formats) runs on the training rows of the *other* devices, and
the device's rows are predicted with its kernel efficiencies transferred from the other GPUs' kernel
tables (``validation/transfer_lodo.yaml``: the shared parameters fitted without it) instead of its own
calibrated block. Client terms fitted on its own deployments are gone with its rows; a row takes its
sweep's, campaign's or harness's terms where the other devices ran them. The in-sample figure beside
it is the committed fit's error on the same held-out rows (the device's own kernels and runs in the fit).
``hwdse calibrate --serving --lodo --write`` refits (a few minutes per device) into
``validation/serving_lodo.yaml``; without ``--write`` the committed fits are scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hwdse.calibration.campaigns import committed_harnesses, committed_kv, fit_path
from hwdse.calibration.serving import ServingRow, predict_rows, serving_rows
from hwdse.calibration.serving_fit import ENGINE_FIT, HARNESS_FIT, engine_with, fit
from hwdse.calibration.transfer import LODO_FILE as KERNEL_LODO_FILE
from hwdse.hardware import load_arch
from hwdse.hardware.gpu.transfer import TransferEfficiency, transferred_efficiency
from hwdse.serving import Harness, load_engine

__all__ = ["LODO_FILE", "lodo_gpu", "fit_without", "lodo_table", "calibrate_serving_lodo"]

LODO_FILE = "serving_lodo.yaml"
SOURCE = ("hwdse calibrate --serving --lodo --write: serving_fit.fit on the training rows of every other device; the "
          "device's kernels from validation/transfer_lodo.yaml")


def _path() -> Path:
    return fit_path().with_name(LODO_FILE)


def lodo_gpu(arch: str) -> Any:
    """The catalog GPU with the efficiency transferred from the other GPUs' kernels (its own data left out)."""
    shared = yaml.safe_load(fit_path().with_name(KERNEL_LODO_FILE).read_text())["lodo"][arch]
    gpu = load_arch(arch)
    return gpu.model_copy(update={"efficiency": transferred_efficiency(
        gpu, TransferEfficiency.model_construct(source="leave-device-out", **shared))})


def fit_without(rows: Sequence[ServingRow], arch: str) -> dict[str, Any]:
    """The serving fit on every device's training rows but ``arch``'s, as plain numbers."""
    engines, harnesses, kv = fit([r for r in rows if r.arch != arch])
    return {"engines": {name: {k: float(f"{getattr(e, k):.4g}") for k, *_ in ENGINE_FIT} for name, e in engines.items()},
            "harness": {k: {f: float(f"{getattr(h, f):.4g}") for f, *_ in HARNESS_FIT} for k, h in harnesses.items()},
            "kv_cache": kv}


def _parts(fitted: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Harness], dict[str, str]]:
    engines = {name: engine_with(name, values) for name, values in fitted["engines"].items()}
    return engines, {k: Harness(**v) for k, v in fitted["harness"].items()}, dict(fitted["kv_cache"])


def _errors(rows: Sequence[ServingRow], ttft: np.ndarray, tpot: np.ndarray) -> dict[str, float]:
    e_tpot = np.abs(tpot / np.array([r.tpot_s for r in rows]) - 1)
    e_ttft = np.abs(ttft / np.array([r.ttft_s for r in rows]) - 1)
    return {"rows": len(rows), "tpot_median": float(np.median(e_tpot)), "tpot_p90": float(np.percentile(e_tpot, 90)),
            "ttft_median": float(np.median(e_ttft)), "ttft_p90": float(np.percentile(e_ttft, 90))}


def lodo_table(rows: Sequence[ServingRow], fits: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per device of ``fits``: the committed fit's error on its held-out rows (in-sample: its kernels and
    its other runs were fitted), the leave-device-out error on the same rows, and on all its rows."""
    committed = ({name: load_engine(name) for name in sorted({r.engine for r in rows})}, committed_harnesses(),
                 committed_kv())
    table = []
    for arch, fitted in fits.items():
        mine = [r for r in rows if r.arch == arch]
        held = np.array([r.held_out for r in mine])
        ttft, tpot = predict_rows(mine, *_parts(fitted), gpus={arch: lodo_gpu(arch)})
        own_ttft, own_tpot = predict_rows([r for r in mine if r.held_out], *committed)
        precisions = sorted({r.precision for r in mine})
        table.append({"arch": arch, "in_sample": _errors([r for r in mine if r.held_out], own_ttft, own_tpot),
                      "lodo": _errors([r for r in mine if r.held_out], ttft[held], tpot[held]),
                      "lodo_all": _errors(mine, ttft, tpot),
                      "by_precision": {p or "bf16": _errors([r for r in mine if r.precision == p],
                                                           *(x[[r.precision == p for r in mine]] for x in (ttft, tpot)))
                                       for p in precisions}})
    return table


def _line(t: Mapping[str, Any]) -> str:
    pct = lambda e, k: f"{e[k + '_median'] * 100:.1f}/{e[k + '_p90'] * 100:.0f} %"  # noqa: E731
    ratio = t["lodo"]["tpot_median"] / t["in_sample"]["tpot_median"]
    by = ", ".join(f"{p} {pct(e, 'tpot')}" for p, e in t["by_precision"].items())
    return (f"{t['arch']} serving, leave-device-out vs in-sample on {t['lodo']['rows']} held-out rows: TPOT median/p90 "
            f"{pct(t['lodo'], 'tpot')} vs {pct(t['in_sample'], 'tpot')} (x{ratio:.2f}), TTFT {pct(t['lodo'], 'ttft')} "
            f"vs {pct(t['in_sample'], 'ttft')}; all {t['lodo_all']['rows']} rows: TPOT {pct(t['lodo_all'], 'tpot')}, "
            f"TTFT {pct(t['lodo_all'], 'ttft')}; TPOT by precision (all rows): {by}")


def _markdown(table: Sequence[Mapping[str, Any]]) -> str:
    pct = lambda e, k: f"{e[k + '_median'] * 100:.1f} / {e[k + '_p90'] * 100:.0f}"  # noqa: E731
    lines = ["# Serving: leave-one-device-out", "",
             "Generated by `hwdse calibrate --lodo --report` from `validation/serving_lodo.yaml` (refit: `--write`). "
             "Each GPU's rows of `aic_silicon_dev.csv` predicted by a serving fit (engine terms, client terms, "
             "KV-cache formats) on the other GPUs' training rows, with kernel efficiencies transferred from the other "
             "GPUs' kernel tables (`validation/transfer_lodo.yaml`), beside the committed fit's error on the same "
             "held-out rows (its own kernels and runs fitted). Median / p90 |relative error| %.", "",
             "| GPU | held-out rows | TPOT in-sample | TPOT left out | ratio | TTFT in-sample | TTFT left out "
             "| all rows: TPOT; TTFT left out | all rows by precision: TPOT left out |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        ratio = t["lodo"]["tpot_median"] / t["in_sample"]["tpot_median"]
        lines.append(f"| {t['arch']} | {t['lodo']['rows']} | {pct(t['in_sample'], 'tpot')} | {pct(t['lodo'], 'tpot')} "
                     f"| {ratio:.2f}{' (> 2)' if ratio > 2 else ''} | {pct(t['in_sample'], 'ttft')} | "
                     f"{pct(t['lodo'], 'ttft')} | {pct(t['lodo_all'], 'tpot')}; {pct(t['lodo_all'], 'ttft')} "
                     f"({t['lodo_all']['rows']}) | "
                     + ", ".join(f"{p} {pct(e, 'tpot')} ({e['rows']})" for p, e in t["by_precision"].items()) + " |")
    return "\n".join(lines) + "\n"


def calibrate_serving_lodo(write: bool, report: Path | None = None) -> list[str]:
    """Refit (``write``: into ``validation/serving_lodo.yaml``) or load each device's leave-out fit, and
    score it (``report``: ``serving_lodo.md`` into that folder); lines to print."""
    rows = serving_rows()
    if write or not _path().is_file():
        fits = {arch: fit_without(rows, arch) for arch in sorted({r.arch for r in rows})}
    else:
        fits = yaml.safe_load(_path().read_text())["lodo"]
    table = lodo_table(rows, fits)
    lines = [_line(t) for t in table]
    if write:
        _path().write_text(yaml.safe_dump({"source": SOURCE, "lodo": fits}, sort_keys=False))
        lines.append(f"wrote {_path()}")
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        (report / "serving_lodo.md").write_text(_markdown(table))
        lines.append(f"wrote {report / 'serving_lodo.md'}")
    return lines
