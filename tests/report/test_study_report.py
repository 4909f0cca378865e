"""Study report: Dataset in, Figures out; report.md/html embed the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

import hwdse
from hwdse.report import pareto_figure, roofline_figure, study_figures, write_report


def _results(tmp_path: Path) -> xr.Dataset:
    from hwdse.search import load_study, run_study
    from tests.search.conftest import TINY

    path = tmp_path / "t.toml"
    path.write_text(TINY.replace('name = "tpe"', 'name = "grid"'))
    return run_study(load_study(path), tmp_path / "run").results


def test_pareto_figure_marks_feasible_infeasible_and_front(tmp_path: Path) -> None:
    ds = _results(tmp_path)
    fig = pareto_figure(ds, "ttft_s", "tpot_s")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"infeasible", "feasible", "Pareto front"} <= set(labels)
    counts = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    assert counts["infeasible"] == int((~ds.feasible.values.astype(bool)).sum())
    assert counts["Pareto front"] == int(ds.pareto.values.sum())


def test_roofline_figure_has_a_point_per_operator(tmp_path: Path) -> None:
    detail = hwdse.evaluate("llama-2-7b", "a6000", batch=1, prompt=512, gen=8, detail=True)
    fig = roofline_figure(detail)
    ax = fig.axes[0]
    points = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    ok = np.isfinite(detail.op_intensity.values) & (detail.op_flops.values > 0)
    assert points["prefill"] == int(ok[0].sum()) and points["decode"] == int(ok[1].sum())
    assert ax.get_xscale() == "log" and any("roof" in line.get_label() for line in ax.lines)


def test_report_embeds_figures(tmp_path: Path) -> None:
    ds = _results(tmp_path)
    detail = hwdse.evaluate("llama-2-7b", "a6000", batch=4, prompt=256, gen=32, detail=True)
    assert set(study_figures(ds, None, detail)) == {"pareto", "roofline"}
    paths = write_report(ds, tmp_path / "rep", None, detail)
    md = paths["report_md"].read_text()
    assert "![pareto](figures/pareto.png)" in md and "![roofline](figures/roofline.png)" in md
    assert md.count("\n| ") >= 2  # header + at least one best design
    assert paths["report_html"].read_text().count("data:image/png;base64,") == 2
