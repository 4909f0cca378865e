"""Generic figures: Dataset in, matplotlib Figure out (Pareto fronts, per-operator rooflines)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["pareto_figure", "roofline_figure"]


def _label(ds: xr.Dataset, name: str) -> str:
    units = ds[name].attrs.get("units", "") if name in ds.variables else ""
    return f"{name} [{units}]" if units and units != "1" else name


def _flag(ds: xr.Dataset, name: str, default: bool) -> np.ndarray:
    if name not in ds.variables:
        return np.full(ds.sizes["trial"], default)
    return np.asarray(ds[name].values).astype(bool).reshape(-1)


def pareto_figure(ds: xr.Dataset, x: str, y: str, *, x_direction: str = "minimize",
                  y_direction: str = "minimize", title: str = "", front: str = "pareto",
                  best: str | None = None) -> Figure:
    """Scatter of ``y`` against ``x`` over dim ``trial``: infeasible points grey, feasible blue,
    the ``front`` flag's points red and joined by their staircase, ``best`` flag's points ringed,
    ``reference`` points starred."""
    with plt.style.context("default"):  # optuna's plots switch the global style to ggplot
        fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    xs, ys = (np.asarray(ds[v].values, dtype=float).reshape(-1) for v in (x, y))
    feasible, pareto, ref = _flag(ds, "feasible", True), _flag(ds, front, False), _flag(ds, "reference", False)
    ok = np.isfinite(xs) & np.isfinite(ys)
    many = ok.sum() > 20000
    ax.scatter(xs[ok & ~feasible], ys[ok & ~feasible], s=6, c="0.75", label="infeasible", rasterized=many)
    ax.scatter(xs[ok & feasible & ~pareto], ys[ok & feasible & ~pareto], s=8, c="tab:blue", alpha=0.6,
               label="feasible", rasterized=many)
    on = ok & pareto
    order = np.argsort(xs[on] if x_direction == "minimize" else -xs[on])
    ax.step(xs[on][order], ys[on][order], where="post", c="tab:red", lw=1)
    ax.scatter(xs[on], ys[on], s=22, c="tab:red", label="Pareto front", zorder=3)
    if best is not None:
        top = ok & _flag(ds, best, False)
        ax.scatter(xs[top], ys[top], s=70, facecolors="none", edgecolors="k", label="best", zorder=4)
    if (ok & ref).any():
        ax.scatter(xs[ok & ref], ys[ok & ref], s=120, marker="*", c="gold", edgecolors="k", label="reference",
                   zorder=4)
    for vals, setter in ((xs[ok], ax.set_xscale), (ys[ok], ax.set_yscale)):
        if vals.size and vals.min() > 0 and vals.max() / vals.min() > 50:
            setter("log")
    ax.set_xlabel(_label(ds, x))
    ax.set_ylabel(_label(ds, y))
    ax.set_title(title or f"{y} vs {x}")
    ax.legend(loc="best", fontsize=8)
    return fig


def roofline_figure(detail: xr.Dataset, title: str = "") -> Figure:
    """Per-operator roofline of one design: attained ops/s vs arithmetic intensity (ops/byte) for
    each operator of prefill and decode, under the device's roofs (memory slope, compute peaks).

    ``detail`` is ``hwdse.evaluate(..., detail=True)`` (vars over ``(phase, op)``)."""
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
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
        for i, phase in enumerate(detail.phase.values):
            sel = ok[i]
            ax.scatter(intensity[i][sel], attained[i][sel], marker=markers.get(str(phase), "s"), s=28,
                       label=str(phase), zorder=3)
            for name, xi, yi in zip(detail.op.values[sel], intensity[i][sel], attained[i][sel], strict=True):
                ax.annotate(str(name), (xi, yi), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity [op/byte]")
    ax.set_ylabel("attained [op/s]")
    ax.set_title(title or "per-operator roofline")
    ax.legend(loc="lower right", fontsize=7)
    return fig
