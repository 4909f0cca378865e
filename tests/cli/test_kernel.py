"""``hwdse kernel``: one operator's predicted time on any arch, with its basis."""

import json

import pytest
from typer.testing import CliRunner

from hwdse.cli import app
from hwdse.hardware import load_arch
from hwdse.workload.kernels import gemm_op

runner = CliRunner()


def _kernel(*args: str) -> dict:
    result = runner.invoke(app, ["kernel", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_gemm_time_is_the_archs_own_timing_and_names_its_basis() -> None:
    out = _kernel("--arch", "h100-sxm", "--op", "gemm", "--m", "4096", "--n", "4096", "--k", "4096",
                  "--dtype", "fp8-e4m3")
    expected = load_arch("h100-sxm").schedule([gemm_op(4096, 4096, 4096, "fp8-e4m3")], "achieved")[0].seconds
    assert out["basis"] == "calibrated" and out["mode"] == "achieved"
    assert out["time_s"] == pytest.approx(float(expected))
    roof = _kernel("--arch", "h100-sxm", "--op", "gemm", "--m", "4096", "--n", "4096", "--k", "4096",
                   "--dtype", "fp8-e4m3", "--mode", "roofline")
    # 2 x 4096^3 FP8 ops at the H100's dense 1,978.9 TOPS: the roofline is a lower bound on the time
    assert roof["basis"] == "roofline" and roof["time_s"] == pytest.approx(2 * 4096 ** 3 / 1978.9e12, rel=1e-3)
    assert roof["time_s"] < out["time_s"]


def test_a_gpu_without_data_takes_the_transferred_efficiencies() -> None:
    out = _kernel("--arch", "mi300x", "--op", "gemm", "--m", "4096", "--n", "4096", "--k", "4096", "--dtype", "fp8-e4m3")
    roof = _kernel("--arch", "mi300x", "--op", "gemm", "--m", "4096", "--n", "4096", "--k", "4096", "--dtype",
                   "fp8-e4m3", "--mode", "roofline")
    assert out["basis"] == "transferred" and out["mode"] == "achieved" and out["time_s"] > roof["time_s"]
    pim = _kernel("--arch", "hbm3-pim", "--op", "gemm", "--m", "1", "--n", "8192", "--k", "8192", "--dtype", "fp16")
    assert pim["basis"] == "roofline" and pim["mode"] == "roofline"


def test_attention_decode_is_memory_bound_on_a_long_cache() -> None:
    out = _kernel("--arch", "h100-sxm", "--op", "decode-attention", "--batch", "64", "--heads", "64", "--kv-heads", "8",
                  "--seq", "4096")
    assert out["bound"] == "memory" and out["basis"] == "calibrated"


@pytest.mark.parametrize("args, message", [(["--op", "conv"], "--op: must be one of"),
                                           (["--op", "gemm", "--m", "0", "--n", "1", "--k", "1"], "--m: must be >= 1"),
                                           (["--op", "vector", "--name", "foo", "--elements", "4"], "--name: unknown"),
                                           (["--arch", "hbm3-pim", "--mode", "achieved", "--m", "1", "--n", "1", "--k",
                                             "1"], "achieved mode needs calibrated or transferred efficiencies")])
def test_bad_options_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["kernel", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
