"""Study report: figures from a results Dataset (and the Optuna study), then report.md and report.html."""

from __future__ import annotations

import base64
import html
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import xarray as xr
from matplotlib.figure import Figure

from hwdse.perf.uncertainty import exceeds
from hwdse.report.figures import (
    history_figure,
    importance_figure,
    pareto_figure,
    roofline_figure,
    tornado_figure,
)
from hwdse.report.labels import (
    axis_label,
    cut_note,
    format_value,
    metric,
    quantity,
    scenario_text,
)
from hwdse.report.serving import serving_study_figure
from hwdse.search.operating import is_operating
from hwdse.search.points import pareto_mask
from hwdse.search.results import best_rows
from hwdse.search.spec import Constraint, Param, StudySpec
from hwdse.workload import Scenario, scenario

__all__ = ["study_figures", "param_importances", "write_report"]

TABLE_ROWS = 10  # Pareto rows the report shows (best.csv holds them all)
REVIEW_METRICS = ("energy_j_per_token", "cost_usd", "usd_per_mtoken")  # shown beside the objectives where present


def _spec(ds: xr.Dataset) -> StudySpec:
    return StudySpec.model_validate(json.loads(ds.attrs["study_spec"]))


def _axes(ds: xr.Dataset, spec: StudySpec) -> tuple[str, str, str, str]:
    """The two axes of the Pareto plot: two objectives, or the objective against a constraint metric."""
    objs = spec.objectives
    if len(objs) >= 2:
        return objs[0].metric, objs[1].metric, objs[0].direction, objs[1].direction
    fallback = ["tpot_s", "ttft_s"] if spec.serving is not None else ["memory_bytes"]
    candidates = [c.metric for c in spec.constraints if c.metric] + fallback
    for m in candidates:
        if m in ds and ds[m].dims != ("trial",):  # per scenario of a mix: its mix aggregate, if any
            m = f"mix_{m}"
        if m != objs[0].metric and m in ds and ds[m].dims == ("trial",) \
                and np.isfinite(ds[m].values.astype(float)).any() and np.unique(ds[m].values).size > 1:
            return m, objs[0].metric, "minimize", objs[0].direction
    return "trial", objs[0].metric, "minimize", objs[0].direction


def param_importances(study: optuna.Study, spec: StudySpec) -> xr.DataArray:
    """Importance of each search parameter for each objective (Optuna's default PED-ANOVA: how much
    the parameter sets the top 10 % of trials apart, normalized to sum 1), over dims ``(param, metric)``."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    metrics = [o.metric for o in spec.objectives]
    columns = []
    for i in range(len(metrics)):
        imp = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(),
                                    target=lambda t, i=i: t.values[i])
        columns.append([imp.get(p, 0.0) for p in spec.search])
    return xr.DataArray(np.array(columns).T, dims=("param", "metric"),
                        coords={"param": list(spec.search), "metric": metrics}, attrs={"evaluator": "PED-ANOVA"})


def study_figures(ds: xr.Dataset, study: optuna.Study | None = None, detail: xr.Dataset | None = None,
                  serving: Mapping[str, xr.Dataset] | None = None,
                  pools: Mapping[str, xr.Dataset] | None = None) -> dict[str, Figure]:
    """Figures of a study: ``pareto`` and ``history`` (from ``ds``), ``importances`` (when ``study``
    has enough completed trials), ``roofline`` of the best design (``detail``), and ``serving``: the
    best design over its load and pool sizes (``serving``, from ``best_serving_curves``)."""
    spec = _spec(ds)
    x, y, xd, yd = _axes(ds, spec)
    plot_ds = ds.assign(trial_number=ds.trial) if x == "trial" else ds
    x = "trial_number" if x == "trial" else x
    kwargs: dict[str, str] = {}
    if len(spec.objectives) == 1:  # the trade-off of the objective against the other axis, best ringed
        pts = np.stack([plot_ds[x].values.astype(float), plot_ds[y].values.astype(float)], axis=1)
        valid = plot_ds.feasible.values.astype(bool)
        if "state" in plot_ds.coords:
            valid &= plot_ds.state.values == "COMPLETE"
        plot_ds = plot_ds.assign(axes_front=("trial", pareto_mask(pts, [xd, yd], valid)))
        kwargs = {"front": "axes_front"}
    elif len(spec.objectives) > 2:
        kwargs = {"color": spec.objectives[2].metric}
    if "best" in plot_ds:
        kwargs["best"] = "best"
    figs = {"pareto": pareto_figure(plot_ds, x, y, x_direction=xd, y_direction=yd,
                                    title=f"{spec.name}: {metric(y).text} vs {metric(x).text}", **kwargs),
            "history": history_figure(ds, [(o.metric, o.direction) for o in spec.objectives])}
    if study is not None and any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                figs["importances"] = importance_figure(param_importances(study, spec))
            except (ValueError, RuntimeError, ZeroDivisionError):
                pass  # too few completed trials (or one distinct value) for an importance estimate
    if detail is not None:
        arch = detail.attrs.get("arch", "")
        title = f"Best design ({arch}): per-operator roofline"
        if spec.serving is not None:  # a static batch of the requests its steady state decodes at once
            batch = json.loads(detail.attrs.get("scenario", "{}")).get("batch", float("nan"))
            title += f", static batch of {batch:g} requests"
        figs["roofline"] = roofline_figure(detail, title=title)
    if serving:
        slo = {k: (getattr(spec.serving, f"{k}_ms") or np.inf) / 1e3 for k in ("ttft_slo", "tpot_slo")}
        figs["serving"] = serving_study_figure(serving, f"{spec.name}: best design served", slo["ttft_slo"],
                                               slo["tpot_slo"], pools)
    return figs


def _evaluation(ds: xr.Dataset, spec: StudySpec) -> str:
    """How the rows were produced: the search, or every operating point of one design."""
    inner = [k for k, p in spec.search.items() if is_operating(k, p)]
    if len(inner) == len(spec.search):
        return f"every operating point ({', '.join(inner)}) of one design, as a grid"
    text = f"{ds.attrs.get('evaluation')} (sampler {spec.sampler.name}, seed {spec.sampler.seed})"
    return text + (f"; each design at its best {', '.join(inner)} ({spec.select} over its grid)" if inner else "")


def _searched(param: Param) -> str:
    span = "/".join(map(str, param.choices)) if param.choices else f"{param.low:g}-{param.high:g}"
    return f"searched {span}"


def _workload(spec: StudySpec) -> str:
    """What the study evaluates: model, scenario or mix with its lengths, formats; searched fields say so."""
    w = spec.workload
    searched = {k.removeprefix("scenario."): p for k, p in spec.search.items() if k.startswith("scenario.")}

    def value(field: str, default: object) -> object:
        return _searched(searched[field]) if field in searched else default

    formats = ", ".join(f"{k} {value(k, getattr(w, k))}" for k in ("weights", "activations", "kv"))
    if spec.serving is not None:
        return f"{w.model}, {_serving(spec)}; {formats}"
    if w.mix is None:
        lengths = {k: getattr(w, k) for k in ("prompt", "gen") if getattr(w, k) is not None}
        scen = scenario(w.scenario, **lengths) if w.scenario else Scenario(**lengths)
        text = scenario_text(scen.name, value("batch", w.batch), value("prompt", scen.prompt), value("gen", scen.gen))
        return f"{w.model}, {text}; {formats}"
    total = sum(m.weight for m in w.mix)
    entries = []
    for i, m in enumerate(w.mix):
        lengths = {k: getattr(m, k) for k in ("prompt", "gen") if getattr(m, k) is not None}
        scen = scenario(m.scenario, **lengths) if m.scenario else Scenario(name=f"mix{i}", **lengths)
        entries.append(f"{scen.name} {m.weight / total:.0%} (prompt {scen.prompt:g}, gen {scen.gen:g})")
    return f"{w.model}, batch {value('batch', f'{w.batch:g}')}, mix of {len(entries)} scenarios: " \
           f"{', '.join(entries)}; {formats}"


def _serving(spec: StudySpec) -> str:
    """``served by vllm, closed loop (concurrency searched 1-256), isl 1024, osl 256, SLOs TTFT ≤ 500 ms``."""
    s = spec.serving
    assert s is not None

    def value(field: str) -> str:
        p = spec.search.get(f"serving.{field}")
        return _searched(p) if p is not None else f"{getattr(s, field):g}"

    closed = s.concurrency is not None or "serving.concurrency" in spec.search
    traffic = f"closed loop (concurrency {value('concurrency')})" if closed else \
        f"open loop (Poisson arrivals, {value('arrival_rate')} req/s)"
    engine = _searched(spec.search["serving.engine"]) if "serving.engine" in spec.search else s.engine
    slos = [f"{name} ≤ {v:g} ms" for name, v in (("TTFT", s.ttft_slo_ms), ("TPOT", s.tpot_slo_ms)) if v is not None]
    return f"served by {engine}, {traffic}, isl {value('isl')}, osl {value('osl')}, " \
           f"goodput SLOs {', '.join(slos) or 'none'}"


def _constraint(c: Constraint, serving: bool = False) -> str:
    kind = c.resolved_kind
    if kind == "fit" and serving:
        return f"{c.name} (one request's KV cache fits next to the weights)"
    if kind == "fit":
        return f"{c.name} (footprint fits in memory)"
    if kind == "quality":
        return f"{c.name} (QSNR ≥ {c.min_qsnr_db:g} dB on {', '.join(c.tensors)})"
    bound = c.max if kind == "max" else c.min
    return f"{c.name} ({metric(c.metric).text} {'≤' if kind == 'max' else '≥'} {quantity(c.metric, bound)})"


def _constraints(spec: StudySpec) -> str:
    serving = spec.serving is not None
    text = [_constraint(c, serving) for c in spec.constraints]
    text += ["stable (implicit: the engine keeps up with the offered load)"] if serving else []
    return ", ".join(text) or "none"


def _best_table(ds: xr.Dataset, spec: StudySpec) -> tuple[list[str], list[list[str]], str]:
    """Header, the first :data:`TABLE_ROWS` Pareto rows by the first objective, and the cut note."""
    metrics = [o.metric for o in spec.objectives]
    front = best_rows(ds, limit=ds.sizes["trial"])
    shown = front.isel(trial=slice(0, TABLE_ROWS))
    extra = _review_metrics(ds, metrics)
    cols = ["trial", *spec.search, *metrics, *extra]
    head = ["trial", *spec.search, *map(axis_label, metrics + extra)]
    rows = [[format_value(c, shown[c].values[i]) for c in cols] for i in range(shown.sizes["trial"])]
    order = f"by {metric(metrics[0]).text}"
    note = cut_note(shown.sizes["trial"], front.sizes["trial"], f"Pareto rows ({order})", "best.csv")
    return head, rows, note


def _review_metrics(ds: xr.Dataset, metrics: list[str]) -> list[str]:
    return [m for m in REVIEW_METRICS if m in ds and m not in metrics and ds[m].dims == ("trial",)]


def _baseline_lines(ds: xr.Dataset, spec: StudySpec, baselines: list) -> list[str]:
    """The best design beside each baseline on the objectives, constraint metrics and cost."""
    front = best_rows(ds, limit=1)
    if not baselines or front.sizes["trial"] == 0:
        return []
    metrics = [o.metric for o in spec.objectives]
    metrics += [c.metric for c in spec.constraints if c.metric and c.metric not in metrics]
    metrics += [m for m in REVIEW_METRICS if m not in metrics]
    best = front.isel(trial=0)
    rows = [("best design (trial " + format_value("trial", best.trial.values) + ")", best)]
    rows += [(_baseline_label(b), r) for b, r in baselines]
    head = ["design", *map(axis_label, metrics), "violates", f"{axis_label(metrics[0])} vs the best"]
    lines = ["", "## Baselines", "", "The best design beside shipping products on its workload and traffic and the "
             "study's constraints (cost: cost to build, `hwdse.hardware.cost`; $/Mtoken: amortized build cost plus "
             "electricity, `hwdse.perf.economics`), all in one mode "
             f"({ds.attrs.get('mode', '?')}); the last column says whether the first objective's difference exceeds "
             "the two predictions' error bands.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in rows:
        broken = [str(k).removeprefix("constraint_") for k in r.data_vars if str(k).startswith("constraint_")
                  and float(np.asarray(r[k].values, dtype=float).max()) > 0]
        cells = [format_value(m, float(np.asarray(r[m].values, dtype=float).mean())) if m in r else "n/a"
                 for m in metrics]
        verdict = "–" if r is best else _versus(r, best, metrics[0])
        lines.append("| " + " | ".join([label, *cells, ", ".join(broken) or "none", verdict]) + " |")
    return lines


def _baseline_label(b: Any) -> str:
    """``h100-sxm (weights fp8-e4m3, kv fp8-e4m3)``, ``dgx-h100 -> dgx-h100 decode pool``."""
    name = f"{b.arch} -> {b.decode_arch} decode pool" if b.decode_arch else b.arch
    formats = ", ".join(f"{t} {getattr(b, t)}" for t in ("weights", "kv") if getattr(b, t))
    return f"{name} ({formats})" if formats else name


def _gap_lines(data: dict | None, spec: StudySpec) -> list[str]:
    """How close the search came to a dense grid of the same space, and what each cost."""
    if not data and spec.search and all(is_operating(k, p) for k, p in spec.search.items()):
        return ["", "## Search against a dense grid", "",
                "No design parameter is searched: every operating point of the grid is a row, so the best is "
                "the grid's best by construction."]
    if not data:
        return []
    name = data["metric"]
    grid = (f"a seeded sample of {data['reference_designs']:,} of its {data['grid_designs']:,} designs"
            if data["sampled"] else f"all {data['grid_designs']:,} designs")
    inner = data["operating_points"]
    per = f" x {inner} operating points each" if inner > 1 else ""
    share = data["designs"] / data["reference_designs"]
    verdict = ("the search beat every grid design (it found one between the grid's levels)" if data["gap"] < 0
               else f"the search's best is {data['gap'] * 100:.2f} % short of the grid's")
    return ["", "## Search against a dense grid", "",
            f"The {spec.sampler.name} search evaluated {data['designs']:,} designs{per}; a grid of {data['levels']} "
            f"levels per numeric design range and every choice ({grid}{per}) is the reference. Best "
            f"{metric(name).text}: search {format_value(name, data['found'])}, grid "
            f"{format_value(name, data['reference'])} {metric(name).unit}: {verdict}, with "
            f"{share * 100:.1f} % of the grid's evaluations."]


BANDS = {"tpot_s": "tpot_band", "ttft_s": "ttft_band"}  # metrics whose predictions carry an error band


def _versus(row: xr.Dataset, best: xr.Dataset, metric: str) -> str:
    """Whether ``row`` and ``best`` differ on ``metric`` by more than their error bands."""
    band = BANDS.get(metric)
    if metric not in row or band is None or band not in row or band not in best:
        return "no band for this metric"
    values = [float(np.asarray(x[k].values, dtype=float).mean()) for x in (row, best) for k in (metric, band)]
    verdict = float(exceeds(values[0], values[2], values[1], values[3]))
    return {1.0: "beyond the bands", 0.0: "within the bands"}.get(verdict, "no band (a roofline bound)")


def _binding_lines(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["", "## Constraints that bind", "",
             "Trials violating each constraint (a trial may violate several) and its value at the best design "
             "(relative to its limit; ≤ 0 is feasible, within 5 % of 0 binds).", "",
             "| constraint | violated by | at the best design | binds |", "|---|---|---|---|"]
    lines += [f"| {r['constraint']} | {r['violated']} of {r['trials']} | {r['at_best']:+.3f} | "
              f"{'yes' if r['binds'] else 'no'} |" for r in rows]
    return lines


def _tornado_lines(data: dict | None) -> list[str]:
    if not data:
        return []
    name, best = data["metric"], data["best"]
    lines = ["", "## Sensitivity around the best design", "",
             f"{metric(name).text} with one parameter moved at a time (the ends of a range, every choice of a "
             f"categorical), the others at the best design's values ({format_value(name, best)} "
             f"{metric(name).unit}). Widest spans first; * marks an infeasible point.", "",
             f"| parameter | values tried | {axis_label(name)} | span / best |", "|---|---|---|---|"]
    spans = sorted(data["params"].items(), key=lambda kv: -np.ptp(kv[1]["objective"]))
    for path, r in spans:
        vals = " / ".join(f"{v}" for v in r["values"])
        objs = " / ".join(format_value(name, o) + ("" if ok else "*") for o, ok in zip(r["objective"], r["feasible"]))
        lines.append(f"| {path} | {vals} | {objs} | {np.ptp(r['objective']) / abs(best) * 100:.0f} % |")
    return lines


def write_report(ds: xr.Dataset, out: Path, study: optuna.Study | None = None,
                 detail: xr.Dataset | None = None, serving: Mapping[str, xr.Dataset] | None = None,
                 review: Mapping[str, object] | None = None) -> dict[str, Path]:
    """Write ``figures/*.png``, ``report.md`` and ``report.html`` (images embedded) into ``out``.
    ``review`` (:mod:`hwdse.search.review`): ``baselines``, ``binding`` and ``tornado`` sections."""
    import matplotlib.pyplot as plt

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    spec = _spec(ds)
    paths: dict[str, Path] = {}
    review = review or {}
    figures = study_figures(ds, study, detail, serving, review.get("pools"))
    if review.get("tornado"):
        figures["tornado"] = tornado_figure(review["tornado"])
    for name, fig in figures.items():
        paths[name] = out / "figures" / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    n = ds.sizes["trial"]
    feasible = int(np.asarray(ds.feasible.values).astype(bool).sum())
    complete = int((ds.state.values == "COMPLETE").sum()) if "state" in ds.coords else n
    cols, rows, note = _best_table(ds, spec)
    facts = [("study", spec.name), ("workload", _workload(spec)), ("base arch", spec.arch), ("mode", spec.mode),
             ("evaluation", _evaluation(ds, spec)),
             ("points", f"{n} ({complete} complete, {feasible} feasible, {int(ds.pareto.values.sum())} Pareto)"),
             ("objectives", ", ".join(f"{o.direction} {metric(o.metric).text} ({o.metric})"
                                      for o in spec.objectives)),
             ("constraints", _constraints(spec)),
             ("hwdse", f"{ds.attrs.get('hwdse_version')} (git {ds.attrs.get('git_sha') or 'unknown'}), "
                       f"{ds.attrs.get('created_utc')}")]
    md = [f"# Study report: {spec.name}", "", spec.description, ""]
    md += [f"- **{k}**: {v}" for k, v in facts]
    md += ["", "## Best designs (Pareto front)", ""] + ([note, ""] if note else [])
    md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(r) + " |" for r in rows]
    if not rows:
        md += ["", "No feasible design: relax a constraint or widen the search space."]
    sections = (_gap_lines(review.get("gap"), spec) + _baseline_lines(ds, spec, review.get("baselines") or [])
                + _binding_lines(review.get("binding") or []) + _tornado_lines(review.get("tornado")))
    md += sections
    md += ["", "## Figures", ""] + [f"![{k}](figures/{p.name})" for k, p in paths.items()]
    md += ["", "Results: `results.nc` (xarray, one row per trial), `best.csv`; "
               "`optuna-dashboard sqlite:///study.db` opens the study when it ran on the default storage.", ""]
    (out / "report.md").write_text("\n".join(md))
    page = [f"<h1>Study report: {html.escape(spec.name)}</h1>", f"<p>{html.escape(spec.description)}</p>",
            "<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in facts) + "</ul>",
            "<h2>Best designs (Pareto front)</h2>", f"<p>{html.escape(note)}</p>" if note else "",
            "<table border='1' cellspacing='0' cellpadding='3'><tr>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>",
            *([f"<pre>{html.escape(chr(10).join(sections))}</pre>"] if sections else []),
            "<h2>Figures</h2>"]
    for k, p in paths.items():
        data = base64.b64encode(p.read_bytes()).decode()
        page.append(f"<figure><img alt='{k}' src='data:image/png;base64,{data}'/><figcaption>{k}</figcaption></figure>")
    (out / "report.html").write_text("<!doctype html><html><head><meta charset='utf-8'><title>"
                                     f"{html.escape(spec.name)}</title></head><body>" + "\n".join(page)
                                     + "</body></html>\n")
    paths["report_md"], paths["report_html"] = out / "report.md", out / "report.html"
    return paths
