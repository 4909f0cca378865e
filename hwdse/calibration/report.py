"""Validation report of the calibrated GPU model: error tables (Markdown) and predicted-vs-measured
figures. Data come from :mod:`hwdse.calibration.kernels`, :mod:`hwdse.calibration.end_to_end` and
:mod:`hwdse.calibration.power` (computed from the committed catalog parameters); this module only formats and draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwdse.calibration.data import kernel_sets
from hwdse.calibration.end_to_end import gpt3_layer_table, trtllm_table
from hwdse.calibration.kernels import ARCHS, kernel_points, kernel_table
from hwdse.calibration.power import power_table, summary
from hwdse.hardware import load_arch

__all__ = ["validation_data", "kernel_figure", "e2e_figure", "power_figure", "write_report", "THRESHOLDS"]

# The acceptance thresholds (median / worst |relative error|), for the report's verdicts.
THRESHOLDS = {"gemm": 0.10, "decode_attention": 0.15, "e2e_median": 0.10, "e2e_worst": 0.25, "gpt3_layer": 0.10}
FAMILY_TITLES = {"gemm": "GEMM", "prefill_attention": "Prefill attention", "decode_attention": "Decode attention",
                 "vector": "Vector (softmax, LayerNorm, GeLU)", "all_reduce": "All-reduce (NCCL)"}


def validation_data() -> dict[str, Any]:
    """Kernel points and tables, TensorRT-LLM end-to-end rows and GPT-3 layer rows."""
    points = kernel_points()
    return {"points": points, "kernels": kernel_table(points), "trtllm": trtllm_table(), "gpt3": gpt3_layer_table(),
            "power": power_table()}


def kernel_figure(points: Sequence[dict[str, Any]]) -> Any:
    """Predicted vs measured kernel time per family (scored rows), roofline and achieved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f in FAMILY_TITLES if any(p["family"] == f for p in points)]
    cols = min(3, len(families))
    rows = -(-len(families) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(families):]:
        ax.set_visible(False)
    for ax, family in zip(axes.flat, families):
        group = [p for p in points if p["family"] == family]
        measured = np.concatenate([p["measured_s"][p["scored"]] for p in group]) * 1e6
        for mode, style in (("roofline", dict(color="0.6", marker=".", s=6)),
                            ("achieved", dict(color="tab:blue", marker=".", s=6))):
            pred = np.concatenate([p[f"{mode}_s"][p["scored"]] for p in group]) * 1e6
            ax.scatter(measured, pred, label=mode, alpha=0.6, **style)
        lo, hi = measured.min() / 2, measured.max() * 2
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="k", alpha=0.08, label="±10 %")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo / 10, hi), title=FAMILY_TITLES[family],
               xlabel="measured (µs)", ylabel="predicted (µs)")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def power_figure(table: dict[str, Any]) -> Any:
    """Predicted vs measured board power per GPU while serving: catalog terms (train, held out) and
    leave-one-out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    measured, held = table["measured"], table["held_out"]
    archs = np.array([r.arch for r in table["rows"]])
    for arch, color in zip(dict.fromkeys(archs), ("tab:blue", "tab:orange", "tab:green")):
        on = archs == arch
        ax.scatter(measured[on & ~held], table["predicted"][on & ~held], color=color, marker="o", label=f"{arch} train")
        ax.scatter(measured[on & held], table["predicted"][on & held], color=color, marker="s", edgecolor="k",
                   label=f"{arch} held out")
        ax.scatter(measured[on], table["loo"][on], color=color, marker="x", alpha=0.7, label=f"{arch} leave-one-out")
    lo, hi = 300.0, 1100.0
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="k", alpha=0.08, label="±10 %")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="measured W per GPU (ML.ENERGY v3, vLLM)",
           ylabel="predicted W per GPU", title="GPU board power while serving")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _power_lines(table: dict[str, Any], rel: Path) -> list[str]:
    p = table["params"]
    lines = ["", "## GPU board power while serving", "",
             "Board power per GPU under continuous batching (`hwdse.serving.serve`, closed loop at the run's mean "
             "batch, vLLM engine with `max_batch` = the run's `max_num_seqs`) against ML.ENERGY Benchmark v3 "
             "steady-state NVML power (`validation/gpu_serving_power.csv`; sources in "
             "`validation/power_measurements.md`). P = idle (measured, model loaded) + busy floor + "
             "compute_scale × modelled MAC power + memory_scale × modelled DRAM-to-SM power + links; the three "
             f"fitted terms (`hwdse calibrate --power`): busy floor H100 {p['busy_W:h100-sxm']:.0f} W, B200 "
             f"{p['busy_W:b200']:.0f} W, compute_scale {p['compute_scale']:.2f}, memory_scale "
             f"{p['memory_scale']:.2f} (shared: both correct the same per-op energy tables). Prompt lengths are "
             "not recorded by the benchmark (512 assumed). " + summary(table) + ".", "",
             "| run | GPU | model | TP | batch | measured W | predicted W (err %) | leave-one-out W (err %) |",
             "|---|---|---|---|---|---|---|---|"]
    for r, pred, loo in zip(table["rows"], table["predicted"], table["loo"]):
        lines.append(f"| {r.id}{' (held out)' if r.held_out else ''} | {r.arch} | {r.model} | {r.tp} | "
                     f"{r.concurrency:g} | {r.power_w:.0f} | {pred:.0f} ({(pred / r.power_w - 1) * 100:+.1f}) | "
                     f"{loo:.0f} ({(loo / r.power_w - 1) * 100:+.1f}) |")
    return lines + ["", f"![power]({rel / 'power.png'})"]


def e2e_figure(trtllm: Sequence[dict[str, Any]], gpt3: Sequence[dict[str, Any]]) -> Any:
    """TensorRT-LLM static batches and the GPT-3 layer: predicted / measured per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['model'][6:]} {r['gpu']} tp{r['tp']} b{r['batch']} {r['input_len']}/{r['output_len']}"
              for r in trtllm] + [f"GPT-3 layer {r['phase']} (A100, TP4 shard)" for r in gpt3]
    rows = list(trtllm) + list(gpt3)
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
    for off, mode, color in ((-0.18, "roofline", "0.6"), (0.18, "achieved", "tab:blue")):
        ratio = [r[f"{mode}_s"] / r["measured_s"] for r in rows]
        ax.barh(y + off, np.array(ratio) - 1, height=0.34, left=1, color=color, label=mode)
    ax.axvline(1, color="k", lw=0.8)
    ax.axvspan(0.9, 1.1, color="k", alpha=0.08, label="±10 %")
    ax.set(yticks=y, yticklabels=labels, xlabel="predicted / measured time", title="End to end")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _parameters() -> list[tuple[str, str, float]]:
    """(arch, dotted parameter, value) of every calibrated catalog entry."""
    def leaves(node: Any, prefix: str) -> list[tuple[str, float]]:
        if isinstance(node, dict):
            return [x for k, v in node.items() for x in leaves(v, f"{prefix}.{k}" if prefix else k)]
        return [(prefix, float(node))] if isinstance(node, (int, float)) else []

    out = []
    for arch in ARCHS:
        eff = load_arch(arch).efficiency
        out += [(arch, path, value) for path, value in leaves(eff.model_dump(), "")] if eff else []
    return out


def _by_k(points: list[dict[str, Any]]) -> list[str]:
    """Held-out median predicted / measured of the block-scaled (NVFP4) GEMMs by K: the trend the
    no-split-K main loop (``gemm.no_split_k``, ``gemm.k_step_ns``) accounts for."""
    sets = [p for p in points if p["family"] == "gemm" and "nvfp4" in p["set"]]
    if not sets:
        return []
    ks = {s.name: s.ops[0].shape["k"] for s in kernel_sets() if s.name in {p["set"] for p in sets}}
    out = ["", "## NVFP4 GEMMs by K", "", "Held-out median of predicted / measured time by K (the measured kernels "
           "never split K: one tile walks all of K, `gemm.no_split_k`, at least `gemm.k_step_ns` per k).", "",
           "| data set | " + " | ".join(f"K = {k:.0f}" for k in np.unique(ks[sets[0]['set']])) + " |",
           "|---|" + "---|" * np.unique(ks[sets[0]["set"]]).size]
    for p in sets:
        k, ratio = ks[p["set"]], p["achieved_s"] / p["measured_s"]
        cells = [f"{np.median(ratio[p['scored'] & (k == v)]):.2f}" if (p["scored"] & (k == v)).any() else "–"
                 for v in np.unique(k)]
        out.append(f"| {p['set']} | " + " | ".join(cells) + " |")
    return out


def _pct(x: float) -> str:
    return f"{x * 100:.1f}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def write_report(path: Path, figures: Path, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``report.md`` and its PNG figures; returns the data it was made from."""
    data = validation_data() if data is None else data
    figures.mkdir(parents=True, exist_ok=True)
    import matplotlib.pyplot as plt

    for name, fig in (("kernels.png", kernel_figure(data["points"])), ("end_to_end.png",
                                                                      e2e_figure(data["trtllm"], data["gpt3"])),
                      ("power.png", power_figure(data["power"]))):
        fig.savefig(figures / name, dpi=110)
        plt.close(fig)
    rel = Path(figures.name)
    lines = ["# Validation: calibrated GPU model", "",
             "Generated by `hwdse calibrate --report` from the committed `efficiency:` blocks of `arch/*.yaml` "
             "and the measured data in `shared/validation` (see its README). Errors are |predicted / measured − 1|. "
             "Fitted sets are scored on their held-out rows (one in five by shape hash, never seen by the fit); "
             "validation-only sets on every row.", "",
             "## Kernels", "",
             "| data set | arch | family | fit | points | scored | roofline median % | roofline p90 % | "
             "achieved median % | achieved p90 % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["kernels"]:
        lines.append(f"| {r['set']} | {r['arch']} | {r['family']} | {'yes' if r['fit'] else 'validation only'} | "
                     f"{r['points']} | {r['scored']} | {_pct(r['roofline_median'])} | {_pct(r['roofline_p90'])} | "
                     f"{_pct(r['achieved_median'])} | {_pct(r['achieved_p90'])} |")
    lines += ["", f"![kernels]({rel / 'kernels.png'})", "", "## End to end", "",
              "TensorRT-LLM v0.9 static batches (prefill of the batch, then `output_len` decode steps; "
              "e2e = TTFT + gen × TPOT). H100 rows FP8 (`fp8-e4m3` weights, activations, KV), A100 rows FP16; "
              "TP > 1 on a multi-GPU system of the same GPU with calibrated NCCL all-reduce.", "",
              "| model | GPU | precision | TP | batch | in/out | measured s | roofline s (err %) | "
              "achieved s (err %) |", "|---|---|---|---|---|---|---|---|---|"]
    e2e = []
    for r in data["trtllm"]:
        err = {m: r[f"{m}_s"] / r["measured_s"] - 1 for m in ("roofline", "achieved")}
        e2e.append(abs(err["achieved"]))
        lines.append(f"| {r['model']} | {r['gpu']} | {r['precision']} | {r['tp']} | {r['batch']} | "
                     f"{r['input_len']}/{r['output_len']} | {r['measured_s']:.3g} | {r['roofline_s']:.3g} "
                     f"({err['roofline'] * 100:+.1f}) | {r['achieved_s']:.3g} ({err['achieved'] * 100:+.1f}) |")
    lines += ["", "LLMCompass GPT-3 175B layer, per-GPU shard of TP = 4 on one A100 (ops timed host-side; "
              "the two all-reduces from the calibrated NCCL model):", "",
              "| phase | measured ms | roofline ms (err %) | achieved ms (err %) |", "|---|---|---|---|"]
    layer = []
    for r in data["gpt3"]:
        err = {m: r[f"{m}_s"] / r["measured_s"] - 1 for m in ("roofline", "achieved")}
        layer.append(abs(err["achieved"]))
        lines.append(f"| {r['phase']} | {r['measured_s'] * 1e3:.3f} | {r['roofline_s'] * 1e3:.3f} "
                     f"({err['roofline'] * 100:+.1f}) | {r['achieved_s'] * 1e3:.3f} ({err['achieved'] * 100:+.1f}) |")
    lines += ["", f"![end to end]({rel / 'end_to_end.png'})", "", "## Decode attention by GQA group size", "",
              "Held-out median |error| of the achieved model by query heads per KV head. TensorRT-LLM's XQA "
              "tensor-core decode kernel takes groups of at most 32; larger groups run one CUDA-core block per "
              "query head, compute-bound (`attention.decode_max_group`, `attention.decode_vector_fraction`). "
              "vLLM's flash-attn decode has no such limit.", "",
              "| data set | group ≤ 32: rows, median % | group > 32: rows, median % |", "|---|---|---|"]
    for p in (p for p in data["points"] if p["family"] == "decode_attention"):
        e = np.abs(p["achieved_s"] / p["measured_s"] - 1)
        small, large = p["scored"] & (p["group"] <= 32), p["scored"] & (p["group"] > 32)
        cell = [f"{m.sum()}, {_pct(float(np.median(e[m])))}" if m.any() else "none" for m in (small, large)]
        lines.append(f"| {p['set']} | {cell[0]} | {cell[1]} |")
    lines += _by_k(data["points"])
    lines += _power_lines(data["power"], rel)
    lines += ["", "## Fitted parameters", "", "From `arch/<name>.yaml` `efficiency:` (provenance in its `source`).", "",
              "| arch | parameter | value |", "|---|---|---|"]
    lines += [f"| {arch} | {path} | {value:.4g} |" for arch, path, value in _parameters()]
    lines += ["", "## Acceptance thresholds (achieved mode)", ""]
    for family in ("gemm", "decode_attention"):
        for r in (r for r in data["kernels"] if r["family"] == family and r["fit"]):
            lines.append(f"- {r['set']}: held-out median {_pct(r['achieved_median'])} % ≤ "
                         f"{THRESHOLDS[family] * 100:.0f} %: {_verdict(r['achieved_median'] <= THRESHOLDS[family])}")
    lines.append(f"- TensorRT-LLM e2e: median {_pct(float(np.median(e2e)))} % ≤ 10 %: "
                 f"{_verdict(float(np.median(e2e)) <= THRESHOLDS['e2e_median'])}; worst {_pct(max(e2e))} % ≤ 25 %: "
                 f"{_verdict(max(e2e) <= THRESHOLDS['e2e_worst'])}")
    lines.append(f"- GPT-3 layer: prefill and decode within 10 %: {_verdict(max(layer) <= THRESHOLDS['gpt3_layer'])} "
                 f"(worst {_pct(max(layer))} %)")
    path.write_text("\n".join(lines) + "\n")
    return data
