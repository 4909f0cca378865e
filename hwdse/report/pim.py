"""Figures and the Markdown/HTML report of the PIM-vs-GPU decode study (Dataset in, files out).

The data come from :func:`hwdse.report.pim_study.pim_vs_gpu`; nothing here models hardware.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hwdse.report import labels
from hwdse.report.pim_study import LIMITS, crossovers

__all__ = ["curves_figure", "winner_figure", "write_report"]

_METRICS = ("tpot_s", "decode_tok_s", "decode_energy_j_per_token")
_NONE_FITS = {"facecolor": "0.92", "edgecolor": "0.6", "hatch": "///"}  # neutral: no system's colour


def _matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors(systems: list[str]) -> dict[str, Any]:
    """One colour per system (tab10 order), the same in every figure."""
    cmap = _matplotlib().get_cmap("tab10")
    return {s: cmap(k % 10) for k, s in enumerate(systems)}


def reference_prompt(data: xr.Dataset) -> float:
    """The context length the line plots use: 2048 if in the grid, else the middle one."""
    values = data.prompt.values
    return float(2048 if 2048 in values else values[len(values) // 2])


def curves_figure(data: xr.Dataset, prompt: float | None = None) -> Any:
    """TPOT, decode throughput and decode energy/token over batch (rows) per model (columns)."""
    plt = _matplotlib()
    prompt = reference_prompt(data) if prompt is None else prompt
    models, systems = list(data.model.values), [str(s) for s in data.system.values]
    colors = _colors(systems)
    fig, axes = plt.subplots(len(_METRICS), len(models), figsize=(4.2 * len(models), 3.2 * len(_METRICS)),
                             squeeze=False, sharex=True)
    for j, model in enumerate(models):
        for i, var in enumerate(_METRICS):
            ax = axes[i, j]
            for system in systems:
                sel = data.sel(model=model, system=system, prompt=prompt)
                y = (sel[var] * labels.metric(var).scale).where(sel.fits)
                ax.plot(sel.batch.values, y.values, marker="o", ms=3, label=system, color=colors[system])
            ax.set_xscale("log", base=2)
            ax.set_xticks(data.batch.values, [f"{b:g}" for b in data.batch.values], fontsize=7)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if i == 0:
                ax.set_title(f"{model}, context {int(prompt)}")
            if j == 0:
                ax.set_ylabel(labels.axis_label(var))
            if i == len(_METRICS) - 1:
                ax.set_xlabel("batch (sequences)")
    axes[0, 0].legend(fontsize=8, title="missing points: does not fit", title_fontsize=7)
    fig.tight_layout()
    return fig


def winner_figure(data: xr.Dataset, metric: str = "decode_tok_s") -> Any:
    """Per model: which system has the highest ``metric`` at each (batch, context), and what binds it;
    cells where no system fits are grey and hatched."""
    plt = _matplotlib()
    from matplotlib.colors import ListedColormap

    models, systems = list(data.model.values), [str(s) for s in data.system.values]
    colors = _colors(systems)
    score = data[metric].where(data.fits, -np.inf)
    best = score.argmax("system").where(data.fits.any("system"))  # NaN: none fits
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.0), squeeze=False)
    cmap = ListedColormap([colors[s] for s in systems])
    for j, model in enumerate(models):
        ax = axes[0, j]
        grid = best.sel(model=model).transpose("prompt", "batch")
        ax.imshow(np.ma.masked_invalid(grid.values), origin="lower", cmap=cmap, vmin=-0.5, vmax=len(systems) - 0.5,
                  aspect="auto")
        limit = data.limit.sel(model=model)
        for yi, prompt in enumerate(grid.prompt.values):
            for xi, batch in enumerate(grid.batch.values):
                k = grid.values[yi, xi]
                if np.isnan(k):
                    ax.add_patch(plt.Rectangle((xi - 0.5, yi - 0.5), 1, 1, lw=0, **_NONE_FITS))
                else:
                    tag = str(limit.sel(system=systems[int(k)], batch=batch, prompt=prompt).values)
                    ax.text(xi, yi, _short(tag), ha="center", va="center", fontsize=6)
        ax.set_xticks(range(grid.batch.size), [f"{int(b)}" for b in grid.batch.values], fontsize=7)
        ax.set_yticks(range(grid.prompt.size), [f"{int(p)}" for p in grid.prompt.values], fontsize=7)
        ax.set_xlabel("batch")
        ax.set_ylabel("context (prompt tokens)")
        ax.set_title(f"{model}: highest {labels.metric(metric).inline}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[s]) for s in systems] + [plt.Rectangle((0, 0), 1, 1,
                                                                                               **_NONE_FITS)]
    fig.legend(handles, systems + ["none fits"], loc="lower center", ncol=len(systems) + 1, fontsize=8)
    fig.text(0.01, 0.01, "binding limit: " + ", ".join(f"{_short(x)}={x}" for x in LIMITS[:4]) + "\n"
             + ", ".join(f"{_short(x)}={x}" for x in LIMITS[4:]) + " (host: GPUs or PIM controller)", fontsize=7)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


_CODES = {"capacity": "K", "pim compute": "PC", "pim memory": "PM", "pim communication": "PL",
          "host compute": "HC", "host memory": "HM", "host communication": "HL"}


def _short(limit: str) -> str:
    """Two-letter tag of a binding limit (P = PIM units, H = host: GPUs or controller; C compute, M memory,
    L link/collectives; K capacity)."""
    return _CODES.get(limit, limit)


def _table(data: xr.Dataset, prompt: float) -> list[str]:
    lines = ["| model | system | " + " | ".join(f"b={int(b)}" for b in data.batch.values) + " |",
             "|---|---|" + "---|" * data.batch.size]
    for model in data.model.values:
        for system in data.system.values:
            sel = data.sel(model=model, system=system, prompt=prompt)
            cells = [f"{labels.format_value('tpot_s', t, '{:.1f}')} / "
                     f"{labels.format_value('decode_energy_j_per_token', e, '{:.2f}')} ({_short(str(lim))})"
                     if bool(f) else "does not fit"
                     for t, e, f, lim in zip(sel.tpot_s.values, sel.decode_energy_j_per_token.values,
                                             sel.fits.values, sel.limit.values)]
            lines.append(f"| {model} | {system} | " + " | ".join(cells) + " |")
    return lines


def _crossover_lines(data: xr.Dataset) -> list[str]:
    lines = ["| model | PIM system | context | PIM at least as fast at batch | crossovers (batch a -> b: winner) "
             "| difference beyond the bands at batch |", "|---|---|---|---|---|---|"]
    for r in crossovers(data):
        wins = ", ".join(str(int(b)) for b in r["pim_wins"]) or "never"
        changes = "; ".join(f"{int(a)} -> {int(b)}: {w}" for a, b, w in r["crossovers"]) or "none"
        beyond = ("no band (roofline bounds)" if r["beyond_band"] is None
                  else ", ".join(str(int(b)) for b in r["beyond_band"]) or "none")
        lines.append(f"| {r['model']} | {r['system']} | {int(r['prompt'])} | {wins} | {changes} | {beyond} |")
    return lines


def write_report(data: xr.Dataset, out: str | Path, title: str = "PIM versus GPU for decode") -> Path:
    """Write ``curves.png``, ``winners.png``, ``results.nc``, ``report.md`` and ``report.html`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plt = _matplotlib()
    for name, fig in (("curves.png", curves_figure(data)), ("winners.png", winner_figure(data))):
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
    data.to_netcdf(out / "results.nc")
    prompt = reference_prompt(data)
    systems = json.loads(data.attrs.get("systems", "{}"))
    md = [f"# {title}", "",
          f"Mode: {data.attrs.get('mode')}; {int(data.attrs.get('gen', 0))} generated tokens; decode metrics "
          "are exact means over the generated tokens. Systems (capacity-matched, 1280 GiB):", ""]
    bases = dict(zip(data.system.values, data.basis.values)) if "basis" in data else {}
    md += [f"- **{label}**: `{arch}` ({fmt}; basis {bases.get(label, '?')})" for label, (arch, fmt) in systems.items()]
    md += ["", "![TPOT, throughput and energy over batch](curves.png)", "",
           "![Winner and binding limit over batch x context](winners.png)", "",
           f"## {labels.axis_label('tpot_s')} / {labels.axis_label('decode_energy_j_per_token')} at context "
           f"{int(prompt)} (binding limit in parentheses)", "",
           *_table(data, prompt), "", "Limits: " + ", ".join(f"{_short(x)} = {x}" for x in LIMITS) + ". "
           "'pim communication' is the host link (and blocked-mode switches); 'host' is the GPUs (their collectives "
           "in 'host communication') or, for AiM, its controller.", "",
           "## Crossovers (decode throughput)", "", *_crossover_lines(data), ""]
    text = "\n".join(md)
    (out / "report.md").write_text(text)
    (out / "report.html").write_text(_html(text, title))
    return out / "report.md"


def _html(markdown: str, title: str) -> str:
    """A plain HTML rendering: headings, images, tables, paragraphs."""
    body = []
    rows: list[str] = []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            if set(line.replace("|", "").strip()) <= {"-"}:
                continue
            tag = "th" if not rows else "td"
            rows.append("<tr>" + "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>" for c in line.strip("|").split("|"))
                        + "</tr>")
            continue
        if rows:
            body.append("<table border='1' cellspacing='0'>" + "".join(rows) + "</table>")
            rows = []
        if line.startswith("!["):
            alt, src = line[2:].split("](")
            body.append(f"<p><img src='{html.escape(src.rstrip(')'))}' alt='{html.escape(alt)}'></p>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>" \
           + "\n".join(body) + "</body></html>"
