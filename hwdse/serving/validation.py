"""Measured serving runs (``shared/validation/aic_silicon_dev.csv``) against :func:`hwdse.serving.serve`.

Rows: aggregated dense runs on H100/H200/B200 (Llama-3.1-8B/70B, Qwen3-32B). A row's system is the
catalog GPU, tensor-parallel over ``tp_size`` GPUs; ``precision`` sets the formats ('' = bf16; fp8 =
FP8 E4M3 weights and activations; fp4 = NVFP4). The file does not record the KV-cache format of a
quantized sweep: ModelOpt checkpoints quantize it to FP8, an FP8 checkpoint of another quantizer may keep
it at BF16. It is FP8 unless the fit chose BF16 for the sweep on its training rows (``KV_CHOICES``);
BF16 for BF16 rows. The split holds out one row in five by a hash of its id; :func:`fit` uses the others
only.

Each row comes from a benchmark campaign: its harness (``dump``: the 2026 database dump; ``gap``: the
per-version gap-analysis tables; ``dynamo``: Dynamo deployment jobs) with one engine version, and
within it from one sweep (one model and precision: one client configuration; the gap campaign of
TensorRT-LLM 1.0.0rc3 times Llama-3.1-8B's TTFT growing with OSL and Qwen3-32B's flat in it). Client
terms (:class:`hwdse.serving.Harness`: slot wait, start wave) are fitted on the training rows of each
sweep, campaign and harness with at least ``MIN_CAMPAIGN_ROWS`` of them; a row takes the narrowest.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwdse.perf.calibration_data import load_rows

__all__ = ["ServingRow", "DisaggRow", "serving_rows", "disagg_rows", "predict_disagg", "predict_rows", "harness_of",
           "kv_of", "fit", "committed_harnesses", "committed_kv", "static_tpot", "error_table", "calibrate_serving", "SYSTEMS", "MODELS"]

SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200"}
MODELS = {"Llama-3.1-8B": "llama-3-8b", "Llama-3.1-70B": "llama-3-70b", "Qwen3-32B": "qwen3-32b"}
FORMATS = {"": ("bf16", "bf16"), "fp8": ("fp8-e4m3", "fp8-e4m3"), "fp4": ("nvfp4", "fp8-e4m3")}  # weights, KV
KV_CHOICES = ("fp8-e4m3", "bf16")  # the KV-cache formats a quantized sweep may have run with
HELD_OUT_EVERY = 5


@dataclass(frozen=True)
class _Run:
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


@dataclass(frozen=True)
class ServingRow(_Run):
    """An aggregated run on ``tp`` GPUs."""

    tp: int
    held_out: bool
    harness: str     # "dump": the 2026 database dump; "gap": per-version gap-analysis tables; "dynamo": Dynamo jobs
    campaign: str    # harness, engine and engine version
    sweep: str       # campaign, model and precision: one benchmark sweep (one client configuration)


@dataclass(frozen=True)
class DisaggRow(_Run):
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


def _harness(r: dict[str, str]) -> str:
    if not r["backend_version"]:
        return "dump"
    return "dynamo" if "gtl_job_id=" in r["silicon_data_source"] else "gap"


def _campaign(r: dict[str, str]) -> str:
    return " ".join(filter(None, (_harness(r), r["backend"], r["backend_version"])))


def _sweep(r: dict[str, str], model: str) -> str:
    return f"{_campaign(r)} {model} {r['precision'] or 'bf16'}"


def serving_rows(mode: str = "agg") -> list[ServingRow]:
    """Dense rows of ``mode`` on the catalog GPUs with a single pipeline stage and no attention DP."""
    return [ServingRow(**run, concurrency=float(r["batch_size"]), tp=int(r["tp_size"]),
                       held_out=int(hashlib.sha256(r["id"].encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0,
                       harness=_harness(r), campaign=_campaign(r), sweep=_sweep(r, run["model"]))
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


def _system(arch: str, tp: int) -> Any:
    """The catalog GPU, tensor-parallel over ``tp`` of them."""
    from hwdse.hardware import load_arch
    from hwdse.hardware.multi import with_parallelism

    return load_arch(arch) if tp == 1 else with_parallelism(load_arch(arch), tp)


def _grouped(rows: Sequence[ServingRow], *keys: str) -> dict[tuple, tuple[list[int], dict[str, np.ndarray]]]:
    """Row indices and the (concurrency, isl, osl) columns of the rows sharing ``keys``."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[tuple(getattr(r, k) for k in keys)].append(i)
    return {key: (idx, {f: np.array([getattr(rows[i], f) for i in idx]) for f in ("concurrency", "isl", "osl")})
            for key, idx in groups.items()}


def harness_of(row: ServingRow, harnesses: Mapping[str, Any]) -> Any:
    """The client terms of ``row``: its sweep's, else its campaign's, else its harness' pooled fit, else none."""
    from hwdse.serving import SERVER

    return harnesses.get(row.sweep) or harnesses.get(row.campaign) or harnesses.get(row.harness) or SERVER


def kv_of(row: ServingRow, kv: Mapping[str, str]) -> str:
    """The KV-cache format of ``row``: its sweep's fitted choice, else its precision's default."""
    return kv.get(row.sweep, FORMATS[row.precision][1])


def predict_rows(rows: Sequence[ServingRow], engines: Mapping[str, Any] | None = None,
                 harnesses: Mapping[str, Any] | None = None,
                 kv: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (TTFT, TPOT) seconds per row; rows of one system/model/format/TP/engine/sweep are one
    call. ``engines``: engine specs by family (default: the catalog); ``harnesses``: client terms by
    sweep, campaign or harness (default: none, TTFT as the server sees it); ``kv``: KV-cache formats by
    sweep (default: the precision's)."""
    from hwdse.serving import serve

    ttft, tpot = np.empty(len(rows)), np.empty(len(rows))
    for (arch, model, precision, tp, engine, _), (idx, cols) in _grouped(
            rows, "arch", "model", "precision", "tp", "engine", "sweep").items():
        ds = serve(model, _system(arch, tp), **cols, engine=(engines or {}).get(engine, engine),
                   weights=FORMATS[precision][0], kv=kv_of(rows[idx[0]], kv or {}), mode="achieved",
                   harness=harness_of(rows[idx[0]], harnesses or {}))
        ttft[idx], tpot[idx] = np.asarray(ds.ttft_s), np.asarray(ds.tpot_s)
    return ttft, tpot


def predict_disagg(rows: Sequence[DisaggRow]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (TTFT, TPOT) seconds of disaggregated rows with the committed engines (never fit on them)."""
    from hwdse.serving import serve_disaggregated

    ttft, tpot = np.empty(len(rows)), np.empty(len(rows))
    for i, r in enumerate(rows):
        fmt, kv = FORMATS[r.precision]
        ds = serve_disaggregated(r.model, _system(r.arch, r.prefill_tp), _system(r.arch, r.decode_tp),
                                 concurrency=r.concurrency, isl=r.isl, osl=r.osl, prefill_instances=r.prefill_workers,
                                 decode_instances=r.decode_workers, engine=r.engine, weights=fmt, kv=kv, mode="achieved")
        ttft[i], tpot[i] = float(ds.ttft_s), float(ds.tpot_s)
    return ttft, tpot


ENGINE_FIT = (("step_overhead_us", 30.0, 0.0, 3000.0), ("sequence_overhead_us", 5.0, 0.0, 200.0),
              ("kernel_overhead_retained", 0.5, 0.0, 1.0), ("k_step_retained", 0.7, 0.0, 1.0))
NO_SPLIT_K = {"fp4"}  # precisions whose GEMMs the kernel tables measured without split-K: they alone see k_step_retained
HARNESS_FIT = (("client_wait", 0.5, 0.0, 5.0), ("start_wave", 0.1, 0.0, 1.0))
HARNESS_STARTS = tuple(itertools.product((0.0, 0.003, 0.03, 0.3), (0.05, 0.15, 0.3)))  # the TTFT loss has several basins
MIN_CAMPAIGN_ROWS = 10
ROUNDS = 2        # engines (log TPOT) and client terms (log TTFT) are fitted in turn: each moves the other
F_SCALE = 0.1     # soft-L1 scale of the log residuals


def _soft_l1(residuals: np.ndarray) -> float:
    """The soft-L1 loss :func:`_least_squares` minimizes, of ``residuals``."""
    return float(np.sum(2 * (np.sqrt(1 + (residuals / F_SCALE) ** 2) - 1)))


def _least_squares(residuals, specs, start: Sequence[float] | None = None) -> np.ndarray:
    from scipy.optimize import least_squares

    x0, lo, hi = (np.array([s[i] for s in specs], dtype=float) for i in (1, 2, 3))
    return least_squares(residuals, x0 if start is None else np.clip(start, lo, hi), bounds=(lo, hi),
                         loss="soft_l1", f_scale=F_SCALE, diff_step=1e-3, x_scale=np.maximum(x0, 0.1), max_nfev=30).x


def _engine(name: str, x: Sequence[float], specs: Sequence[tuple] = ENGINE_FIT) -> Any:
    from hwdse.serving import load_engine

    return load_engine(name).model_copy(update={k: float(v) for (k, *_), v in zip(specs, x)})


def _fit_engines(train: Sequence[ServingRow], harnesses: Mapping[str, Any], kv: Mapping[str, str],
                 start: Mapping[str, Any]) -> dict[str, Any]:
    """Per engine family, ``ENGINE_FIT`` on log TPOT of its training rows (``start``: engines to start
    from). An engine with no rows in a ``NO_SPLIT_K`` precision keeps ``k_step_retained`` = 1 (not
    determined by its data)."""
    engines = {}
    for name in sorted({r.engine for r in train}):
        mine = [r for r in train if r.engine == name]
        measured = np.log([r.tpot_s for r in mine])
        specs = [s for s in ENGINE_FIT if s[0] != "k_step_retained" or any(r.precision in NO_SPLIT_K for r in mine)]

        def residuals(x: np.ndarray, mine=mine, measured=measured, name=name, specs=specs) -> np.ndarray:
            return np.log(predict_rows(mine, {name: _engine(name, x, specs)}, harnesses, kv)[1]) - measured

        x0 = [getattr(start[name], k) for k, *_ in specs] if name in start else None
        engines[name] = _engine(name, _least_squares(residuals, specs, x0), specs)
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
    """``HARNESS_FIT`` on log TTFT, pooled per harness, and per campaign and per sweep with
    ``MIN_CAMPAIGN_ROWS`` training rows (a campaign's only sweep is the campaign); each local fit starts
    from the point of ``HARNESS_STARTS`` with the lowest loss."""
    from hwdse.serving import Harness

    groups = {h: [r for r in train if r.harness == h] for h in sorted({r.harness for r in train})}
    campaigns = {c: [r for r in train if r.campaign == c] for c in sorted({r.campaign for r in train})}
    groups.update({c: mine for c, mine in campaigns.items() if len(mine) >= MIN_CAMPAIGN_ROWS})
    for c in sorted({r.sweep for r in train}):
        mine = [r for r in train if r.sweep == c]
        if MIN_CAMPAIGN_ROWS <= len(mine) < len(campaigns[mine[0].campaign]):  # a campaign of one sweep is fitted
            groups[c] = mine
    out = {}
    for key, mine in groups.items():
        measured = np.log([r.ttft_s for r in mine])

        def residuals(x: np.ndarray, mine=mine, measured=measured) -> np.ndarray:
            terms = Harness(*map(float, x))
            return np.log(predict_rows(mine, engines, {r.sweep: terms for r in mine}, kv)[0]) - measured

        start = min(HARNESS_STARTS, key=lambda x, residuals=residuals: _soft_l1(residuals(np.array(x))))
        out[key] = Harness(*map(float, _least_squares(residuals, HARNESS_FIT, start)))
    return out


def fit(rows: Sequence[ServingRow]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Fitted engines (per family, on log TPOT), client terms (per sweep, campaign or harness, on log TTFT)
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


def static_tpot(rows: Sequence[ServingRow], kv: Mapping[str, str] | None = None) -> np.ndarray:
    """TPOT of the static-batch evaluator at batch = concurrency (achieved mode, fused attention; ``kv``
    as in :func:`predict_rows`): the figure serving mode replaces."""
    from hwdse.perf import evaluate

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


FIT_FILE = "serving_fit.yaml"


def fit_path() -> Path:
    """``validation/serving_fit.yaml``: the fitted client terms and KV-cache formats."""
    from hwdse._catalog import catalog_dir

    return catalog_dir("arch").parent / "validation" / FIT_FILE


def committed_harnesses() -> dict[str, Any]:
    """The client terms of ``validation/serving_fit.yaml`` by campaign or harness."""
    import yaml

    from hwdse.serving import Harness

    return {k: Harness(**v) for k, v in yaml.safe_load(fit_path().read_text())["harness"].items()}


def committed_kv() -> dict[str, str]:
    """The KV-cache formats of ``validation/serving_fit.yaml`` by sweep."""
    import yaml

    return dict(yaml.safe_load(fit_path().read_text()).get("kv_cache", {}))


def _write_engine(engine: Any, held: str, determined: bool) -> Path:
    """Replace the fitted lines (and their sources) of ``arch/engines/<name>.yaml``; other lines kept.
    ``determined``: the engine had rows of a ``NO_SPLIT_K`` precision (else ``k_step_retained`` stays 1)."""
    from hwdse._catalog import catalog_dir

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
    import yaml

    from hwdse.report.serving import write_serving_report
    from hwdse.serving import load_engine

    rows = serving_rows()
    if write or not fit_path().is_file():
        engines, harnesses, kv = fit(rows)
    else:
        engines = {name: load_engine(name) for name in sorted({r.engine for r in rows})}
        harnesses, kv = committed_harnesses(), committed_kv()
    ttft, tpot = predict_rows(rows, engines, harnesses, kv)
    table = error_table(rows, ttft, tpot, static_tpot(rows, kv))
    lines = [f"{name}: " + ", ".join(f"{k} {getattr(e, k):.4g}" for k, *_ in ENGINE_FIT) for name, e in engines.items()]
    lines += [f"client terms ({key}): wait {h.client_wait:.3g} intervals, start wave {h.start_wave:.3g}"
              for key, h in harnesses.items()]
    lines += [f"KV cache ({sweep}): {fmt}" for sweep, fmt in kv.items()]
    lines += [f"{t['system']} {t['engine']} {t['precision']}: {t['rows']} held-out rows, TPOT median/p90 "
              f"{t['tpot_median'] * 100:.1f}/{t['tpot_p90'] * 100:.0f} %, TTFT {t['ttft_median'] * 100:.1f}/"
              f"{t['ttft_p90'] * 100:.0f} % (static-batch TPOT {t['static_tpot_median'] * 100:.0f} %)" for t in table]
    from hwdse.serving.moe_validation import moe_error_table, moe_rows, predict_moe

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
            "harness": {k: {"client_wait": float(f"{h.client_wait:.4g}"), "start_wave": float(f"{h.start_wave:.4g}")}
                        for k, h in harnesses.items()},
            "kv_cache": kv}, sort_keys=False))
        lines.append(f"wrote {fit_path()}")
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        drows = disagg_rows()
        write_serving_report(report / "serving.md", report / "figures" / "serving.png", rows, ttft, tpot, table,
                             engines, harnesses, kv, (drows, *predict_disagg(drows)))
        lines.append(f"wrote {report / 'serving.md'}")
    return lines
