"""Verdicts of a comparison: leader, win beyond the bands, only-serves and none cells."""

import numpy as np
import xarray as xr

from hwdse.report.verdict import VERDICTS, verdicts

SYSTEMS = ["GPU", "PIM", "AiM"]


def _cells(score, serves, fits, band):
    dims = ("cell", "system")
    coords = {"cell": np.arange(len(score)), "system": SYSTEMS}
    return [xr.DataArray(np.asarray(v, dtype=float if k != 1 else bool), dims=dims, coords=coords)
            for k, v in enumerate((score, serves, fits, band))]


def test_each_verdict_on_a_constructed_comparison():
    score = [[100, 150, 0], [100, 105, 0], [0, 0, 300], [0, 0, 0], [0, 0, 0], [100, 200, 0]]
    serves = [[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [1, 1, 0]]
    fits = [[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]]
    band = [[0.1, 0.2, 0.1]] * 5 + [[np.nan, 0.1, 0.1]]
    v = verdicts(*_cells(score, serves, fits, band))
    # 150 vs 100: 50 % apart > 10 % + 20 %: a win; 105 vs 100 is inside; AiM alone serves: no win
    assert list(v.verdict.values) == ["wins", "within band", "only serves", "none serves", "none fits", "within band"]
    assert list(v.leader.values) == ["PIM", "PIM", "AiM", "", "", "PIM"]
    assert list(v.runner_up.values) == ["GPU", "GPU", "", "", "", "GPU"]
    np.testing.assert_allclose(v.ratio.values[:2], [1.5, 1.05])
    assert np.isnan(v.ratio.values[2:5]).all()
    assert set(v.verdict.values) <= set(VERDICTS)


def test_a_system_that_does_not_serve_is_never_leader_even_with_the_higher_score():
    """A score of a point that misses the objectives (or does not fit) must not lead the cell."""
    v = verdicts(*_cells([[100, 900, 50]], [[1, 0, 1]], [[1, 1, 1]], [[0.01, 0.01, 0.01]]))
    assert str(v.leader.values[0]) == "GPU" and str(v.runner_up.values[0]) == "AiM"
    assert str(v.verdict.values[0]) == "wins"
    only = verdicts(*_cells([[100, 900, 50]], [[0, 0, 1]], [[1, 1, 1]], [[0.01, 0.01, 0.01]]))
    assert str(only.verdict.values[0]) == "only serves"  # the largest margin in the world is no win alone
