"""The serving validation report: held-out error tables in Markdown and a throughput-latency figure of
measured vs predicted runs (data from :mod:`hwdse.calibration.serving`). This module only formats and draws.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["throughput_latency_figure", "error_markdown", "write_serving_report", "GOAL"]

GOAL = {"tpot_median": 0.10, "tpot_p90": 0.25, "ttft_median": 0.25}


def _per_gpu(rows: Sequence[Any], ttft: np.ndarray, tpot: np.ndarray) -> np.ndarray:
    """Output tokens/s per GPU of closed-loop rows: C osl / (TTFT + (osl - 1) TPOT) / TP."""
    c, osl, tp = (np.array([getattr(r, f) for r in rows], dtype=float) for f in ("concurrency", "osl", "tp"))
    return c * osl / (ttft + (osl - 1) * tpot) / tp


def throughput_latency_figure(rows: Sequence[Any], ttft: np.ndarray, tpot: np.ndarray, panels: int = 6) -> Any:
    """Tokens/s per GPU against TPOT across concurrency, measured (markers) and predicted (lines), for
    the ``panels`` configurations with the most concurrency points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r.system, r.engine, r.precision or "bf16", r.model, r.tp, int(r.isl), int(r.osl))].append(i)
    chosen = sorted(groups, key=lambda k: (-len(groups[k]), k))[:panels]
    measured = _per_gpu(rows, np.array([r.ttft_s for r in rows]), np.array([r.tpot_s for r in rows]))
    predicted = _per_gpu(rows, ttft, tpot)
    cols = 3
    fig, axes = plt.subplots(-(-len(chosen) // cols), cols, figsize=(13, 3.6 * -(-len(chosen) // cols)),
                             squeeze=False)
    for ax, key in zip(axes.flat, chosen):
        idx = sorted(groups[key], key=lambda i: rows[i].concurrency)
        ax.plot([rows[i].tpot_s * 1e3 for i in idx], measured[idx], "o", label="measured")
        ax.plot(tpot[idx] * 1e3, predicted[idx], "-", marker=".", label="hwdse serve")
        for i in idx:
            ax.annotate(f"{rows[i].concurrency:g}", (rows[i].tpot_s * 1e3, measured[i]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        system, engine, precision, model, tp, isl, osl = key
        ax.set_title(f"{model} {system} {engine} {precision} TP{tp}\nISL {isl} OSL {osl}", fontsize=9)
        ax.set_xlabel("TPOT (ms)")
        ax.set_ylabel("output tok/s per GPU")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Serving: throughput vs latency across concurrency (numbers: requests in flight)")
    fig.tight_layout()
    return fig


def error_markdown(table: Sequence[Mapping[str, Any]]) -> list[str]:
    """The error table: held-out rows per system x engine x precision, next to the static-batch TPOT."""
    pct = lambda v: f"{v * 100:.1f}"  # noqa: E731
    lines = ["| system | engine | precision | held-out rows | TPOT median % | TPOT p90 % | TTFT median % | TTFT p90 % "
             "| static-batch TPOT median % |", "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        bold = "**" if t["engine"] == "all" else ""
        lines.append(f"| {bold}{t['system']}{bold} | {t['engine']} | {t['precision']} | {t['rows']} | "
                     f"{pct(t['tpot_median'])} | {pct(t['tpot_p90'])} | {pct(t['ttft_median'])} | {pct(t['ttft_p90'])} | "
                     f"{pct(t['static_tpot_median'])} |")
    return lines


def _disagg_markdown(rows: Sequence[Any], ttft: np.ndarray, tpot: np.ndarray) -> list[str]:
    """Every disaggregated dense row (none was fit on): pools, measured and predicted TTFT / TPOT."""
    lines = ["## Disaggregated dense rows (predicted with the aggregated fit; none enters a fit)", "",
             "| system | engine | model | precision | ISL/OSL | prefill workers x TP | decode workers x TP | "
             "in flight | clients recorded | TTFT ms: measured / hwdse (err %) | TPOT ms: measured / hwdse (err %) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r, a, b in zip(rows, ttft, tpot):
        lines.append(f"| {r.system} | {r.engine} | {r.model} | {r.precision} | {r.isl:.0f}/{r.osl:.0f} | "
                     f"{r.prefill_workers} x {r.prefill_tp} | {r.decode_workers} x {r.decode_tp} | {r.concurrency:.0f} | "
                     f"{'yes' if r.recorded else 'no'} | {r.ttft_s * 1e3:.0f} / {a * 1e3:.0f} "
                     f"({(a / r.ttft_s - 1) * 100:+.0f}) | {r.tpot_s * 1e3:.1f} / {b * 1e3:.1f} "
                     f"({(b / r.tpot_s - 1) * 100:+.0f}) |")
    e_tpot = np.abs(tpot / np.array([r.tpot_s for r in rows]) - 1)
    e_ttft = np.abs(ttft / np.array([r.ttft_s for r in rows]) - 1)
    for label, keep in (("all rows", np.ones(len(rows), bool)), ("the rows with the clients' concurrency recorded",
                                                                  np.array([r.recorded for r in rows], bool))):
        if keep.any():
            lines += ["", f"Median |error| over {label} ({int(keep.sum())}): TPOT {np.median(e_tpot[keep]) * 100:.0f} "
                      f"%, TTFT {np.median(e_ttft[keep]) * 100:.0f} % (goal: TPOT median <= 15 %)."]
    lines += ["", "Where the clients' concurrency is not recorded, `in flight` is the decode pool's batch setting "
              "(decode batch x workers), taken as the load; a run whose clients offered more queues in ways this "
              "table cannot show (TPOT of several hundred ms on a 32B model is such a run)."]
    return lines


def write_serving_report(path: Path, figure: Path, rows: Sequence[Any], ttft: np.ndarray, tpot: np.ndarray,
                         table: Sequence[Mapping[str, Any]], engines: Mapping[str, Any],
                         harnesses: Mapping[str, Any], kv: Mapping[str, str],
                         disagg: tuple[Sequence[Any], np.ndarray, np.ndarray]) -> None:
    """``path`` (Markdown) and ``figure`` (PNG); ``kv``: the fitted KV-cache formats by sweep; ``disagg``:
    disaggregated rows with predicted TTFT, TPOT."""
    figure.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt

    fig = throughput_latency_figure(rows, ttft, tpot)
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    totals = [t for t in table if t["engine"] == "all"]
    verdicts = [f"- {t['system']}: TPOT median {t['tpot_median'] * 100:.1f} % (goal <= 10 %), p90 "
                f"{t['tpot_p90'] * 100:.1f} % (<= 25 %), TTFT median {t['ttft_median'] * 100:.1f} % (<= 25 %): "
                + ("met" if all(t[k] <= v for k, v in GOAL.items()) else "not met") for t in totals]
    params = [f"| {name} | {e.step_overhead_us:.4g} | {e.sequence_overhead_us:.3g} | {e.kernel_overhead_retained:.3g} "
              f"| {e.k_step_retained:.3g} |" for name, e in engines.items()]
    text = ["# Serving validation", "",
            "Generated by `hwdse calibrate --serving --report` from `arch/engines/*.yaml` and "
            "`validation/serving_fit.yaml`. Data: the aggregated dense rows of `shared/validation/aic_silicon_dev.csv` "
            "(H100/H200/B200; Llama-3.1-8B/70B, Qwen3-32B) in closed loop at the measured concurrency; one row in five "
            "(hash of its id) is held out of the fit and scored here. The static-batch column is `evaluate` at "
            "batch = concurrency (achieved mode, fused attention), the figure serving mode replaces.", "",
            *error_markdown(table), "", "Goals (held-out, per GPU):", "", *verdicts, "",
            "## Fitted parameters (training rows only)", "",
            "| engine | step_overhead_us | sequence_overhead_us | kernel_overhead_retained | k_step_retained |",
            "|---|---|---|---|---|",
            *params, "",
            "| scope: harness, campaign (harness, engine, version), sweep (campaign, model, precision) or deployment "
            "(sweep, GPU system) | client wait (inter-completion intervals) | start wave (share of requests) | "
            "request-path latency (ms) |", "|---|---|---|---|",
            *[f"| {k} | {h.client_wait:.3g} | {h.start_wave:.3g} | {h.latency_s * 1e3:.3g} |"
              for k, h in harnesses.items()], "",
            "Client terms (`hwdse.serving.harness`) are how each benchmark client measured, not the engine: TTFT "
            "timed from when a request queued at the client, before a concurrency slot freed (it grows with OSL / "
            "concurrency), the start wave (all clients sending at once; a share of the measured requests waits "
            "behind (C - 1) / 2 prompts), and a fixed latency on each request's path outside the engine's steps "
            "(HTTP front end, tokenization, the first streamed chunk's way back). Each scope with 10 training rows "
            "that are not all of the scope around it has its own terms (a sweep: one model and precision of a "
            "campaign, one client configuration; a deployment: a sweep on one GPU system, one client host and "
            "engine build); a row takes its narrowest fitted scope. The product's default is none of them (TTFT "
            "as the server sees it).", "",
            "| quantized sweep (10 training rows or more) | KV-cache format |", "|---|---|",
            *[f"| {k} | {fmt} |" for k, fmt in kv.items()], "",
            "The file does not record a quantized sweep's KV-cache format (ModelOpt checkpoints quantize it to FP8; "
            "an FP8 checkpoint of another quantizer may keep it at BF16): the fit takes the one of FP8 and BF16 "
            "with the lower log-TPOT loss on the sweep's training rows; other quantized rows read FP8.", "",
            *_disagg_markdown(*disagg), "",
            f"![throughput vs latency]({figure.relative_to(path.parent)})", ""]
    path.write_text("\n".join(text))
