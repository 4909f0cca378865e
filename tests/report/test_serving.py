"""The serving study figure: one panel without pool sizes, two with them (each pool's best starred)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from hwdse.report.serving import serving_study_figure


def _load() -> xr.Dataset:
    c = np.geomspace(1, 256, 12)
    return xr.Dataset({"tpot_s": ("concurrency", 0.01 + c * 1e-4), "tok_s_per_device": ("concurrency", 100 * c ** 0.8),
                       "ttft_s": ("concurrency", 0.1 + c * 1e-3)}, coords={"concurrency": c})


def test_no_pool_panel_without_pools() -> None:
    for pools in (None, {}):
        fig = serving_study_figure({"load": _load()}, "t", 0.5, 0.03, pools)
        assert len(fig.axes) == 1


def test_pool_panel_stars_each_decode_pool_at_its_best_pair() -> None:
    pre, dec = np.meshgrid([1.0, 2.0], [1.0, 2.0, 3.0], indexing="ij")
    good = np.array([[10.0, 12.0, 9.0], [14.0, 13.0, 11.0]]).reshape(-1)
    pool = xr.Dataset({"goodput_tok_s_per_device": ("pool", good), "feasible": ("pool", np.ones(6, bool)),
                       "serving.concurrency": ("pool", np.full(6, 64.0))},
                      coords={"prefill_instances": ("pool", pre.reshape(-1)), "decode_instances": ("pool", dec.reshape(-1))})
    fig = serving_study_figure({"load": _load()}, "t", 0.5, 0.03, {"decode on x": pool, "decode on y (baseline)": pool * 1})
    panel = fig.axes[1]
    assert len(fig.axes) == 2 and panel.get_xlabel() == "prefill : decode instances"
    assert [t.get_text() for t in panel.texts] == ["2:1 at 64 concurrency"] * 2  # 14 tok/s at 2 prefill : 1 decode
