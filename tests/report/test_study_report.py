"""Study report: Dataset in, Figures out; report.md/html embed the figures, state their cuts and say what
the workload is; figure texts are labels with units, never raw metric names."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

import hwdse
from hwdse.report import pareto_figure, roofline_figure, study_figures, write_report
from hwdse.report import study as study_report
from hwdse.search import StudyRun, load_study, run_study
from tests.search.conftest import TINY

GRID = TINY.replace('name = "tpe"', 'name = "grid"')
# tpot_s and decode_tok_s = batch / tpot_s pull opposite ways: every distinct design is on the front
TWO = GRID.replace('[[objectives]]\nmetric = "tpot_s"\n',
                   '[[objectives]]\nmetric = "tpot_s"\n\n[[objectives]]\nmetric = "decode_tok_s"\n')
RAG = GRID.replace("prompt = 256\ngen = 32\n", 'scenario = "rag"\n')
MIX = GRID.replace("prompt = 256\ngen = 32\n", '\n[[workload.mix]]\nscenario = "chat"\nweight = 3\n\n'
                   '[[workload.mix]]\nprompt = 128\ngen = 16\n').replace('metric = "tpot_s"', 'metric = "mix_tpot_s"')


def _run(tmp_path: Path, text: str) -> StudyRun:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return run_study(load_study(path), tmp_path / "run")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def _overlap(a, b) -> bool:  # two display-space Bboxes
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.fixture(scope="module")
def tpe(tmp_path_factory: pytest.TempPathFactory) -> StudyRun:
    return _run(tmp_path_factory.mktemp("tpe"), TINY)


def test_pareto_figure_marks_feasible_infeasible_and_front(tmp_path: Path) -> None:
    ds = _run(tmp_path, GRID).results
    fig = pareto_figure(ds, "ttft_s", "tpot_s")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"infeasible", "feasible", "Pareto front"} <= set(labels)
    counts = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    assert counts["infeasible"] == int((~ds.feasible.values.astype(bool)).sum())
    assert counts["Pareto front"] == int(ds.pareto.values.sum())
    # axes in display units: TPOT and TTFT in ms
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("TTFT (ms)", "TPOT (ms)")
    front = next(c for c in ax.collections if c.get_label() == "Pareto front").get_offsets()
    on = ds.pareto.values.astype(bool)
    np.testing.assert_allclose(np.sort(front[:, 1]), np.sort(ds.tpot_s.values[on] * 1e3))


def test_roofline_numbers_every_operator_once_without_overlapping_labels() -> None:
    detail = hwdse.evaluate("llama-2-7b", "a6000", batch=1, prompt=512, gen=8, detail=True)
    fig = roofline_figure(detail)
    ax, key = fig.axes
    points = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    ok = np.isfinite(detail.op_intensity.values) & (detail.op_flops.values > 0)
    assert points["prefill"] == int(ok[0].sum()) and points["decode"] == int(ok[1].sum())
    assert ax.get_xscale() == "log" and any("roof" in line.get_label() for line in ax.lines)
    numbers = [t.get_text() for t in ax.texts]
    assert numbers == [str(k) for k in range(1, len(numbers) + 1)]  # short numbers at the points...
    listing = key.texts[0].get_text()
    for k in numbers:  # ...each explained once in the key beside the plot
        assert f"\n{int(k):>2}  " in listing
    for op in detail.op.values[ok.any(axis=0)]:
        assert str(op) in listing
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert not [(i, j) for i, j in itertools.combinations(range(len(boxes)), 2) if _overlap(boxes[i], boxes[j])]


def test_importance_plot_shows_full_parameter_names_inside_the_figure(tpe: StudyRun) -> None:
    figs = study_figures(tpe.results, tpe.study)
    ax = figs["importances"].axes[0]
    figs["importances"].canvas.draw()
    ticks = ax.get_yticklabels()
    assert {t.get_text() for t in ticks} == set(tpe.space.params)  # "arch.memory.bandwidth_GBps", not "...GBps"
    for t in ticks:  # not cut at the figure's left edge
        assert t.get_window_extent().x0 >= 0, t.get_text()


def test_figures_print_labels_not_metric_names(tpe: StudyRun) -> None:
    detail = hwdse.evaluate("llama-2-7b", "a6000", batch=4, prompt=256, gen=32, detail=True)
    figs = study_figures(tpe.results, tpe.study, detail)
    assert set(figs) == {"pareto", "history", "importances", "roofline"}
    for name, fig in figs.items():
        raw = [t for t in _texts(fig) for m in ("tpot_s", "ttft_s", "memory_bytes") if m in t]
        assert not raw, (name, raw)
    assert figs["history"].axes[0].get_ylabel() == "TPOT (ms)"


def test_report_embeds_figures(tmp_path: Path) -> None:
    ds = _run(tmp_path, GRID).results
    detail = hwdse.evaluate("llama-2-7b", "a6000", batch=4, prompt=256, gen=32, detail=True)
    assert set(study_figures(ds, None, detail)) == {"pareto", "history", "roofline"}
    paths = write_report(ds, tmp_path / "rep", None, detail)
    md = paths["report_md"].read_text()
    assert "![pareto](figures/pareto.png)" in md and "![roofline](figures/roofline.png)" in md
    assert md.count("\n| ") >= 2  # header + at least one best design
    assert "Showing" not in md  # one Pareto row: nothing cut, nothing to say
    assert paths["report_html"].read_text().count("data:image/png;base64,") == 3


def test_report_states_the_cut_and_prints_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _run(tmp_path, TWO).results
    total = int(ds.pareto.values.sum())
    assert total > study_report.TABLE_ROWS
    md = write_report(ds, tmp_path / "rep")["report_md"].read_text()
    assert f"Showing {study_report.TABLE_ROWS} of {total} Pareto rows (by TPOT); all in best.csv." in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + study_report.TABLE_ROWS
    assert "TPOT (ms)" in table[0] and "Decode throughput (tok/s)" in table[0] and "tpot_s |" not in table[0]
    assert "e+" not in md
    monkeypatch.setattr(study_report, "TABLE_ROWS", total)
    assert "Showing" not in write_report(ds, tmp_path / "all")["report_md"].read_text()


@pytest.mark.parametrize("text, workload", [
    (GRID, "llama-2-7b, batch 4, prompt 256, gen 32; weights fp16, activations fp16, kv searched fp16/fp8-e4m3"),
    (RAG, "llama-2-7b, scenario rag (batch 4, prompt 4096, gen 256);"),
    (MIX, "llama-2-7b, batch 4, mix of 2 scenarios: chat 75% (prompt 512, gen 256), mix1 25% (prompt 128, gen 16);"),
])
def test_report_header_says_what_the_workload_is(tmp_path: Path, text: str, workload: str) -> None:
    ds = _run(tmp_path, text).results
    md = write_report(ds, tmp_path / "rep")["report_md"].read_text()
    header = md.split("## Best designs", 1)[0]
    assert f"- **workload**: {workload}" in header
    assert "None" not in header


def test_results_file_round_trip(tmp_path: Path) -> None:
    """A stored results.nc (booleans as int8) reports like the live Dataset."""
    run = _run(tmp_path, GRID)
    back = xr.open_dataset(run.files["results"])
    assert set(study_figures(back)) == {"pareto", "history"}
    back.close()


def test_a_baseline_is_judged_against_the_best_within_the_error_bands() -> None:
    import xarray as xr

    from hwdse.report.study import _versus

    best = xr.Dataset({"tpot_s": 0.010, "tpot_band": 0.15})
    assert _versus(xr.Dataset({"tpot_s": 0.014, "tpot_band": 0.15}), best, "tpot_s") == "beyond the bands"
    assert _versus(xr.Dataset({"tpot_s": 0.012, "tpot_band": 0.15}), best, "tpot_s") == "within the bands"
    assert _versus(xr.Dataset({"tpot_s": 0.020, "tpot_band": np.nan}), best, "tpot_s") == "no band (a roofline bound)"
    assert _versus(xr.Dataset({"energy_j_per_token": 1.0}), best, "energy_j_per_token") == "no band for this metric"
