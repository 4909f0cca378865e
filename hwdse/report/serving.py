"""A serving study's best design over its load and pool sizes (:func:`serving_study_figure`). This
module only draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hwdse.report.labels import metric

__all__ = ["serving_study_figure"]


def serving_study_figure(curves: Mapping[str, Any], title: str, ttft_slo_s: float = np.inf,
                         tpot_slo_s: float = np.inf, pools: Mapping[str, Any] | None = None) -> Any:
    """The best design of a serving study: tokens/s per device against TPOT along its load (``curves
    ["load"]``, one dim: concurrency or arrival rate; hollow where the TTFT objective is missed) and,
    when pool sizes were searched, goodput per device of every pool-size pair at its own best load,
    one series per decode pool (``pools``: label -> Dataset over ``pool``, :func:`hwdse.search.review.pools`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    load = curves["load"]
    dim = load.tpot_s.dims[0]
    fig, axes = plt.subplots(1, 2 if pools else 1, figsize=(12 if pools else 6.5, 4.8),
                             squeeze=False)
    ax = axes[0, 0]
    tpot_ms, tput = load.tpot_s.values * 1e3, load.tok_s_per_device.values
    ok = load.ttft_s.values <= ttft_slo_s
    ax.plot(tpot_ms, tput, "-", color="C0", lw=1.2)
    ax.scatter(tpot_ms[ok], tput[ok], color="C0", s=22, label=f"TTFT <= {ttft_slo_s * 1e3:g} ms" if np.isfinite(
        ttft_slo_s) else None, zorder=3)
    ax.scatter(tpot_ms[~ok], tput[~ok], facecolors="none", edgecolors="C0", s=22,
               label="TTFT objective missed" if (~ok).any() else None, zorder=3)
    span = np.array([np.ptp(tpot_ms[np.isfinite(tpot_ms)]), np.ptp(tput[np.isfinite(tput)])])
    last = None
    for i in np.unique(np.linspace(0, len(tpot_ms) - 1, 6).astype(int)):  # skip a label that would overlap
        here = np.array([tpot_ms[i], tput[i]])
        if last is not None and np.all(np.abs(here - last) < 0.06 * np.where(span > 0, span, 1.0)):
            continue
        ax.annotate(f"{load[dim].values[i]:.3g}", (tpot_ms[i], tput[i]), fontsize=7, xytext=(4, -10),
                    textcoords="offset points")
        last = here
    if np.isfinite(tpot_slo_s):
        ax.axvline(tpot_slo_s * 1e3, color="grey", ls="--", lw=1, label=f"TPOT objective {tpot_slo_s * 1e3:g} ms")
    ax.set_xlabel(f"{metric('tpot_s').text} (ms)")
    ax.set_ylabel(f"{metric('tok_s_per_device').text} ({metric('tok_s_per_device').unit})")
    ax.set_title(f"along {dim.replace('_', ' ')} (labels)", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    if pools:
        _pool_panel(axes[0, 1], pools, dim)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _pool_panel(ax: Any, pools: Mapping[str, Any], dim: str) -> None:
    """Goodput per device against the prefill:decode instance ratio, each pair of pool sizes at its own
    best load; one series per decode pool, each series' best starred and labelled with its sizes."""
    label = f"{metric('goodput_tok_s_per_device').text} ({metric('goodput_tok_s_per_device').unit})"
    for i, (name, r) in enumerate(pools.items()):
        pre = np.broadcast_to(np.asarray(r["prefill_instances"].values, dtype=float), r.goodput_tok_s_per_device.shape)
        dec = np.broadcast_to(np.asarray(r["decode_instances"].values, dtype=float), pre.shape)
        good = np.where(np.asarray(r.feasible.values, dtype=bool), r.goodput_tok_s_per_device.values, 0.0)
        ratio = pre / dec
        ax.scatter(ratio, good, s=18, color=f"C{i + 1}", alpha=0.75, label=name)
        k = int(np.argmax(good))
        ax.scatter([ratio[k]], [good[k]], marker="*", s=170, color=f"C{i + 1}", edgecolors="black", zorder=3)
        at = float(np.asarray(r[f"serving.{dim}"].values)[k])
        ax.annotate(f"{pre[k]:g}:{dec[k]:g} at {at:.0f} {dim}", (ratio[k], good[k]),
                    fontsize=8, xytext=(6, 4 - 12 * i), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(lambda r, _: f"{r:g}:1" if r >= 1 else f"1:{1 / r:g}")
    ax.set_xlabel("prefill : decode instances")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"every pool-size pair at its own best {dim.replace('_', ' ')} (0: no feasible load)", fontsize=10)
