"""Generic figures: Dataset in, matplotlib Figure out (Pareto fronts, per-operator rooflines, study
history and parameter importances). Axes carry the labels and units of :mod:`hwdse.report.labels`."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hwdse.report.labels import axis_label, metric  # noqa: E402

__all__ = ["pareto_figure", "roofline_figure", "history_figure", "importance_figure", "tornado_figure"]


def _flag(ds: xr.Dataset, name: str, default: bool) -> np.ndarray:
    if name not in ds.variables:
        return np.full(ds.sizes["trial"], default)
    return np.asarray(ds[name].values).astype(bool).reshape(-1)


def _scaled(ds: xr.Dataset, name: str) -> np.ndarray:
    """Values of ``name`` in its display unit."""
    return np.asarray(ds[name].values, dtype=float).reshape(-1) * metric(name).scale


def _scale(axis: matplotlib.axis.Axis, vals: np.ndarray) -> None:
    """A log axis for positive values over more than a factor 10, its ticks plain (4, 6, 10, 20 rather
    than 4x10^0)."""
    if vals.size and vals.min() > 0 and vals.max() / vals.min() > 10:
        getattr(axis.axes, f"set_{axis.axis_name}scale")("log")
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False))


def _zoom(ok: np.ndarray, keep: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The points to frame: all of them, or only those near the ``keep`` points (feasible, reference) when
    the others stretch an axis over more than 3x the kept points' span."""
    if keep.sum() < 2:
        return ok
    near = ok.copy()
    for v in (xs, ys):
        lo, hi = v[keep].min(), v[keep].max()
        span = hi - lo or abs(hi) or 1.0
        near &= (v >= lo - span) & (v <= hi + span)
    return near if (ok & ~near).any() and near.sum() >= keep.sum() else ok


def pareto_figure(ds: xr.Dataset, x: str, y: str, *, x_direction: str = "minimize",
                  y_direction: str = "minimize", title: str = "", front: str = "pareto",
                  best: str | None = None, color: str | None = None) -> Figure:
    """Scatter of ``y`` against ``x`` over dim ``trial``: infeasible points grey, feasible blue,
    the ``front`` flag's points red and joined by their staircase, ``best`` flag's points ringed,
    ``reference`` points starred. With ``color`` (a third objective) the front's points are coloured
    by it instead, unjoined: a front in three objectives is no staircase in two."""
    with plt.style.context("default"):  # optuna's plots switch the global style to ggplot
        fig, ax = plt.subplots(figsize=(6.8, 4.8), layout="constrained")
    xs, ys = _scaled(ds, x), _scaled(ds, y)
    feasible, pareto, ref = _flag(ds, "feasible", True), _flag(ds, front, False), _flag(ds, "reference", False)
    ok = np.isfinite(xs) & np.isfinite(ys)
    many = ok.sum() > 20000
    ax.scatter(xs[ok & ~feasible], ys[ok & ~feasible], s=6, c="0.75", label="infeasible", rasterized=many)
    ax.scatter(xs[ok & feasible & ~pareto], ys[ok & feasible & ~pareto], s=8, c="tab:blue", alpha=0.6,
               label="feasible", rasterized=many)
    on = ok & pareto
    if color is None:
        order = np.argsort(xs[on] if x_direction == "minimize" else -xs[on])
        ax.step(xs[on][order], ys[on][order], where="post", c="tab:red", lw=1)
        ax.scatter(xs[on], ys[on], s=22, c="tab:red", label="Pareto front", zorder=3)
    else:
        dots = ax.scatter(xs[on], ys[on], s=30, c=_scaled(ds, color)[on], cmap="plasma", edgecolors="k",
                          linewidths=0.5, label="Pareto front (all objectives)", zorder=3)
        fig.colorbar(dots, ax=ax, label=f"{axis_label(color)}, Pareto points")
    if best is not None:
        top = ok & _flag(ds, best, False)
        ax.scatter(xs[top], ys[top], s=70, facecolors="none", edgecolors="k", label="best", zorder=4)
    if (ok & ref).any():
        ax.scatter(xs[ok & ref], ys[ok & ref], s=120, marker="*", c="gold", edgecolors="k", label="reference",
                   zorder=4)
    keep = ok & (feasible | ref)
    shown = _zoom(ok, keep, xs, ys)
    _scale(ax.xaxis, xs[shown])
    _scale(ax.yaxis, ys[shown])
    if (ok & ~shown).any():  # infeasible points far outside the feasible region: keep the front readable
        for axis, v in (("x", xs), ("y", ys)):
            lo, hi = v[shown].min(), v[shown].max()
            log = getattr(ax, f"get_{axis}scale")() == "log"
            pad = (hi / lo) ** 0.05 if log else 0.05 * ((hi - lo) or abs(hi) or 1.0)
            getattr(ax, f"set_{axis}lim")((lo / pad, hi * pad) if log else (lo - pad, hi + pad))
        ax.text(0.99, 0.99, f"{int((ok & ~shown).sum())} infeasible points beyond the axes", transform=ax.transAxes,
                ha="right", va="top", fontsize=7, color="0.4")
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    ax.set_title(title or f"{metric(y).text} vs {metric(x).text}")
    ax.legend(loc="best", fontsize=8)
    return fig


def _clusters(x: np.ndarray, y: np.ndarray, tol: float = 0.02) -> list[list[int]]:
    """Indices of points that coincide on log-log axes (within ``tol`` of each axis' span), by x."""
    lx, ly = np.log10(x), np.log10(y)
    span = np.array([np.ptp(lx) or 1.0, np.ptp(ly) or 1.0])
    groups: list[list[int]] = []
    for i in np.argsort(lx, kind="stable"):
        home = next((g for g in groups if abs(lx[g[0]] - lx[i]) <= tol * span[0]
                     and abs(ly[g[0]] - ly[i]) <= tol * span[1]), None)
        if home is None:
            groups.append([int(i)])
        else:
            home.append(int(i))
    return groups


def _cluster_key(names: list[str], phases: list[str]) -> str:
    """``"prefill+decode: attn_norm, mlp_norm; decode: q_proj"`` for one cluster."""
    where: dict[str, list[str]] = {}
    for n, p in zip(names, phases, strict=True):
        where.setdefault(n, []).append(p)
    by_phases: dict[str, list[str]] = {}
    for n, ps in where.items():
        by_phases.setdefault("+".join(dict.fromkeys(ps)), []).append(n)
    return "; ".join(f"{p}: {', '.join(ns)}" for p, ns in by_phases.items())


def roofline_figure(detail: xr.Dataset, title: str = "") -> Figure:
    """Per-operator roofline of one design: attained ops/s vs arithmetic intensity (ops/byte) for
    each operator of prefill and decode, under the device's roofs (memory slope, compute peaks).
    Coinciding operators share a number; the key beside the plot names them.

    ``detail`` is ``hwdse.evaluate(..., detail=True)`` (vars over ``(phase, op)``)."""
    with plt.style.context("default"):
        fig, (ax, key) = plt.subplots(1, 2, figsize=(10.5, 5.0), layout="constrained",
                                      gridspec_kw={"width_ratios": (1.6, 1.0)})
    key.axis("off")
    flops, nbytes = detail.op_flops.values.astype(float), detail.op_bytes.values.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where(detail.op_compute_s.values > 0, flops / detail.op_compute_s.values, np.nan)
        bw = np.where(detail.op_memory_s.values > 0, nbytes / detail.op_memory_s.values, np.nan)
        intensity = flops / nbytes
        attained = flops / detail.op_time_s.values.astype(float)
    ok = np.isfinite(intensity) & np.isfinite(attained) & (intensity > 0) & (attained > 0)
    if ok.any():
        lo, hi = np.nanmin(intensity[ok]) / 4, np.nanmax(intensity[ok]) * 4
        grid = np.geomspace(lo, hi, 200)
        bw_max = np.nanmax(bw)
        classes = np.asarray(detail.op_compute_class.values).astype(str)
        roofs = {c: float(np.nanmax(peak[classes == c])) for c in np.unique(classes[np.isfinite(peak)])}
        for j, (cls, p) in enumerate(sorted(roofs.items(), key=lambda kv: -kv[1])[:4]):
            ax.plot(grid, np.minimum(p, grid * bw_max), c="k", lw=1.4 if j == 0 else 0.8, ls="-" if j == 0 else "--",
                    label=f"{cls} roof {p / 1e12:.4g} Tops/s" + (f", {bw_max / 1e9:.4g} GB/s" if j == 0 else ""))
        markers = {"prefill": "o", "decode": "^"}
        phases = [str(p) for p in detail.phase.values]
        for i, phase in enumerate(phases):
            ax.scatter(intensity[i][ok[i]], attained[i][ok[i]], marker=markers.get(phase, "s"), s=28, label=phase,
                       zorder=3)
        rows, cols = np.nonzero(ok)
        names = [str(detail.op.values[c]) for c in cols]
        lines = []
        for k, group in enumerate(_clusters(intensity[rows, cols], attained[rows, cols]), start=1):
            first = group[0]
            above = k % 2 == 1  # neighbours alternate above-left and below-right of their point
            ax.annotate(str(k), (intensity[rows[first], cols[first]], attained[rows[first], cols[first]]),
                        xytext=(-4, 4) if above else (4, -4), textcoords="offset points",
                        ha="right" if above else "left", va="bottom" if above else "top", fontsize=7,
                        fontweight="bold")
            text = _cluster_key([names[g] for g in group], [phases[rows[g]] for g in group])
            lines.append(textwrap.fill(f"{k:>2}  {text}", 52, subsequent_indent="     "))
        key.text(0, 1, "operators (number at the point)\n\n" + "\n".join(lines), va="top", ha="left", fontsize=7.5,
                 family="monospace", transform=key.transAxes)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(axis_label("op_intensity"))
    ax.set_ylabel(axis_label("op_attainable_ops_per_s"))
    ax.set_title(title or "per-operator roofline", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)
    return fig


def history_figure(ds: xr.Dataset, objectives: Sequence[tuple[str, str]]) -> Figure:
    """Each objective (``(metric, direction)``) over trial number: infeasible grey, feasible blue,
    Pareto red, and the best feasible value so far."""
    with plt.style.context("default"):
        fig, axes = plt.subplots(len(objectives), 1, figsize=(6.8, 2.6 * len(objectives) + 0.6), squeeze=False,
                                 sharex=True, layout="constrained")
    trial = np.asarray(ds.trial.values, dtype=float)
    feasible, pareto = _flag(ds, "feasible", True), _flag(ds, "pareto", False)
    if "state" in ds.coords:
        feasible &= ds.state.values == "COMPLETE"
    for ax, (name, direction) in zip(axes[:, 0], objectives, strict=True):
        v = _scaled(ds, name)
        ok = np.isfinite(v)
        ax.scatter(trial[ok & ~feasible], v[ok & ~feasible], s=8, c="0.75", label="infeasible")
        ax.scatter(trial[ok & feasible & ~pareto], v[ok & feasible & ~pareto], s=10, c="tab:blue", alpha=0.7,
                   label="feasible")
        ax.scatter(trial[ok & pareto], v[ok & pareto], s=14, c="tab:red", label="Pareto", zorder=3)
        good = np.where(ok & feasible, v if direction == "minimize" else -v, np.inf)
        so_far = np.minimum.accumulate(good[np.argsort(trial)])
        shown = np.isfinite(so_far)
        ax.step(np.sort(trial)[shown], (so_far if direction == "minimize" else -so_far)[shown], where="post",
                c="k", lw=1, label=f"best feasible so far ({direction})")
        _scale(ax.yaxis, v[ok])
        ax.set_ylabel(axis_label(name))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel("trial")
    fig.suptitle("Optimization history", fontsize=10)
    return fig


def importance_figure(importance: xr.DataArray) -> Figure:
    """Horizontal bars of parameter importance over dims ``(param, metric)``, one bar per objective,
    parameters by their mean importance; tick labels are the full parameter paths."""
    imp = importance.transpose("param", "metric")
    order = np.argsort(imp.mean("metric").values)
    params = [str(p) for p in imp.param.values[order]]
    metrics = [str(m) for m in imp.metric.values]
    height = 0.8 / len(metrics)
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(params) * max(1.0, 0.6 * len(metrics)) + 1.4),
                               layout="constrained")
    y = np.arange(len(params))
    for j, m in enumerate(metrics):
        vals = imp.sel(metric=m).values[order]
        bars = ax.barh(y + ((len(metrics) - 1) / 2 - j) * height, vals, height, label=metric(m).text)
        ax.bar_label(bars, [f"{v:.2f}" if v >= 0.01 else "<0.01" for v in vals], fontsize=7, padding=2)
    ax.set_yticks(y, params)
    ax.set_xlim(0, 1.1 * max(float(imp.max()), 1e-9))
    ax.set_xlabel(f"importance ({imp.attrs.get('evaluator', 'Optuna')}, normalized to sum 1 per objective)")
    ax.set_title("Parameter importance" + (f" for {metric(metrics[0]).text}" if len(metrics) == 1 else ""),
                 fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if len(metrics) > 1:
        ax.legend(fontsize=8, loc="lower right", title="objective", title_fontsize=8)
    return fig


def tornado_figure(data: dict) -> Figure:
    """One-at-a-time sensitivity (:func:`hwdse.search.review.tornado`): per parameter a bar from the
    lowest to the highest objective over its values tried, widest first; infeasible ends hatched; the
    best design's objective as a line."""
    name, best = data["metric"], data["best"]
    m = metric(name)
    rows = sorted(data["params"].items(), key=lambda kv: np.ptp(kv[1]["objective"]) if kv[1]["objective"] else 0)
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(7.6, 0.5 * len(rows) + 1.6), layout="constrained")
    for i, (path, r) in enumerate(rows):
        vals = np.asarray(r["objective"], dtype=float) * m.scale
        lo, hi = int(np.nanargmin(vals)), int(np.nanargmax(vals))
        ax.barh(i, vals[hi] - vals[lo], left=vals[lo], color="tab:blue", alpha=0.6)
        for j in (lo, hi):
            ax.plot(vals[j], i, "o" if r["feasible"][j] else "x", color="k" if r["feasible"][j] else "tab:red")
            ax.annotate(str(r["values"][j]), (vals[j], i), xytext=(0, 7), textcoords="offset points", ha="center",
                        fontsize=7)
    ax.axvline(best * m.scale, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)), [p for p, _ in rows])
    ax.set_xlabel(f"{m.label}; line: best design; x: infeasible there")
    ax.set_title(f"Sensitivity of {m.text} around the best design (one parameter at a time)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig
