"""Format-selection data (hwdse.perf.format_selection), its report and the ``hwdse formats`` CLI."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from hwdse.cli.main import app
from hwdse.formats import get, mac_cost
from hwdse.perf import evaluate
from hwdse.perf.format_selection import SOURCES, candidates, floor_sources, format_selection, pareto, recommend
from hwdse.report.formats import format_figures, format_markdown, study_arguments, write_format_report

TRIPLES = [("bf16", "bf16", "bf16"), ("fp8-e4m3", "fp8-e4m3", "fp8-e4m3"), ("int4", "bf16", "bf16"),
           ("mxfp6-e2m3", "fp8-e4m3", "fp8-e4m3")]
SCEN = dict(batch=1, prompt=256, gen=32)


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    return format_selection("llama-3-8b", "h100-sxm", TRIPLES, min_qsnr_db=25.0, **SCEN)


def test_dataset_contents(ds: xr.Dataset) -> None:
    assert list(ds.candidate.values) == ["/".join(t) for t in TRIPLES]
    assert set(SOURCES) <= set(ds.source.values)
    for i, (w, a, kv) in enumerate(TRIPLES):
        assert ds.bits_weights.values[i] == get(w).bits_per_element
        assert ds.bits_kv.values[i] == get(kv).bits_per_element
        weight_sources = [s for s in ds.source.values if str(ds.qsnr_db.source_role.sel(source=s).item()) == "weights"]
        worst = float(ds.qsnr_db.sel(format=w, source=weight_sources).min())
        assert ds.worst_weights_db.values[i] == pytest.approx(worst)
        floor = floor_sources("weights")  # real weights when installed, else the Gaussian: not the worst tail
        assert floor[0] in ("minilm_weights", "gaussian") and "student_t3" not in floor
        assert ds.quality_weights_db.values[i] == pytest.approx(float(ds.qsnr_db.sel(format=w, source=floor[0])))
        assert ds.quality_activations_db.values[i] == pytest.approx(float(ds.qsnr_db.sel(format=a,
                                                                                          source="llm_activations")))
        assert ds.mac_area_um2.values[i] == pytest.approx(mac_cost(str(ds.mac_format.values[i])).area_um2)
    direct = evaluate("llama-3-8b", "h100-sxm", weights="int4", activations="bf16", kv="bf16", **SCEN)
    assert ds.tpot_s.values[2] == pytest.approx(float(direct.tpot_s))
    assert ds.memory_bytes.values[2] == pytest.approx(float(direct.memory_bytes))
    # fewer bits: less memory and faster decode; bf16 is lossless to > 50 dB, int4 g128 is not
    assert ds.tpot_s.values[2] < ds.tpot_s.values[1] < ds.tpot_s.values[0]
    assert ds.qsnr_db.sel(format="bf16", source="gaussian") > 50 > ds.qsnr_db.sel(format="int4", source="gaussian")
    assert list(ds.gemm_class_prefill.values) == ["bf16", "fp8", "bf16", "bf16"]  # mxfp6 has no H100 datapath
    assert list(ds.mac_format.values) == ["bf16", "fp8-e4m3", "bf16", "fp8-e4m3"]
    assert np.all(ds.matmul_rel_error.values[1:] > ds.matmul_rel_error.values[0])


def test_recommendation_respects_the_floor_and_the_kernels(ds: xr.Dataset) -> None:
    """int4 weights decode fastest but fall below 25 dB; mxfp6 is next and meets the floor but has no
    production kernel on H100 (an upcast: a BF16 GEMM after dequantizing the weights): FP8 wins."""
    assert not ds.meets_floor.values[2] and ds.tpot_s.values[2] == ds.tpot_s.min()
    assert ds.meets_floor.values[3] and str(ds.kernel_path.values[3]) == "upcast" and not ds.on_kernel.values[3]
    assert list(ds.kernel_path.values[:3]) == ["native", "native", "weight-only"]
    assert "arch/kernels/hopper.yaml" in str(ds.kernel_reason.values[2])
    assert list(ds.kv_path.values) == ["native"] * 4 and ds.attrs["kernel_table"] == "arch/kernels/hopper.yaml"
    assert ds.attrs["recommendation"] == "fp8-e4m3/fp8-e4m3/fp8-e4m3" and ds.attrs["recommendation_kernel"] == ""
    assert ds.recommended.values.tolist() == [False, True, False, False]
    for floor in (0.0, 20.0, 29.0, 40.0, 60.0):
        r = recommend(ds, floor)
        chosen = np.flatnonzero(r.recommended.values)
        ok = r.meets_floor.values & r.fits.values
        assert len(chosen) <= 1
        if len(chosen):
            i = chosen[0]
            assert r.quality_db.values[i] >= floor and r.fits.values[i] and r.on_kernel.values[i]
            assert r.tpot_s.values[i] == r.tpot_s.values[ok & r.on_kernel.values].min()
        else:
            assert not ok.any() and r.attrs["recommendation"] == ""
    assert recommend(ds, 0.0).attrs["recommendation"] == "int4/bf16/bf16"
    assert recommend(ds, 60.0).attrs["recommendation"] == ""


def test_fit_and_ties() -> None:
    """A candidate that does not fit is never recommended; equal TPOT goes to the smaller footprint."""
    n = 3
    fake = xr.Dataset({
        "quality_weights_db": ("candidate", [40.0, 40.0, 40.0]),
        "quality_activations_db": ("candidate", [40.0, 40.0, 40.0]),
        "quality_kv_db": ("candidate", [40.0, 40.0, 40.0]),
        "tpot_s": ("candidate", [1.0, 2.0, 2.0]), "memory_bytes": ("candidate", [1.0, 9.0, 5.0]),
        "fits": ("candidate", [False, True, True]), "mac_area_um2": ("candidate", [1.0, 1.0, np.nan]),
    }, coords={"candidate": [f"c{i}" for i in range(n)]})
    r = recommend(fake, 30.0)
    assert r.attrs["recommendation"] == "c2"
    assert r.pareto_silicon.values.tolist() == [True, True, False]   # NaN cost is never on the front


def test_pareto_mask() -> None:
    q = np.array([10.0, 20.0, 20.0, 15.0])
    cost = np.array([1.0, 2.0, 3.0, 2.5])
    assert pareto(q, cost).tolist() == [True, True, False, False]


def test_report_files_and_nan_energy(ds: xr.Dataset, tmp_path) -> None:
    nan = ds.assign(energy_j_per_token=ds.energy_j_per_token * np.nan)
    files = write_format_report(nan, tmp_path)
    for key in ("quality_vs_tpot", "quality_vs_mac_area", "qsnr_by_source", "markdown", "html", "data"):
        assert files[key].is_file() and files[key].stat().st_size > 0
    md = files["markdown"].read_text()
    assert "fp8-e4m3/fp8-e4m3/fp8-e4m3" in md and "n/a" in md and "quality_vs_tpot.png" in md
    assert "<img" in files["html"].read_text()
    back = xr.open_dataset(files["data"])
    assert back.sizes["candidate"] == len(TRIPLES)
    back.close()
    assert math.isnan(float(nan.energy_j_per_token[0])) and "n/a" in format_markdown(nan)


def test_study_file_and_cli(tmp_path) -> None:
    args = study_arguments("studies/format-selection.toml")
    assert args["model"] == "llama-3-8b" and args["min_qsnr_db"] == 25.0
    assert args["floor_tensors"] == ("weights", "activations") and "mxfp4" in args["choices"]["weights"]
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["formats", "report", "--weights", "bf16,int4", "--activations", "bf16",
                                      "--kv", "bf16", "--prompt", "128", "--gen", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "recommended (weights/activations/KV): bf16/bf16/bf16" in result.output
    assert (out / "report.html").is_file()
    bad = CliRunner().invoke(app, ["formats", "report", "--weights", "fp5", "--out", str(out)])
    assert bad.exit_code == 2 and "weights" in bad.output


def test_candidates_cross_product() -> None:
    assert len(candidates(["bf16", "int4"], ["bf16"], ["bf16", "fp8-e4m3"])) == 4


def test_readme_format_commands_run(tmp_path, monkeypatch) -> None:
    """The README's "Choosing formats" commands run (output folders redirected to a temp dir)."""
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Choosing formats", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("hwdse ")]
    assert len(commands) == 3 and commands[1][:2] == ["hwdse", "formats"]
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    for argv in commands:
        if "--out" in argv:
            argv[argv.index("--out") + 1] = str(tmp_path / argv[argv.index("--out") + 1])
        result = CliRunner().invoke(app, argv[1:])
        assert result.exit_code == 0, (argv, result.output)


def _overlap(a, b) -> bool:  # two display-space Bboxes
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("attr, line", [
    ("batch=1.0, prompt=512, gen=128, flash_attention=False", "llama-3-8b on h100-sxm, batch 1, prompt 512, gen 128"),
    ("rag, batch=16", "llama-3-8b on h100-sxm, scenario rag (batch 16, prompt 4096, gen 256)"),
    ("", "llama-3-8b on h100-sxm, batch 1, prompt 512, gen 128"),
])
def test_figures_are_readable(ds: xr.Dataset, attr: str, line: str) -> None:
    """Titles print the scenario as words (``batch 1``, not ``batch=1.0``); no legend covers a title or
    leaves the figure."""
    figs = format_figures(ds.assign_attrs(scenario=attr))
    assert line in figs["quality_vs_tpot"].axes[0].get_title()
    for name, fig in figs.items():
        fig.canvas.draw()
        page = fig.bbox
        title = fig.axes[0].title.get_window_extent()
        for legend in fig.legends + [a.get_legend() for a in fig.axes if a.get_legend()]:
            box = legend.get_window_extent()
            assert not _overlap(box, title), name
            assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, name
        plt.close(fig)


def test_table_headers_carry_units(ds: xr.Dataset) -> None:
    head = format_markdown(ds).split("\n| ", 1)[1].split("\n", 1)[0]
    for label in ("TTFT (ms)", "TPOT (ms)", "Memory (GB)", "Energy (J/token)", "MAC area (µm²)", "W QSNR (dB)"):
        assert label in head


def test_point_labels_never_overlap_and_stay_on_the_page() -> None:
    """Every candidate of the default set (clusters of near-identical points included): no two point labels of
    the quality figures overlap, and each lies inside the figure, the recommended one too."""
    from matplotlib.text import Text

    full = format_selection("llama-3-8b", "h100-sxm", min_qsnr_db=15.0, **SCEN)
    for name, fig in format_figures(full).items():
        if name == "qsnr_by_source":
            continue
        fig.canvas.draw()
        notes = [t for t in fig.axes[0].texts if t.get_text()]
        assert notes and any(t.get_fontweight() == "bold" for t in notes), name  # the recommended one is named
        boxes = [Text.get_window_extent(t) for t in notes]  # the text alone, not its leader line
        for i, a in enumerate(boxes):
            assert fig.bbox.x0 <= a.x0 and a.x1 <= fig.bbox.x1, (name, notes[i].get_text())
            for j in range(i):
                assert not _overlap(a, boxes[j]), (name, notes[i].get_text(), notes[j].get_text())
        plt.close(fig)
