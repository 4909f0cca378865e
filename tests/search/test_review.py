"""Design-review sections of a study: baselines on the best design's workload, binding constraints,
one-at-a-time sensitivity around the best design, and the report that shows them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwdse.perf import evaluate
from hwdse.report import write_report
from hwdse.search import run_study
from hwdse.search.load import load_study
from hwdse.search.review import baselines, binding, tornado

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("review")
    return run_study(load_study(REPO / "studies" / "decode-dse.toml"), out, n_trials=16)


def test_baselines_run_the_best_designs_workload_in_their_own_formats(run):
    (h100, ds), (b200, _) = baselines(run.space, run.results)
    assert (h100.arch, b200.arch) == ("h100-sxm", "b200")
    w = run.space.spec.workload  # decode-dse searches formats only: the baseline gives its own
    direct = evaluate(w.model, "h100-sxm", batch=w.batch, prompt=w.prompt, gen=w.gen, weights="fp8-e4m3",
                      activations=w.activations, kv="fp8-e4m3", mode=run.space.spec.mode)
    assert float(ds.tpot_s) == pytest.approx(float(direct.tpot_s), rel=1e-12)
    assert float(ds.constraint_area) > 0 and not bool(ds.feasible)  # an 814 mm^2 die breaks the 600 mm^2 budget


def test_binding_counts_violations_of_completed_trials(run):
    rows = {r["constraint"]: r for r in binding(run.space, run.results)}
    ds = run.results
    for name, r in rows.items():
        assert r["violated"] == int((np.asarray(ds[f"constraint_{name}"].values) > 0).sum())
        assert r["binds"] == (-0.05 <= r["at_best"] <= 0)
    assert {"area", "power", "hardware", "quality"} <= set(rows)


def test_tornado_moves_one_parameter_to_its_ends(run):
    data = tornado(run.space, run.results)
    design = data["design"]
    count = data["params"]["arch.pe.count"]
    assert count["values"] == [64, 2048]
    low = run.space.evaluate_design({**design, "arch.pe.count": 64})
    assert count["objective"][0] == pytest.approx(float(low.tpot_s))
    assert len(data["params"]["scenario.weights"]["values"]) == 6
    assert data["best"] == pytest.approx(float(run.space.evaluate_design(design).tpot_s))


def test_report_shows_baselines_binding_constraints_and_the_tornado(run, tmp_path):
    review = {"baselines": baselines(run.space, run.results), "binding": binding(run.space, run.results),
              "tornado": tornado(run.space, run.results)}
    paths = write_report(run.results, tmp_path / "rep", run.study, review=review)
    md = paths["report_md"].read_text()
    for heading in ("## Baselines", "## Constraints that bind", "## Sensitivity around the best design"):
        assert heading in md
    assert "h100-sxm" in md and "Cost per Mtoken" in md and (tmp_path / "rep" / "figures" / "tornado.png").is_file()
