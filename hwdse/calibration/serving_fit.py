"""The serving fit on the training rows of :mod:`hwdse.calibration.serving`, and its committed files.

Engine terms per engine family (log TPOT), the KV-cache format per quantized sweep (log TPOT) and the
benchmark clients' terms per sweep, campaign and harness (log TTFT) are fitted in turn on the rows
not held out; ``hwdse calibrate --serving --write`` writes them into ``arch/engines/*.yaml`` and
``validation/serving_fit.yaml``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import least_squares

from hwdse._catalog import catalog_dir
from hwdse.calibration.campaigns import (
    committed_harnesses,
    committed_kv,
    fit_path,
    scopes,
)
from hwdse.calibration.moe import moe_error_table, moe_rows, predict_moe
from hwdse.calibration.serving import (
    ServingRow,
    disagg_rows,
    error_table,
    predict_disagg,
    predict_rows,
    serving_rows,
    static_tpot,
)
from hwdse.calibration.serving_report import write_serving_report
from hwdse.serving import Harness, load_engine

__all__ = ["fit", "engine_with", "calibrate_serving", "KV_CHOICES", "MIN_CAMPAIGN_ROWS", "ENGINE_FIT", "HARNESS_FIT"]

KV_CHOICES = ("fp8-e4m3", "bf16")  # the KV-cache formats a quantized sweep may have run with
ENGINE_FIT = (("step_overhead_us", 30.0, 0.0, 3000.0), ("sequence_overhead_us", 5.0, 0.0, 200.0),
              ("kernel_overhead_retained", 0.5, 0.0, 1.0), ("k_step_retained", 0.7, 0.0, 1.0))
NO_SPLIT_K = {"fp4"}  # precisions whose GEMMs the kernel tables measured without split-K: they alone see k_step_retained
HARNESS_FIT = (("client_wait", 0.5, 0.0, 5.0), ("start_wave", 0.1, 0.0, 1.0), ("latency_s", 0.02, 0.0, 1.0))
HARNESS_STARTS = tuple(itertools.product((0.0, 0.003, 0.03, 0.3), (0.05, 0.15, 0.3), (0.0, 0.02, 0.05)))  # several basins
DESCENTS = 3      # client-term fits run from the best starts of HARNESS_STARTS: the best one may sit in a side basin
MIN_CAMPAIGN_ROWS = 10
ROUNDS = 2        # engines (log TPOT) and client terms (log TTFT) are fitted in turn: each moves the other
F_SCALE = 0.1     # soft-L1 scale of the log residuals


def _soft_l1(residuals: np.ndarray) -> float:
    """The soft-L1 loss :func:`_least_squares` minimizes, of ``residuals``."""
    return float(np.sum(2 * (np.sqrt(1 + (residuals / F_SCALE) ** 2) - 1)))


def _least_squares(residuals, specs, start: Sequence[float] | None = None) -> np.ndarray:

    x0, lo, hi = (np.array([s[i] for s in specs], dtype=float) for i in (1, 2, 3))
    return least_squares(residuals, x0 if start is None else np.clip(start, lo, hi), bounds=(lo, hi),
                         loss="soft_l1", f_scale=F_SCALE, diff_step=1e-3, x_scale=np.maximum(x0, 0.1), max_nfev=30).x


def engine_with(name: str, values: Mapping[str, float]) -> Any:
    """The catalog engine ``name`` with ``values`` (fitted terms) in place of its own."""
    return load_engine(name).model_copy(update=dict(values))


def _engine(name: str, x: Sequence[float], specs: Sequence[tuple] = ENGINE_FIT) -> Any:
    return engine_with(name, {k: float(v) for (k, *_), v in zip(specs, x)})


def _fit_engines(train: Sequence[ServingRow], harnesses: Mapping[str, Any], kv: Mapping[str, str],
                 start: Mapping[str, Any]) -> dict[str, Any]:
    """Per engine family, ``ENGINE_FIT`` on log TPOT of its training rows (``start``: engines to start
    from). An engine with no rows in a ``NO_SPLIT_K`` precision keeps ``k_step_retained`` = 1 (not
    determined by its data; the catalog's value may come from rows this fit leaves out)."""
    engines = {}
    for name in sorted({r.engine for r in train}):
        mine = [r for r in train if r.engine == name]
        measured = np.log([r.tpot_s for r in mine])
        specs = [s for s in ENGINE_FIT if s[0] != "k_step_retained" or any(r.precision in NO_SPLIT_K for r in mine)]

        def residuals(x: np.ndarray, mine=mine, measured=measured, name=name, specs=specs) -> np.ndarray:
            return np.log(predict_rows(mine, {name: _engine(name, x, specs)}, harnesses, kv)[1]) - measured

        x0 = [getattr(start[name], k) for k, *_ in specs] if name in start else None
        fitted = _engine(name, _least_squares(residuals, specs, x0), specs)
        engines[name] = fitted if len(specs) == len(ENGINE_FIT) else fitted.model_copy(update={"k_step_retained": 1.0})
    return engines


def _fit_kv(train: Sequence[ServingRow], engines: Mapping[str, Any], harnesses: Mapping[str, Any]) -> dict[str, str]:
    """Per quantized sweep with ``MIN_CAMPAIGN_ROWS`` training rows, the format of ``KV_CHOICES`` with the
    lower soft-L1 loss of log TPOT (decode reads the KV cache every step; TTFT barely sees it)."""
    out = {}
    for sweep in sorted({r.sweep for r in train if r.precision}):
        mine = [r for r in train if r.sweep == sweep]
        if len(mine) < MIN_CAMPAIGN_ROWS:
            continue
        measured = np.log([r.tpot_s for r in mine])
        loss = {fmt: _soft_l1(np.log(predict_rows(mine, engines, harnesses, {sweep: fmt})[1]) - measured)
                for fmt in KV_CHOICES}
        out[sweep] = min(loss, key=loss.__getitem__)
    return out


def _fit_harnesses(train: Sequence[ServingRow], engines: Mapping[str, Any], kv: Mapping[str, str]) -> dict[str, Any]:
    """``HARNESS_FIT`` on log TTFT per scope of :func:`~hwdse.calibration.serving.scopes`: pooled per harness,
    and per campaign, sweep and deployment with ``MIN_CAMPAIGN_ROWS`` training rows that are not all of the
    wider scope's (that fit serves them); each fit descends from the ``DESCENTS`` points of
    ``HARNESS_STARTS`` with the lowest loss and keeps the best end."""
    members: dict[str, list[ServingRow]] = defaultdict(list)
    wider: dict[str, tuple[int, str]] = {}  # scope -> (depth from the harness, the scope around it)
    for r in train:
        keys = scopes(r)[::-1]
        for depth, key in enumerate(keys):
            members[key].append(r)
            wider[key] = depth, keys[depth - 1] if depth else ""
    groups = sorted((wider[k][0], k) for k, mine in members.items()
                    if not wider[k][1] or MIN_CAMPAIGN_ROWS <= len(mine) < len(members[wider[k][1]]))
    out = {}
    for _, key in groups:
        mine = members[key]
        measured = np.log([r.ttft_s for r in mine])

        def residuals(x: np.ndarray, mine=mine, measured=measured) -> np.ndarray:
            terms = Harness(*map(float, x))
            return np.log(predict_rows(mine, engines, {scopes(r)[0]: terms for r in mine}, kv)[0]) - measured

        starts = sorted(HARNESS_STARTS, key=lambda x, residuals=residuals: _soft_l1(residuals(np.array(x))))
        fits = [_least_squares(residuals, HARNESS_FIT, start) for start in starts[:DESCENTS]]
        out[key] = Harness(*map(float, min(fits, key=lambda x, residuals=residuals: _soft_l1(residuals(x)))))
    return out


def fit(rows: Sequence[ServingRow]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Fitted engines (per family, on log TPOT), client terms (per scope of a row, on log TTFT)
    and KV-cache formats (per quantized sweep, on log TPOT), from the training rows only (the held-out
    rows are never used)."""
    train = [r for r in rows if not r.held_out]
    engines: dict[str, Any] = {}
    harnesses: dict[str, Any] = {}
    kv: dict[str, str] = {}
    for _ in range(ROUNDS):
        engines = _fit_engines(train, harnesses, kv, engines)
        kv = _fit_kv(train, engines, harnesses)
        harnesses = _fit_harnesses(train, engines, kv)
    return engines, harnesses, kv


def _write_engine(engine: Any, held: str, determined: bool) -> Path:
    """Replace the fitted lines (and their sources) of ``arch/engines/<name>.yaml``; other lines kept.
    ``determined``: the engine had rows of a ``NO_SPLIT_K`` precision (else ``k_step_retained`` stays 1)."""
    path = catalog_dir("arch") / "engines" / f"{engine.name}.yaml"
    lines = []
    for line in path.read_text().splitlines():
        key = line.strip().split(":")[0]
        if key in {k for k, *_ in ENGINE_FIT}:
            indent = line[: len(line) - len(line.lstrip())]
            source = (f"fitted by hwdse calibrate --serving on shared/validation aic_silicon_dev.csv (aggregated dense "
                      f"rows, 4 of 5 by id hash, log TPOT, soft-L1); {held}")
            if key == "k_step_retained" and not determined:
                source = "not determined (no NVFP4 rows of this engine in aic_silicon_dev.csv): the kernel tables' kernels"
            line = f"{indent}{key}: {getattr(engine, key):.4g}" if not indent else f'{indent}{key}: "{source}"'
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def calibrate_serving(write: bool, report: Path | None) -> list[str]:
    """Fit (``write``: into ``arch/engines/*.yaml`` and ``validation/serving_fit.yaml``) or load the
    committed parameters, score the held-out rows, and (``report``) write ``serving.md`` and its figure
    into that folder. Returns the lines to print."""
    rows = serving_rows()
    if write or not fit_path().is_file():
        engines, harnesses, kv = fit(rows)
    else:
        engines = {name: load_engine(name) for name in sorted({r.engine for r in rows})}
        harnesses, kv = committed_harnesses(), committed_kv()
    ttft, tpot = predict_rows(rows, engines, harnesses, kv)
    table = error_table(rows, ttft, tpot, static_tpot(rows, kv))
    lines = [f"{name}: " + ", ".join(f"{k} {getattr(e, k):.4g}" for k, *_ in ENGINE_FIT) for name, e in engines.items()]
    lines += [f"client terms ({key}): wait {h.client_wait:.3g} intervals, start wave {h.start_wave:.3g}, "
              f"latency {h.latency_s * 1e3:.3g} ms" for key, h in harnesses.items()]
    lines += [f"KV cache ({sweep}): {fmt}" for sweep, fmt in kv.items()]
    lines += [f"{t['system']} {t['engine']} {t['precision']}: {t['rows']} held-out rows, TPOT median/p90 "
              f"{t['tpot_median'] * 100:.1f}/{t['tpot_p90'] * 100:.0f} %, TTFT {t['ttft_median'] * 100:.1f}/"
              f"{t['ttft_p90'] * 100:.0f} % (static-batch TPOT {t['static_tpot_median'] * 100:.0f} %)" for t in table]
    mrows, skipped = moe_rows()
    mttft, mtpot = predict_moe(mrows, harnesses)
    lines += [f"MoE (not fitted, every row held out) {t['model']} {t['system']} {t['engine']} {t['precision']}: "
              f"{t['rows']} rows, TPOT median/p90 {t['tpot_median'] * 100:.1f}/{t['tpot_p90'] * 100:.0f} %, TTFT "
              f"{t['ttft_median'] * 100:.1f}/{t['ttft_p90'] * 100:.0f} %" for t in moe_error_table(mrows, mttft, mtpot)]
    lines.append(f"MoE rows left out (pipeline stages, or attention and expert layouts over different GPU "
                 f"counts): {skipped}")
    if write:
        totals = "; ".join(f"{t['system']} TPOT {t['tpot_median'] * 100:.1f} %" for t in table if t["engine"] == "all")
        for e in engines.values():
            determined = any(r.engine == e.name and r.precision in NO_SPLIT_K and not r.held_out for r in rows)
            lines.append(f"wrote {_write_engine(e, 'held-out median |error| ' + totals, determined)}")
        fit_path().write_text(yaml.safe_dump({
            "source": "hwdse calibrate --serving (training rows of aic_silicon_dev.csv, log TTFT, soft-L1)",
            "harness": {k: {f: float(f"{getattr(h, f):.4g}") for f, *_ in HARNESS_FIT} for k, h in harnesses.items()},
            "kv_cache": kv}, sort_keys=False))
        lines.append(f"wrote {fit_path()}")
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        drows = disagg_rows()
        write_serving_report(report / "serving.md", report / "figures" / "serving.png", rows, ttft, tpot, table,
                             engines, harnesses, kv, (drows, *predict_disagg(drows)))
        lines.append(f"wrote {report / 'serving.md'}")
    return lines
