"""Verdicts of a comparison between systems: who leads each cell, and whether the lead is a win.

A cell's leader is the system of highest score among those that serve it. The lead is a **win** only
where at least two systems serve and the leader's score exceeds the runner-up's by more than both
bands added (:func:`hwdse.perf.uncertainty.exceeds`); inside the bands, or where either has no band
(a roofline bound), it is **within band**. A system that is the only one to serve is **only serves**
(its rivals do not fit or miss the objectives), never a win; **none serves** and **none fits** say
why a cell has no leader.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hwdse.perf.uncertainty import exceeds

__all__ = ["VERDICTS", "verdicts"]

VERDICTS = ("wins", "within band", "only serves", "none serves", "none fits")


def verdicts(score: xr.DataArray, serves: xr.DataArray, fits: xr.DataArray, band: xr.DataArray,
             dim: str = "system") -> xr.Dataset:
    """Per cell (every dim but ``dim``): ``verdict`` (one of :data:`VERDICTS`), ``leader`` and ``runner_up``
    ("" where there is none) and ``ratio`` (leader's score over the runner-up's, NaN without one).

    ``score``: higher is better; ``serves``: the system serves the cell (counts toward the leader);
    ``fits``: it holds at least one request or batch; ``band``: the score's p90 relative band."""
    score, serves, fits, band = xr.broadcast(score, serves.astype(bool), fits.astype(bool), band)
    axis = score.dims.index(dim)
    ranked = np.where(serves.values, score.values, -np.inf)
    order = np.argsort(-ranked, axis=axis, kind="stable")

    def nth(values: np.ndarray, k: int) -> np.ndarray:
        k = min(k, values.shape[axis] - 1)
        return np.take(np.take_along_axis(values, order, axis), k, axis)

    count = serves.values.sum(axis)
    first, second = nth(ranked, 0), nth(ranked, 1)
    rival = count > 1
    beyond = exceeds(first, np.where(rival, second, 1.0), nth(band.values, 0), nth(band.values, 1))
    verdict = np.select([~fits.values.any(axis), count == 0, count == 1, rival & (beyond == 1)],
                        ["none fits", "none serves", "only serves", "wins"], "within band")
    names = score[dim].values.astype(str)
    leader = np.where(count > 0, names[np.take(order, 0, axis)], "")
    runner = np.where(rival, names[np.take(order, min(1, names.size - 1), axis)], "")
    ratio = np.where(rival, first / np.where(rival, second, 1.0), np.nan)
    dims = [d for d in score.dims if d != dim]
    coords = {d: score[d] for d in dims if d in score.coords}
    return xr.Dataset({"verdict": (dims, verdict), "leader": (dims, leader), "runner_up": (dims, runner),
                       "ratio": (dims, ratio)}, coords=coords)
