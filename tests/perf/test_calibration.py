"""Calibration pipeline: data location, the held-out split, catalog writing, reproducible fits.

Needs the measured data in ``$HWDSE_VALIDATION_DIR`` (default ``<repo>/../shared/validation``);
the data-dependent tests skip with that reason when it is absent.
"""

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from hwdse._errors import HwdseError
from hwdse.cli import app
from hwdse.hardware import load_arch
from hwdse.perf import calibration_data as data
from hwdse.perf.calibrate import calibrate, efficiency_yaml

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


@needs_data
@pytest.mark.parametrize("arch", ["a100-sxm-80gb", "b200"])  # b200 also refits h100-sxm (borrowed attention)
def test_refit_reproduces_the_committed_catalog(arch):
    fitted = calibrate([arch])[arch]
    committed = load_arch(arch).efficiency.model_dump()
    assert fitted["gemm"].get("no_split_k", []) == list(committed["gemm"]["no_split_k"])

    def leaves(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from leaves(v, f"{prefix}{k}.")
            elif isinstance(v, float):
                yield f"{prefix}{k}", v

    refit = dict(leaves(fitted))
    for path, value in leaves(committed):
        assert refit[path] == pytest.approx(value, rel=0.02), path


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
    result = runner.invoke(app, ["evaluate", "--arch", "a6000", "--mode", "achieved"])
    assert result.exit_code == 2 and "efficiency" in result.output
