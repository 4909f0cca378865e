"""Study report: figures from a results Dataset (and the Optuna study), then report.md and report.html."""

from __future__ import annotations

import base64
import html
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import xarray as xr
from matplotlib.figure import Figure

from hwdse.report.figures import pareto_figure, roofline_figure
from hwdse.search.points import pareto_mask

__all__ = ["study_figures", "write_report"]


def _axes(ds: xr.Dataset, spec: dict[str, Any]) -> tuple[str, str, str, str]:
    """The two axes of the Pareto plot: two objectives, or the objective against a constraint metric."""
    objs = spec["objectives"]
    if len(objs) >= 2:
        return objs[0]["metric"], objs[1]["metric"], objs[0]["direction"], objs[1]["direction"]
    candidates = [c["metric"] for c in spec.get("constraints", []) if c.get("metric")] + ["memory_bytes"]
    for m in candidates:
        if m != objs[0]["metric"] and m in ds and np.isfinite(ds[m].values.astype(float)).any() \
                and np.unique(ds[m].values).size > 1:
            return m, objs[0]["metric"], "minimize", objs[0]["direction"]
    return "trial", objs[0]["metric"], "minimize", objs[0]["direction"]


def study_figures(ds: xr.Dataset, study: optuna.Study | None = None,
                  detail: xr.Dataset | None = None) -> dict[str, Figure]:
    """Figures of a study: ``pareto`` (from ``ds``), ``history`` and ``importances`` (Optuna's
    matplotlib plots, when ``study`` is given), ``roofline`` of the best design (``detail``)."""
    spec = json.loads(ds.attrs["study_spec"])
    x, y, xd, yd = _axes(ds, spec)
    plot_ds = ds.assign(trial_number=ds.trial) if x == "trial" else ds
    x = "trial_number" if x == "trial" else x
    kwargs: dict[str, Any] = {}
    if len(spec["objectives"]) == 1:  # the trade-off of the objective against the other axis, best ringed
        pts = np.stack([plot_ds[x].values.astype(float), plot_ds[y].values.astype(float)], axis=1)
        valid = plot_ds.feasible.values.astype(bool)
        if "state" in plot_ds.coords:
            valid &= plot_ds.state.values == "COMPLETE"
        plot_ds = plot_ds.assign(axes_front=("trial", pareto_mask(pts, [xd, yd], valid)))
        kwargs = {"front": "axes_front", "best": "pareto"}
    figs = {"pareto": pareto_figure(plot_ds, x, y, x_direction=xd, y_direction=yd,
                                    title=f"{spec['name']}: {y} vs {x}", **kwargs)}
    if study is not None and any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        multi = len(spec["objectives"]) > 1
        target = {"target": (lambda t: t.values[0]), "target_name": spec["objectives"][0]["metric"]} if multi else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from optuna.visualization import matplotlib as ovm

            figs["history"] = ovm.plot_optimization_history(study, **target).figure
            try:
                figs["importances"] = ovm.plot_param_importances(study, **target).figure
            except (ValueError, RuntimeError, ZeroDivisionError):
                pass  # too few completed trials (or one distinct value) for an importance estimate
    if detail is not None:
        arch = detail.attrs.get("arch", "")
        figs["roofline"] = roofline_figure(detail, title=f"best design: per-operator roofline ({arch})")
    return figs


def _fmt(v: Any) -> str:
    v = v.item() if hasattr(v, "item") else v
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _best_table(ds: xr.Dataset, spec: dict[str, Any], limit: int = 10) -> tuple[list[str], list[list[str]]]:
    metrics = [o["metric"] for o in spec["objectives"]]
    front = ds.isel(trial=np.flatnonzero(ds.pareto.values.astype(bool)))
    order = np.argsort(front[metrics[0]].values)
    if spec["objectives"][0]["direction"] == "maximize":
        order = order[::-1]
    front = front.isel(trial=order[:limit])
    cols = ["trial", *spec["search"], *metrics]
    rows = [[_fmt(front[c].values[i]) for c in cols] for i in range(front.sizes["trial"])]
    return cols, rows


def write_report(ds: xr.Dataset, out: Path, study: optuna.Study | None = None,
                 detail: xr.Dataset | None = None) -> dict[str, Path]:
    """Write ``figures/*.png``, ``report.md`` and ``report.html`` (images embedded) into ``out``."""
    import matplotlib.pyplot as plt

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    spec = json.loads(ds.attrs["study_spec"])
    paths: dict[str, Path] = {}
    for name, fig in study_figures(ds, study, detail).items():
        paths[name] = out / "figures" / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    n = ds.sizes["trial"]
    feasible = int(np.asarray(ds.feasible.values).astype(bool).sum())
    complete = int((ds.state.values == "COMPLETE").sum()) if "state" in ds.coords else n
    cols, rows = _best_table(ds, spec)
    w = spec["workload"]
    facts = [("study", spec["name"]), ("workload", f"{w['model']}, batch {w['batch']:g}, "
                                                   + (f"mix of {len(w['mix'])} scenarios" if w.get("mix") else
                                                      f"scenario {w.get('scenario') or 'custom'} prompt "
                                                      f"{w.get('prompt')} gen {w.get('gen')}")),
             ("base arch", spec["arch"]), ("mode", spec["mode"]),
             ("evaluation", f"{ds.attrs.get('evaluation')} (sampler {spec['sampler']['name']}, seed "
                            f"{spec['sampler']['seed']})"),
             ("points", f"{n} ({complete} complete, {feasible} feasible, {int(ds.pareto.values.sum())} Pareto)"),
             ("objectives", ", ".join(f"{o['direction']} {o['metric']}" for o in spec["objectives"])),
             ("constraints", ", ".join(c["name"] for c in spec.get("constraints", [])) or "none"),
             ("hwdse", f"{ds.attrs.get('hwdse_version')} (git {ds.attrs.get('git_sha') or 'unknown'}), "
                       f"{ds.attrs.get('created_utc')}")]
    md = [f"# Study report: {spec['name']}", "", spec.get("description", ""), ""]
    md += [f"- **{k}**: {v}" for k, v in facts]
    md += ["", "## Best designs (Pareto front)", "", "| " + " | ".join(cols) + " |",
           "|" + "---|" * len(cols)] + ["| " + " | ".join(r) + " |" for r in rows]
    if not rows:
        md += ["", "No feasible design: relax a constraint or widen the search space."]
    md += ["", "## Figures", ""] + [f"![{k}](figures/{p.name})" for k, p in paths.items()]
    md += ["", "Results: `results.nc` (xarray, one row per trial), `best.csv`; "
               "`optuna-dashboard sqlite:///study.db` opens the study when it ran on the default storage.", ""]
    (out / "report.md").write_text("\n".join(md))
    page = [f"<h1>Study report: {html.escape(spec['name'])}</h1>", f"<p>{html.escape(spec.get('description', ''))}</p>",
            "<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in facts) + "</ul>",
            "<h2>Best designs (Pareto front)</h2>", "<table border='1' cellspacing='0' cellpadding='3'><tr>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>",
            "<h2>Figures</h2>"]
    for k, p in paths.items():
        data = base64.b64encode(p.read_bytes()).decode()
        page.append(f"<figure><img alt='{k}' src='data:image/png;base64,{data}'/><figcaption>{k}</figcaption></figure>")
    (out / "report.html").write_text("<!doctype html><html><head><meta charset='utf-8'><title>"
                                     f"{html.escape(spec['name'])}</title></head><body>" + "\n".join(page)
                                     + "</body></html>\n")
    paths["report_md"], paths["report_html"] = out / "report.md", out / "report.html"
    return paths
