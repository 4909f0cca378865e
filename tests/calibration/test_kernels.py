"""Calibration pipeline: data location, the held-out split, catalog writing, reproducible fits.

Needs the measured data in ``$HWDSE_VALIDATION_DIR`` (default ``<repo>/../shared/validation``);
the data-dependent tests skip with that reason when it is absent.
"""

import numpy as np
import pytest
import yaml
from scipy.optimize import least_squares
from typer.testing import CliRunner

from hwdse._errors import HwdseError
from hwdse.cli.main import app
from hwdse.hardware import load_arch
from hwdse.calibration import data
from hwdse.calibration import kernels as cal
from hwdse.calibration.kernels import calibrate, efficiency_yaml, errors, predict, with_efficiency

needs_data = pytest.mark.skipif(not (data.validation_dir() / "README.md").is_file(),
                                reason=f"validation data not found at {data.validation_dir()} (set HWDSE_VALIDATION_DIR)")


@pytest.fixture(scope="module")
def sets():
    return {s.name: s for s in data.kernel_sets()}


def test_validation_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HWDSE_VALIDATION_DIR", str(tmp_path))
    data.load_rows.cache_clear()
    try:
        assert data.validation_dir() == tmp_path
        with pytest.raises(HwdseError, match="HWDSE_VALIDATION_DIR"):
            data.load_rows("trtllm_v09_dev.csv")
    finally:
        data.load_rows.cache_clear()


@needs_data
def test_held_out_split_is_deterministic_and_one_in_five(sets):
    again = {s.name: s for s in data.kernel_sets()}
    for name, s in sets.items():
        assert np.array_equal(s.held_out, again[name].held_out)
        assert s.held_out.shape == s.measured_s.shape
        if s.measured_s.size > 500:
            assert 0.15 < s.held_out.mean() < 0.25, name
    # the split hashes the shape, not the file: the same GEMM shapes are held out for every dtype
    bf16, fp8 = sets["aic_gemm_h100_sxm_trtllm1.3.0rc20_bf16"], sets["aic_gemm_h100_sxm_trtllm1.3.0rc20_fp8"]
    assert np.array_equal(bf16.ops[0].shape["m"], fp8.ops[0].shape["m"])
    assert np.array_equal(bf16.held_out, fp8.held_out)


@needs_data
def test_kernel_sets_use_the_documented_units(sets):
    """aiconfigurator latency is in ms: the README's 8192^3 bf16 H100 GEMM is 1.4048 ms (783 TFLOP/s)."""
    s = sets["aic_gemm_h100_sxm_trtllm1.3.0rc20_bf16"]
    shape = s.ops[0].shape
    row = np.flatnonzero((shape["m"] == 8192) & (shape["n"] == 8192) & (shape["k"] == 8192))[0]
    assert 2 * 8192**3 / s.measured_s[row] / 1e12 == pytest.approx(782.7, rel=1e-3)
    assert "aic_generation_attention_a100_sxm_trtllm1.0.0" not in sets  # K-only cache layout (README caveat)


def _committed_and_refit(arch, fit):
    """Predicted seconds per row of every set fit for ``arch``: committed catalog vs ``fit``."""
    committed = load_arch(arch)
    refit = with_efficiency(committed, fit.efficiency)
    return [(s, predict(committed, s), predict(refit, s)) for s in data.kernel_sets() if s.fit and s.arch == arch
]


@needs_data
@pytest.mark.parametrize("arch", ["a100-sxm-80gb", "b200"])  # b200 also refits h100-sxm (borrowed attention)
def test_refit_reproduces_the_committed_catalog(arch):
    """What the data determine is reproduced: predictions on every fitted row, held-out error, and each
    parameter within three of its standard errors (all are determined: a free one is a defect of the model)."""
    fit = calibrate([arch])[arch]
    committed = load_arch(arch).efficiency.model_dump()
    assert fit.efficiency["gemm"].get("no_split_k", []) == list(committed["gemm"]["no_split_k"])
    for s, before, after in _committed_and_refit(arch, fit):
        change = np.abs(after / before - 1)
        assert np.percentile(change, 99) < 0.01 and change.max() < 0.03, s.name
        held = s.held_out
        assert np.median(errors(after, s.measured_s)[held]) == pytest.approx(
            np.median(errors(before, s.measured_s)[held]), abs=0.002), s.name
    values = dict(_leaves(committed))
    for e in fit.estimates:
        assert e.determined, f"{e.path} = {e.value:.4g} +- {e.sd:.2g} (at bound: {e.at_bound})"
        assert abs(e.value - values[e.path]) <= max(3 * e.sd, 1e-3 * abs(e.value)), e.path


def test_a_gpu_never_built_takes_its_siblings_whole_block():
    """The HBM3 A100 of AttAcc (``DERIVED``) carries a100-sxm-80gb's fitted efficiencies, said so in its source."""
    for name, donor in cal.DERIVED.items():
        mine, theirs = load_arch(name).efficiency.model_dump(), load_arch(donor).efficiency.model_dump()
        assert mine.pop("source").startswith(f"{donor}'s fit") and mine == {k: v for k, v in theirs.items() if k != "source"}


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        elif isinstance(v, float):
            yield f"{prefix}{k}", v


@needs_data
def test_fit_does_not_depend_on_where_it_starts(monkeypatch):
    """Start points moved by 0.1 % (what another BLAS or CPU does to the first steps, many times over) give
    the same predictions: the optimum is unique, not a point where one run happened to stop."""
    first = calibrate(["a100-sxm-80gb"])["a100-sxm-80gb"]
    monkeypatch.setattr(cal, "STARTS", tuple(f * 1.001 for f in cal.STARTS))
    moved = calibrate(["a100-sxm-80gb"])["a100-sxm-80gb"]
    for s, a, b in _committed_and_refit("a100-sxm-80gb", first):
        assert np.allclose(predict(with_efficiency(load_arch("a100-sxm-80gb"), moved.efficiency), s), b, rtol=2e-3)


def test_a_parameter_the_data_ignore_is_reported_free():
    """The standard errors come from the Jacobian; a parameter no residual depends on is ``inf``, not 0."""
    x = np.linspace(0, 1, 50)
    y = 2.0 * x + 0.5 + 0.01 * np.sin(40 * x)
    result = least_squares(lambda p: p[0] * x + p[1] - y + 0 * p[2], [1.0, 0.0, 3.0], loss="soft_l1",
                           f_scale=cal.F_SCALE)
    sd = cal._standard_errors(result)
    assert np.all(np.isfinite(sd[:2])) and sd[0] < 0.01 and sd[2] == np.inf


def test_efficiency_yaml_replaces_only_its_block():
    text = ("kind: gpu\nname: x\ntdp_W: 1\nefficiency:\n  source: old\n  vector: {bandwidth_fraction: 0.1}\n"
            "sources:\n  tdp_W: \"datasheet\"\n  efficiency: \"old\"\n")
    new = {"source": "new", "vector": {"bandwidth_fraction": 0.5, "overhead_us": 2.0}}
    once = efficiency_yaml(text, new)
    assert efficiency_yaml(once, new) == once
    parsed = yaml.safe_load(once)
    assert parsed["efficiency"] == new and parsed["tdp_W"] == 1
    assert parsed["sources"]["tdp_W"] == "datasheet" and "hwdse calibrate" in parsed["sources"]["efficiency"]
    assert once.startswith("kind: gpu\nname: x\ntdp_W: 1\n")


def test_cli_errors_are_one_line():
    runner = CliRunner()
    result = runner.invoke(app, ["calibrate", "--arch", "a6000"])
    assert result.exit_code == 2 and "no calibration data for 'a6000'" in result.output
    result = runner.invoke(app, ["evaluate", "--arch", "decode-accel", "--mode", "achieved"])
    assert result.exit_code == 2 and "achieved mode needs calibrated, transferred or derived" in result.output


@needs_data
def test_cli_prints_each_parameter_with_its_standard_error():
    result = CliRunner().invoke(app, ["calibrate", "--arch", "a100-sxm-80gb"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("  gemm.compute_fraction.bf16 = ")]
    assert len(lines) == 1 and "+-" in lines[0] and "not determined" not in result.output
