"""Format selection across the operating regime: the recommendation per batch and its reason."""

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from hwdse._errors import HwdseError
from hwdse.cli.main import app
from hwdse.perf.format_regimes import format_regimes
from hwdse.perf.format_selection import floor_qsnr_db, recommend

W4A16 = ("int4-g128-asym", "bf16", "bf16")
FP8 = ("fp8-e4m3", "fp8-e4m3", "bf16")
BF16 = ("bf16", "bf16", "bf16")


@pytest.fixture(scope="module")
def sweep():
    return format_regimes("llama-3-8b", "h100-sxm", [W4A16, FP8, BF16], [1, 512], min_qsnr_db=15.0)


def test_w4a16_leads_at_batch_1_and_fp8_at_high_concurrency_with_the_reason(sweep):
    """On a calibrated H100 (achieved), asymmetric INT4-g128 weight-only reads 4.2-bit weights where decode is
    memory-bound; at 512 sequences the GEMMs are compute-bound and FP8 W8A8 runs the FP8 tensor cores."""
    assert sweep.attrs["mode"] == "achieved"
    assert floor_qsnr_db("int4-g128-asym", "weights") >= 15.0  # the floor admits it
    assert sweep.attrs["recommendation_1"] == "/".join(W4A16)
    assert sweep.attrs["recommendation_512"] == "/".join(FP8)
    t = sweep.tpot_s
    assert float(t.sel(batch=1, candidate="/".join(W4A16))) < float(t.sel(batch=1, candidate="/".join(FP8)))
    assert float(t.sel(batch=512, candidate="/".join(FP8))) < float(t.sel(batch=512, candidate="/".join(W4A16)))
    text = sweep.attrs["regimes"]
    assert "int4-g128-asym/bf16/bf16 at batch 1 (decode GEMMs bf16, memory-bound)" in text
    assert "fp8-e4m3/fp8-e4m3/bf16 at batch 512 (decode GEMMs fp8, compute-bound)" in text


def test_speed_varies_with_batch_and_quality_does_not(sweep):
    assert sweep.tpot_s.dims == ("batch", "candidate") and sweep.recommended.dims == ("batch", "candidate")
    assert "batch" not in sweep.quality_db.dims and "batch" not in sweep.ppl_increase.dims
    assert (sweep.recommended.sum("candidate") == 1).all()


def test_bad_batches_are_one_line_errors():
    with pytest.raises(HwdseError, match="batches"):
        format_regimes("llama-3-8b", "h100-sxm", [BF16], [])
    with pytest.raises(HwdseError, match="batches=\\[...\\]"):
        format_regimes("llama-3-8b", "h100-sxm", [BF16], [1], batch=4)


def test_a_tpot_tie_goes_to_the_higher_quality():
    """Two candidates within 1 % of TPOT: the higher QSNR is recommended, and the margin says it was a tie."""
    ds = xr.Dataset({"quality_weights_db": ("candidate", [16.0, 18.4, 30.0]),
                     "quality_activations_db": ("candidate", [60.0, 60.0, 60.0]),
                     "tpot_s": ("candidate", [0.00299, 0.00300, 0.00400]), "fits": ("candidate", [True] * 3),
                     "memory_bytes": ("candidate", [1.0, 1.1, 2.0]), "mac_area_um2": ("candidate", [1.0, 1.0, 1.0])},
                    coords={"candidate": ["int4/bf16/bf16", "int4-g128-asym/bf16/bf16", "fp8/fp8/bf16"]})
    out = recommend(ds, 15.0)
    assert out.attrs["recommendation"] == "int4-g128-asym/bf16/bf16"
    assert out.attrs["margin"].startswith("level with int4/bf16/bf16")
    slower = recommend(ds.assign(tpot_s=("candidate", [0.0029, 0.0030, 0.0040])), 15.0)  # 3.4 % apart: no tie
    assert slower.attrs["recommendation"] == "int4/bf16/bf16"
    assert np.array_equal(slower.recommended.values, [True, False, False])


def test_cli_report_states_the_regimes(tmp_path):
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["formats", "report", "--model", "llama-3-8b", "--arch", "h100-sxm",
                                      "--weights", "int4-g128-asym,fp8-e4m3", "--activations", "bf16,fp8-e4m3",
                                      "--kv", "bf16", "--batch", "1", "--batch", "512", "--min-qsnr", "15",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "int4-g128-asym/bf16/bf16 at batch 1" in result.output
    md = (out / "report.md").read_text()
    assert "## Across the operating regime" in md and "| 512 | fp8-e4m3/fp8-e4m3/bf16 |" in md
    assert (out / "tpot_by_batch.png").stat().st_size > 0
