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
                         tpot_slo_s: float = np.inf) -> Any:
    """The best design of a serving study: tokens/s per device against TPOT along its load (``curves
    ["load"]``, one dim: concurrency or arrival rate; hollow where the TTFT objective is missed) and,
    when pool sizes were searched, goodput per device over them (``curves["pools"]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    load = curves["load"]
    dim = load.tpot_s.dims[0]
    pools = curves.get("pools")
    fig, axes = plt.subplots(1, 2 if pools is not None else 1, figsize=(12 if pools is not None else 6.5, 4.8),
                             squeeze=False)
    ax = axes[0, 0]
    tpot_ms, tput = load.tpot_s.values * 1e3, load.tok_s_per_device.values
    ok = load.ttft_s.values <= ttft_slo_s
    ax.plot(tpot_ms, tput, "-", color="C0", lw=1.2)
    ax.scatter(tpot_ms[ok], tput[ok], color="C0", s=22, label=f"TTFT <= {ttft_slo_s * 1e3:g} ms" if np.isfinite(
        ttft_slo_s) else None, zorder=3)
    ax.scatter(tpot_ms[~ok], tput[~ok], facecolors="none", edgecolors="C0", s=22,
               label="TTFT objective missed" if (~ok).any() else None, zorder=3)
    for i in np.unique(np.linspace(0, len(tpot_ms) - 1, 6).astype(int)):
        ax.annotate(f"{load[dim].values[i]:.3g}", (tpot_ms[i], tput[i]), fontsize=7, xytext=(4, -10),
                    textcoords="offset points")
    if np.isfinite(tpot_slo_s):
        ax.axvline(tpot_slo_s * 1e3, color="grey", ls="--", lw=1, label=f"TPOT objective {tpot_slo_s * 1e3:g} ms")
    ax.set_xlabel(f"{metric('tpot_s').text} (ms)")
    ax.set_ylabel(f"{metric('tok_s_per_device').text} ({metric('tok_s_per_device').unit})")
    ax.set_title(f"along {dim.replace('_', ' ')} (labels)", fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    if pools is not None:
        _pool_panel(axes[0, 1], fig, pools.goodput_tok_s_per_device, f"{dim.replace('_', ' ')} {float(pools[dim]):.3g}")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _pool_panel(ax: Any, fig: Any, good: Any, at: str) -> None:
    """Goodput per device over the searched pool sizes: a heat map of prefill x decode instances, or a
    line over the one searched; the best marked."""
    label = f"{metric('goodput_tok_s_per_device').text} ({metric('goodput_tok_s_per_device').unit})"
    if good.ndim == 2:
        good = good.transpose("prefill_instances", "decode_instances")
        image = ax.imshow(good.values, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(good.sizes["decode_instances"]), [f"{v:g}" for v in good.decode_instances.values])
        ax.set_yticks(range(good.sizes["prefill_instances"]), [f"{v:g}" for v in good.prefill_instances.values])
        ax.set_xlabel("decode instances")
        ax.set_ylabel("prefill instances")
        i, j = np.unravel_index(np.nanargmax(good.values), good.shape)
        ax.scatter([j], [i], marker="*", s=160, color="white", edgecolors="black", zorder=3)
        fig.colorbar(image, ax=ax, label=label)
    else:
        size = good.dims[0]
        ax.plot(good[size].values, good.values, "o-", color="C1")
        k = int(np.nanargmax(good.values))
        ax.scatter([good[size].values[k]], [good.values[k]], marker="*", s=160, color="C1", edgecolors="black",
                   zorder=3)
        ax.set_xlabel(size.replace("_", " "))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax.set_title(f"goodput per device at {at}", fontsize=10)
