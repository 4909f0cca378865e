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


def test_a_pim_unit_runs_at_its_dram_timing_derived_efficiency() -> None:
    """hbm3-pim: basis derived; the achieved time is the roofline's over the bank efficiency, and the band
    reaches down to that optimistic bound."""
    gemv = ("--arch", "hbm3-pim", "--op", "gemm", "--m", "1", "--n", "8192", "--k", "8192", "--dtype", "fp16")
    pim, roof = _kernel(*gemv), _kernel(*gemv, "--mode", "roofline")
    assert pim["basis"] == "derived" and pim["mode"] == "achieved" and roof["basis"] == "roofline"
    efficiency = float(load_arch("hbm3-pim").bank_efficiency)
    assert pim["memory_s"] == pytest.approx(roof["memory_s"] / efficiency)
    assert pim["band_s"][0] == pytest.approx(roof["time_s"]) and "optimistic bound" in pim["band"]
    text = runner.invoke(app, ["kernel", *gemv]).output
    assert "basis derived" in text


def test_attention_decode_is_memory_bound_on_a_long_cache() -> None:
    out = _kernel("--arch", "h100-sxm", "--op", "decode-attention", "--batch", "64", "--heads", "64", "--kv-heads", "8",
                  "--seq", "4096")
    assert out["bound"] == "memory" and out["basis"] == "calibrated"


@pytest.mark.parametrize("args, message", [(["--op", "conv"], "--op: must be one of"),
                                           (["--op", "gemm", "--m", "0", "--n", "1", "--k", "1"], "--m: must be >= 1"),
                                           (["--op", "vector", "--name", "foo", "--elements", "4"], "--name: unknown"),
                                           (["--arch", "decode-accel", "--mode", "achieved", "--m", "1", "--n", "1",
                                             "--k", "1"], "achieved mode needs calibrated, transferred or derived")])
def test_bad_options_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["kernel", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_the_band_is_the_held_out_error_of_the_basis_used() -> None:
    """Calibrated: the GPU's own held-out error of the kernel family; a family it has no data for (H200
    attention) and a GPU without data: the transferred parameters' leave-device-out error; roofline: a
    lower bound on the measured time."""
    from hwdse.hardware.gpu.transfer import load_transfer

    gemm = ("--op", "gemm", "--m", "256", "--n", "8192", "--k", "8192")
    own = _kernel("--arch", "h100-sxm", *gemm)
    assert (own["band_median_rel"], own["band_p90_rel"]) == tuple(load_arch("h100-sxm").efficiency.held_out["gemm"])
    low, high = own["band_s"]
    assert low == pytest.approx(own["time_s"] / (1 + own["band_p90_rel"])) and low < own["time_s"] < high
    attention = ("--op", "decode-attention", "--batch", "8", "--heads", "64", "--kv-heads", "8", "--seq", "2048")
    borrowed = _kernel("--arch", "h200", *attention)
    transferred = _kernel("--arch", "mi300x", *gemm)
    shared = load_transfer().held_out
    assert (borrowed["band_median_rel"], borrowed["band_p90_rel"]) == tuple(shared["decode_attention"])
    assert (transferred["band_median_rel"], transferred["band_p90_rel"]) == tuple(shared["gemm"])
    bound = _kernel("--arch", "hbm3-pim", *gemm, "--dtype", "fp16", "--mode", "roofline")
    assert bound["band_s"] == [bound["time_s"], None]


def test_an_all_reduce_is_the_gpus_nccl_model_over_its_scale_up_link() -> None:
    from hwdse.hardware.gpu.efficiency import gpu_collective_s

    out = _kernel("--arch", "h100-sxm", "--op", "all-reduce", "--bytes", str(16 * 2**20), "--devices", "8")
    h100 = load_arch("h100-sxm")
    assert out["time_s"] == pytest.approx(float(gpu_collective_s(h100, "all_reduce", 16 * 2**20, 8)))
    assert out["basis"] == "calibrated" and out["band_p90_rel"] == h100.efficiency.held_out["all_reduce"][1]
    roof = _kernel("--arch", "h100-sxm", "--op", "all-reduce", "--bytes", str(16 * 2**20), "--devices", "8",
                   "--mode", "roofline")
    assert roof["time_s"] < out["time_s"]  # the alpha-beta ring at the link's full rate is the bound
    result = runner.invoke(app, ["kernel", "--arch", "gddr6-aim", "--op", "all-reduce", "--bytes", "64",
                                 "--devices", "2"])
    assert result.exit_code == 2 and "needs a gpu or multi-gpu arch" in result.output
