"""Serving validation on the dev set: the split, and the held-out errors of the committed parameters.

Needs ``shared/validation/aic_silicon_dev.csv`` (skips with the reason when absent). The pinned figures
are the held-out medians of ``validation/serving.md``: a change of the serving model that moves them
must regenerate that report (``hwdse calibrate --serving --report``).
"""

import numpy as np
import pytest

from hwdse.calibration import data
from hwdse.calibration import campaigns
from hwdse.calibration import serving as v

needs_data = pytest.mark.skipif(not (data.validation_dir() / "aic_silicon_dev.csv").is_file(),
                                reason=f"aic_silicon_dev.csv not found at {data.validation_dir()}")


@needs_data
def test_rows_and_split():
    rows = v.serving_rows()
    assert len(rows) > 700 and {r.arch for r in rows} == {"h100-sxm", "h200", "b200"}
    assert 0.15 < np.mean([r.held_out for r in rows]) < 0.25
    assert [r.held_out for r in rows] == [r.held_out for r in v.serving_rows()]
    assert {r.harness for r in rows} == {"dump", "gap", "dynamo"}
    assert all(r.campaign.startswith(r.harness) for r in rows)


@needs_data
def test_committed_engines_reproduce_the_reported_held_out_errors():
    """Serving mode replaces the static-batch figure: on held-out rows its TPOT error is a third to a
    half of the static evaluator's, per GPU (values of validation/serving.md, +-1.5 points)."""
    rows = v.serving_rows()
    kv = campaigns.committed_kv()
    ttft, tpot = v.predict_rows(rows, None, campaigns.committed_harnesses(), kv)
    table = {t["system"]: t for t in v.error_table(rows, ttft, tpot, v.static_tpot(rows, kv)) if t["engine"] == "all"}
    for system, (tpot_median, ttft_median) in {"h100_sxm": (0.063, 0.147), "h200_sxm": (0.084, 0.204),
                                               "b200_sxm": (0.045, 0.182)}.items():
        t = table[system]
        assert t["tpot_median"] == pytest.approx(tpot_median, abs=0.015), system
        assert t["ttft_median"] == pytest.approx(ttft_median, abs=0.03), system
        assert t["tpot_median"] < 0.5 * t["static_tpot_median"], system

