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
from hwdse.report.verdict import VERDICTS, verdicts

__all__ = ["curves_figure", "winner_figure", "verdict_figure", "efficiency_figure", "static_verdicts",
           "serving_verdicts", "write_report"]

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


_STYLE = {  # how a verdict paints its cell; "leader" takes the leading system's colour
    "wins": {"alpha": 1.0},
    "within band": {"alpha": 0.35},
    "only serves": {"fill": False, "hatch": "xx"},
    "none serves": {"facecolor": "0.82", "edgecolor": "0.6"},
    "none fits": _NONE_FITS,
}
_LEGEND = {"wins": "leads beyond both bands", "within band": "leads within the bands",
           "only serves": "the only one that serves", "none serves": "none meets the objectives",
           "none fits": "none fits"}


def _verdict_patch(plt: Any, xy: tuple[float, float], verdict: str, color: Any) -> Any:
    """A unit cell painted as ``verdict`` says (``color``: the leader's)."""
    style = dict(_STYLE[verdict])
    if verdict in ("wins", "within band"):
        style = {"facecolor": color, "edgecolor": "white", **style}
    elif verdict == "only serves":
        style = {"edgecolor": color, **style}
    return plt.Rectangle(xy, 1, 1, lw=0.8, **style)


def _verdict_panel(ax: Any, cells: xr.Dataset, colors: dict[str, Any], x: str, y: str,
                   text: Any = None) -> None:
    """Paint one panel of a verdict map: ``cells`` (``verdict``, ``leader``, ``ratio`` over ``y`` x ``x``);
    ``text(cell)`` (optional) adds a label to a cell with a leader."""
    plt = _matplotlib()
    cells = cells.transpose(y, x)
    for yi in range(cells.sizes[y]):
        for xi in range(cells.sizes[x]):
            cell = cells.isel({y: yi, x: xi})
            verdict, leader = str(cell.verdict.values), str(cell.leader.values)
            ax.add_patch(_verdict_patch(plt, (xi - 0.5, yi - 0.5), verdict, colors.get(leader, "0.5")))
            label = text(cell) if text is not None and leader else ""
            if label:
                ax.text(xi, yi, label, ha="center", va="center", fontsize=6,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8, "lw": 0})
    ax.set_xlim(-0.5, cells.sizes[x] - 0.5)
    ax.set_ylim(-0.5, cells.sizes[y] - 0.5)
    ax.set_xticks(range(cells.sizes[x]), [f"{v:g}" if isinstance(v, float) else str(v) for v in cells[x].values],
                  fontsize=7)
    ax.set_yticks(range(cells.sizes[y]), [f"{v:g}" if isinstance(v, float) else str(v) for v in cells[y].values],
                  fontsize=7)


def _verdict_legend(fig: Any, systems: list[str], colors: dict[str, Any]) -> None:
    plt = _matplotlib()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[s]) for s in systems]
    handles += [_verdict_patch(plt, (0, 0), v, "0.3") for v in VERDICTS]
    fig.legend(handles, systems + [_LEGEND[v] for v in VERDICTS], loc="lower center",
               ncol=(len(systems) + len(VERDICTS) + 1) // 2, fontsize=7)


def static_verdicts(data: xr.Dataset, metric: str = "decode_tok_s") -> xr.Dataset:
    """Verdicts of the static-batch view: highest ``metric`` among the systems that fit, against the TPOT bands."""
    return verdicts(data[metric], data.fits, data.fits, data.tpot_band)


def winner_figure(data: xr.Dataset, metric: str = "decode_tok_s") -> Any:
    """Static batch, per model: who has the highest ``metric`` at each (batch, context), whether that is a win
    beyond the bands, and what binds the leader."""
    plt = _matplotlib()
    models, systems = list(data.model.values), [str(s) for s in data.system.values]
    colors = _colors(systems)
    cells = static_verdicts(data, metric)
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.8), squeeze=False)
    for j, model in enumerate(models):
        ax = axes[0, j]
        limit = data.limit.sel(model=model)
        _verdict_panel(ax, cells.sel(model=model), colors, "batch", "prompt",
                       lambda c: _short(str(limit.sel(system=str(c.leader.values), batch=c.batch,
                                                      prompt=c.prompt).values)))
        ax.set_xlabel("batch")
        ax.set_ylabel("context (prompt tokens)")
        ax.set_title(f"{model}: highest {labels.metric(metric).inline}", fontsize=10)
    _verdict_legend(fig, systems, colors)
    fig.text(0.01, 0.125, "binding limit of the leader: " + ", ".join(f"{_short(x)}={x}" for x in LIMITS[:4]) + "\n"
             + ", ".join(f"{_short(x)}={x}" for x in LIMITS[4:]) + " (host: GPUs or PIM controller)", fontsize=7)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    return fig


def serving_verdicts(data: xr.Dataset) -> xr.Dataset:
    """Verdicts of the serving view: most goodput per kW among the systems that serve, against the energy bands."""
    return verdicts(data.goodput_per_kw, data.serves, data.fits, data.energy_band)


def verdict_figure(data: xr.Dataset) -> Any:
    """Serving, per model: who serves each (context, traffic tier) with the most goodput per kW, by how much
    (leader over runner-up) and whether beyond the bands; "only serves" and "none" cells apart."""
    plt = _matplotlib()
    models, systems = list(data.model.values), [str(s) for s in data.system.values]
    colors = _colors(systems)
    cells = serving_verdicts(data)
    cols = min(2, len(models))
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, (0.9 + 0.45 * data.traffic.size) * rows + 0.9),
                             squeeze=False)
    for k, model in enumerate(models):
        ax = axes[k // cols, k % cols]
        _verdict_panel(ax, cells.sel(model=model), colors, "context", "traffic", _ratio_text)
        ax.set_xlabel("context (prompt tokens)", fontsize=8)
        ax.set_ylabel("traffic tier", fontsize=8)
        ax.set_title(f"{model}: most goodput per kW (leader / runner-up)", fontsize=9)
    for ax in axes.flat[len(models):]:
        ax.set_visible(False)
    _verdict_legend(fig, systems, colors)
    fig.tight_layout(rect=(0, 0.9 / fig.get_figheight(), 1, 1))
    return fig


def _ratio_text(cell: xr.Dataset) -> str:
    ratio = float(cell.ratio)
    return f"{ratio:.2f}x" if np.isfinite(ratio) else "only" if str(cell.verdict.values) == "only serves" else ""


def efficiency_figure(data: xr.Dataset) -> Any:
    """Goodput per kW over context, each system at its best operating point, with its p90 energy band (shaded);
    rows: traffic tiers, columns: models; markers: aggregated (o) or disaggregated (s) best."""
    plt = _matplotlib()
    models, tiers, systems = list(data.model.values), list(data.traffic.values), [str(s) for s in data.system.values]
    colors = _colors(systems)
    fig, axes = plt.subplots(len(tiers), len(models), figsize=(4.2 * len(models), 2.8 * len(tiers)), squeeze=False,
                             sharex=True)
    for i, tier in enumerate(tiers):
        for j, model in enumerate(models):
            ax = axes[i, j]
            for system in systems:
                sel = data.sel(model=model, traffic=tier, system=system)
                y = sel.goodput_per_kw.where(sel.serves)
                band = sel.energy_band.fillna(0.0)
                x = sel.context.values
                ax.plot(x, y.values, color=colors[system], label=system, lw=1.2)
                ax.fill_between(x, (y * (1 - band)).values, (y * (1 + band)).values, color=colors[system], alpha=0.15,
                                lw=0)
                for marker, deployment in (("o", "aggregated"), ("s", "disaggregated")):
                    at = (sel.deployment == deployment) & sel.serves
                    ax.plot(x[at.values], y.values[at.values], marker, color=colors[system], ms=4)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(data.context.values, [f"{c:g}" for c in data.context.values], fontsize=7)
            ax.grid(True, which="both", alpha=0.3)
            if i == 0:
                ax.set_title(model, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{tier}: goodput per kW\n(token/s/kW)", fontsize=8)
            if i == len(tiers) - 1:
                ax.set_xlabel("context (prompt tokens)")
    axes[0, 0].legend(fontsize=7, title="o aggregated, s disaggregated", title_fontsize=6)
    fig.tight_layout()
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


def _band(value: float, band: float) -> str:
    return f"{value:,.0f}" + ("" if not np.isfinite(band) else f" ±{band:.0%}")


def _serving_table(data: xr.Dataset, cells: xr.Dataset, model: str, tier: str) -> list[str]:
    """Goodput per kW (± p90 energy band) of every system per context, and the verdict."""
    systems = [str(s) for s in data.system.values]
    lines = ["| context | " + " | ".join(systems) + " | verdict |", "|---|" + "---|" * (len(systems) + 1)]
    for context in data.context.values:
        sel = data.sel(model=model, traffic=tier, context=context)
        row = [(_band(float(sel.goodput_per_kw.sel(system=s)), float(sel.energy_band.sel(system=s)))
                + f" ({_where(sel.sel(system=s))})") if bool(sel.serves.sel(system=s)) else
               ("no point meets the objectives" if bool(sel.fits.sel(system=s)) else "does not fit")
               for s in systems]
        cell = cells.sel(model=model, traffic=tier, context=context)
        lines.append(f"| {int(context)} | " + " | ".join(row) + f" | {_verdict_text(cell)} |")
    return lines


def _where(sel: xr.Dataset) -> str:
    """A system's chosen operating point in a few words: deployment, mapping, concurrency, pools."""
    pools = (f", {int(sel.prefill_instances)}:{int(sel.decode_instances)} pools"
             if str(sel.deployment.values) == "disaggregated" else "")
    return f"{str(sel.deployment.values)[:6]}., {sel.mapping.values}, {int(sel.concurrency)} clients{pools}"


def _verdict_text(cell: xr.Dataset) -> str:
    verdict, leader = str(cell.verdict.values), str(cell.leader.values)
    if verdict in ("wins", "within band"):
        return f"{leader} {verdict} ({float(cell.ratio):.2f}x {cell.runner_up.values})"
    return f"{leader} only serves" if verdict == "only serves" else verdict


def _points_table(data: xr.Dataset, context: float) -> list[str]:
    """Every system's chosen operating point at one context: the numbers behind the verdicts."""
    lines = ["| model | traffic | system | deployment | mapping | clients | TTFT (s) | TPOT (ms) | token/s/kW "
             "| token/s/device | J/token | $/Mtoken | binding limit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in data.model.values:
        for tier in data.traffic.values:
            for system in data.system.values:
                sel = data.sel(model=model, traffic=tier, system=system, context=context)
                if not bool(sel.serves):
                    lines.append(f"| {model} | {tier} | {system} | {sel.reason.values} |" + " |" * 9)
                    continue
                pools = (f" ({int(sel.prefill_instances)}:{int(sel.decode_instances)})"
                         if str(sel.deployment.values) == "disaggregated" else "")
                lines.append(f"| {model} | {tier} | {system} | {sel.deployment.values}{pools} | {sel.mapping.values} "
                             f"| {int(sel.concurrency)} | {float(sel.ttft_s):.2f} | {float(sel.tpot_s) * 1e3:.1f} "
                             f"| {_band(float(sel.goodput_per_kw), float(sel.energy_band))} "
                             f"| {float(sel.goodput_tok_s_per_device):,.1f} | {float(sel.energy_j_per_token):.2f} | {float(sel.usd_per_mtoken):.3f} "
                             f"| {sel.limit.values} |")
    return lines


def _figures(out: Path, figures: dict[str, Any]) -> None:
    plt = _matplotlib()
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=120)
        plt.close(fig)


def write_report(serving: xr.Dataset, static: xr.Dataset, out: str | Path,
                 title: str = "PIM versus GPU for decode") -> Path:
    """Write the serving view (``verdicts.png``, ``efficiency.png``, ``serving.nc``) and the static-batch view
    (``curves.png``, ``winners.png``, ``results.nc``), ``report.md`` and ``report.html`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _figures(out, {"verdicts.png": verdict_figure(serving), "efficiency.png": efficiency_figure(serving),
                   "curves.png": curves_figure(static), "winners.png": winner_figure(static)})
    serving.to_netcdf(out / "serving.nc")
    static.to_netcdf(out / "results.nc")
    cells = serving_verdicts(serving)
    candidates = json.loads(serving.attrs["candidates"])
    prefill_arch, prefill = json.loads(serving.attrs["prefill_pool"])
    context = float(2048 if 2048 in serving.context.values else serving.context.values[0])
    md = [f"# {title}", "",
          "## Served as deployed (continuous batching)", "",
          f"Mode {serving.attrs['mode']} for every system; requests of each context length -> "
          f"{int(serving.attrs['osl'])} output tokens, closed loop. Each system is scored at its best operating "
          "point: the most goodput per kW within the traffic tier's mean TTFT and TPOT objectives, over its "
          "mappings, the client concurrency and, disaggregated, the prefill:decode pool ratio. Disaggregated "
          f"options prefill on `{prefill_arch}` {prefill} nodes and decode on the candidate. Power is static + "
          "dynamic with one host server per node for every system; cost is the same build-cost model. The band "
          "is the p90 energy band (TPOT's plus the power model's); a lead inside both leaders' bands is no win.",
          "", f"Traffic tiers: {serving.attrs['traffic_source']}.", ""]
    md += [f"- **{label}**: `{c['arch']}` ({c['fmt']}); mappings: " + "; ".join(
        f"{name} `{json.dumps(over)}`" if over else name for name, over in c["mappings"].items())
        for label, c in candidates.items()]
    md += ["", "![Verdicts: most goodput per kW per context and traffic tier](verdicts.png)", "",
           "![Goodput per kW over context, with bands](efficiency.png)", ""]
    for model in serving.model.values:
        for tier in serving.traffic.values:
            md += [f"### {model}, {tier}: goodput per kW (token/s/kW, ± p90 band)", "",
                   *_serving_table(serving, cells, str(model), str(tier)), ""]
    md += [f"### Operating points at context {int(context)}", "", *_points_table(serving, context), ""]
    prompt = reference_prompt(static)
    systems = json.loads(static.attrs.get("systems", "{}"))
    bases = dict(zip(static.system.values, static.basis.values)) if "basis" in static else {}
    md += ["## Static batch, decode only (secondary)", "",
           "What one fixed batch of sequences costs per decode step on each capacity-matched system (1280 GiB), "
           f"mode {static.attrs.get('mode')}, {int(static.attrs.get('gen', 0))} generated tokens: a bound on a "
           "decode pool at that batch, without queueing, prefill interference, SLOs or host power. Each system "
           "runs its catalog mapping.", ""]
    md += [f"- **{label}**: `{arch}` ({fmt}; basis {bases.get(label, '?')})" for label, (arch, fmt) in systems.items()]
    md += ["", "![TPOT, throughput and energy over batch](curves.png)", "",
           "![Leader, verdict and binding limit over batch x context](winners.png)", "",
           f"### {labels.axis_label('tpot_s')} / {labels.axis_label('decode_energy_j_per_token')} at context "
           f"{int(prompt)} (binding limit in parentheses)", "",
           *_table(static, prompt), "", "Limits: " + ", ".join(f"{_short(x)} = {x}" for x in LIMITS) + ". "
           "'pim communication' is the host link (and blocked-mode switches); 'host' is the GPUs (their collectives "
           "in 'host communication') or, for AiM, its controller.", "",
           "### Crossovers (decode throughput)", "", *_crossover_lines(static), ""]
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
