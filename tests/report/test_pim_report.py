"""The PIM-vs-GPU decode study: Dataset, crossovers, limits, figures and the CLI report."""

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hwdse.cli.main import app
from hwdse.report.pim import curves_figure, static_verdicts, winner_figure
from hwdse.report.pim_study import LIMITS, SYSTEMS, crossovers, pim_vs_gpu, study_grid

STUDY = Path(__file__).resolve().parents[2] / "studies" / "pim-vs-gpu-decode.toml"


@pytest.fixture(scope="module")
def small():
    return pim_vs_gpu([1, 8, 64, 512], [512, 32768], gen=16, models=["llama-2-70b"])


def test_study_file_follows_the_study_schema():
    from hwdse.search.spec import parse_study

    spec, _ = parse_study(STUDY)
    assert spec.arch == "dgx-a100-attacc"
    grid = study_grid(STUDY)
    assert grid["batch"].tolist() == [2.0 ** k for k in range(10)]
    assert grid["prompt"][0] == 512 and grid["prompt"][-1] == 32768


def test_dataset_shape_and_limits(small):
    assert dict(small.sizes) == {"model": 1, "system": len(SYSTEMS), "batch": 4, "prompt": 2}
    assert set(np.unique(small.limit.values)) <= set(LIMITS)
    aim = small.sel(system="AiM", prompt=512, model="llama-2-70b")
    assert str(aim.limit.sel(batch=1).values).startswith("pim")  # standalone PIM: a PIM limit binds
    # a point is 'capacity'-limited exactly where it does not fit (512 x 32k tokens overflow 1280 GiB)
    assert ((small.limit == "capacity") == ~small.fits).all()
    assert not bool(small.fits.sel(batch=512, prompt=32768).any())
    # decode energy excludes prefill: below the batch-average energy that includes it
    assert bool((small.decode_energy_j_per_token <= small.energy_j_per_token).all())


def _record(records, system, prompt=512):
    return next(r for r in records if r["system"] == system and r["prompt"] == prompt)


def test_crossover_records_at_the_roofline():
    """Every system at its bound: GPU+HBM-PIM wins small batches and loses at 512; host-mediated AiM never
    wins 70B decode."""
    records = crossovers(pim_vs_gpu([1, 8, 64, 512], [512, 32768], gen=16, models=["llama-2-70b"], mode="roofline"))
    pim = _record(records, "GPU+HBM-PIM")
    assert pim["pim_wins"] == [1.0, 8.0, 64.0] and pim["crossovers"] == [(64.0, 512.0, "GPU")]
    aim = _record(records, "AiM")
    assert aim["pim_wins"] == [] and aim["crossovers"] == [] and aim["beyond_band"] is None


def test_crossover_records_achieved(small):
    """The default (auto: achieved; the GPUs calibrated, the PIM units derived): the GPUs' achieved small-batch
    decode is about 3x their roofline while AiM's host-bound steps barely move, so AiM wins batches 1-8, beyond
    the bands at batch 1; GPU+HBM-PIM is at least as fast at every batch, beyond the bands at batch 1 only."""
    assert small.attrs["mode"] == "achieved" and list(small.basis.values) == ["calibrated", "derived", "derived"]
    records = crossovers(small)
    pim = _record(records, "GPU+HBM-PIM")
    assert pim["pim_wins"] == [1.0, 8.0, 64.0, 512.0] and pim["beyond_band"] == [1.0]
    aim = _record(records, "AiM")
    assert aim["pim_wins"] == [1.0, 8.0] and aim["crossovers"] == [(8.0, 64.0, "GPU")]
    assert aim["beyond_band"] == [1.0, 512.0]


def test_winners_map_never_marks_an_only_fits_cell_as_a_win(small):
    """Where one system alone fits (here AiM at batch 64 x 32k: the GPUs' KV overflows) the cell is drawn
    "only serves" (hatched, unfilled), never as that system's win; a lead inside the bands is pale."""
    cells = static_verdicts(small)
    one = small.fits.sum("system") == 1
    assert bool(one.any())
    assert set(cells.verdict.where(one).values[one.values]) == {"only serves"}
    assert not bool(((cells.verdict == "wins") & one).any())
    fig = winner_figure(small)
    patches = fig.axes[0].patches  # row-major over (prompt, batch) of the one model
    flat = cells.sel(model="llama-2-70b").transpose("prompt", "batch").verdict.values.ravel()
    for patch, verdict in zip(patches, flat):
        if verdict == "only serves":
            assert patch.get_hatch() and not patch.get_fill()
        if verdict == "wins":
            assert patch.get_fill() and not patch.get_hatch() and patch.get_alpha() == 1.0


def test_winner_colours_are_distinct_and_none_fits_is_neutral(small):
    """Each system keeps one colour in both figures; "none fits" is hatched grey, not a system's hue."""
    from matplotlib.colors import to_rgb

    fig = winner_figure(small.sel(prompt=[512]).assign(fits=small.fits.sel(prompt=[512]) & (small.batch < 512)))
    legend = fig.legends[0]
    names = [t.get_text() for t in legend.get_texts()]
    assert names[:len(SYSTEMS)] == [*SYSTEMS] and names[-1] == "none fits"
    patches = dict(zip(names, legend.get_patches()))
    colours = {n: to_rgb(p.get_facecolor()) for n, p in patches.items()}
    assert len({colours[n] for n in [*SYSTEMS, "none fits"]}) == len(SYSTEMS) + 1
    r, g, b = colours["none fits"]
    assert max(r, g, b) - min(r, g, b) < 0.02 and patches["none fits"].get_hatch()  # grey and hatched
    for system in SYSTEMS:  # far from every system colour
        assert sum((x - y) ** 2 for x, y in zip(colours[system], colours["none fits"])) > 0.05
    assert any(p.get_hatch() for p in fig.axes[0].patches)  # the batch-512 cells are drawn hatched
    curves = curves_figure(small)
    lines = {line.get_label(): to_rgb(line.get_color()) for line in curves.axes[0].lines}
    assert all(lines[s] == colours[s] for s in SYSTEMS)
    titles = [ax.get_title() for ax in fig.axes] + [ax.get_ylabel() for ax in curves.axes]
    assert all("_" not in t for t in titles) and "highest decode throughput" in titles[0]
    assert curves.axes[0].get_ylabel() == "TPOT (ms)"


def test_cli_report(tmp_path):
    study = tmp_path / "tiny.toml"
    text = STUDY.read_text()
    text = re.sub(r'(\[search\."scenario\.batch"\]\nlow = 1\nhigh = )512', r"\g<1>4", text)
    text = text.replace("num = 10", "num = 3")
    text = re.sub(r'(\[search\."scenario\.prompt"\]\nlow = 512\nhigh = )32768', r"\g<1>1024", text)
    text = text.replace("num = 7", "num = 2").replace("gen = 128", "gen = 8")
    study.write_text(text)
    result = CliRunner().invoke(app, ["report", "pim-vs-gpu", "--study", str(study), "--out", str(tmp_path / "r"),
                                      "--model", "llama-2-70b"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r" / "report.md").read_text()
    assert "## Served as deployed" in text and "## Static batch, decode only (secondary)" in text
    for name in ("verdicts.png", "efficiency.png", "curves.png", "winners.png", "serving.nc", "results.nc"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    bad = CliRunner().invoke(app, ["report", "pim-vs-gpu", "--study", "no-such-study"])
    assert bad.exit_code == 2


def test_readme_section_runs_and_matches_the_validation_cases(tmp_path):
    import shlex

    import yaml

    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("## PIM versus GPU for decode", 1)[1].split("\n## ", 1)[0]
    commands = section.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert commands[0].startswith("hwdse report pim-vs-gpu")
    for line in commands:
        args = shlex.split(line)[1:]
        if "--out" in args:
            args[args.index("--out") + 1] = str(tmp_path / "report")
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (line, result.output)
    assert (tmp_path / "report" / "winners.png").is_file()
    sweep = yaml.safe_load((root / "validation" / "pim_cases.yaml").read_text())["system"]["attacc-sweep"]
    for p in sweep["points"]:
        row = next(line for line in section.splitlines() if line.startswith(f"| {p['model']} | {p['lin']} / {p['lout']} "
                                                                          f"| {p['batch']} |"))
        for metric in ("speedup", "energy"):
            assert f"{p[metric]:.2f}x / {p['measured_' + metric]:.2f}x" in row
