import numpy as np
import pytest
import xarray as xr

import hwdse
from hwdse._catalog import names
from hwdse.perf import fit_reason

GPUS = ["a6000", "a100-sxm-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "mi300x"]
MODELS = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b", "mixtral-8x7b",
          "opt-13b", "gpt3-175b"]


@pytest.mark.parametrize("arch", names("arch"))
@pytest.mark.parametrize("model", MODELS)
def test_every_model_on_every_arch(model, arch):
    """Every bundled model on every catalog entry of every kind gives an answer, never an error."""
    ds = hwdse.evaluate(model, arch, batch=4, prompt=512, gen=64)
    assert ds.memory_bytes.item() > ds.weights_bytes.item() > 0 and ds.capacity_bytes.item() > 0
    if not bool(ds.feasible):  # e.g. fp16 on a bf16-only PIM: infeasible with the reason, not a crash
        assert ds.attrs["infeasible_reason"]
        return
    for key in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "memory_bytes", "energy_j_per_token"):
        assert np.isfinite(ds[key].item()) and ds[key].item() > 0, key
    assert ds.e2e_s.item() == pytest.approx(ds.ttft_s.item() + 64 * ds.tpot_s.item())
    assert ds.throughput_tok_s.item() == pytest.approx(4 * 64 / ds.e2e_s.item())


def test_catalog_lists_the_issue_entries():
    assert set(names("arch")) >= set(GPUS)


def test_too_large_model_reports_reason_not_error():
    ds = hwdse.evaluate("llama-2-70b", "a6000", batch=1, prompt=1024, gen=128)
    assert not bool(ds.fits)
    reason = fit_reason(ds)
    assert "weights 138.0" in reason and "capacity 51.5 GB" in reason
    assert fit_reason(hwdse.evaluate("llama-2-7b", "a6000")) == ""


def test_decode_memory_bound_and_prefill_linear_compute_bound_on_a6000():
    ds = hwdse.evaluate("llama-2-7b", "a6000", batch=1, prompt=2048, gen=64, detail=True, mode="roofline")
    assert (ds.op_bound.sel(phase="decode") == "memory").all()
    linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (ds.op_bound.sel(phase="prefill", op=linear) == "compute").all()
    assert ds.decode_bw_util.item() == pytest.approx(1.0)


def test_sweep_over_dataarrays_equals_scalar_evaluations():
    bw = xr.DataArray([300.0, 768.0, 2000.0, 5000.0], dims="bandwidth")
    peak = xr.DataArray([20.0, 154.8, 600.0], dims="peak")
    over = {"memory.bandwidth_GBps": bw, "compute.peak_TOPS.fp16": peak}
    grid = hwdse.evaluate("llama-2-7b", "a6000", batch=16, prompt=1024, gen=128, overrides=over)
    assert set(grid.tpot_s.dims) == {"bandwidth", "peak"}
    for i, b in enumerate(bw.values):
        for j, p in enumerate(peak.values):
            point = hwdse.evaluate("llama-2-7b", "a6000", batch=16, prompt=1024, gen=128,
                                   overrides={"memory.bandwidth_GBps": b, "compute.peak_TOPS.fp16": p})
            for key in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "decode_bw_util", "prefill_compute_util"):
                assert grid[key].isel(bandwidth=i, peak=j).item() == pytest.approx(point[key].item(), rel=1e-12)


def test_scenario_lengths_sweep():
    batch = xr.DataArray([1, 4, 32], dims="batch")
    ds = hwdse.evaluate("llama-3-8b", "h100-sxm", batch=batch, prompt=1024, gen=64)
    assert ds.tpot_s.dims == ("batch",)
    assert ds.tpot_s.isel(batch=2).item() == pytest.approx(
        hwdse.evaluate("llama-3-8b", "h100-sxm", batch=32, prompt=1024, gen=64).tpot_s.item())
    assert (ds.throughput_tok_s.diff("batch") > 0).all()


def test_memory_technology_count_sets_bandwidth():
    base = hwdse.evaluate("llama-2-7b", "h100-sxm", batch=1, prompt=512, gen=64, mode="roofline")
    six = hwdse.evaluate("llama-2-7b", "h100-sxm", batch=1, prompt=512, gen=64, overrides={"memory.count": 6}, mode="roofline")
    assert base.tpot_s.item() / six.tpot_s.item() == pytest.approx(6 / 5, rel=0.01)


def test_mix_weights_scenarios():
    mix = hwdse.evaluate_mix("llama-3-8b", "h100-sxm", {"chat": 3, "rag": 1}, batch=4)
    assert list(mix.scenario.values) == ["chat", "rag"]
    expected = 0.75 * mix.ttft_s.sel(scenario="chat") + 0.25 * mix.ttft_s.sel(scenario="rag")
    assert mix.mix_ttft_s.item() == pytest.approx(expected.item())
    tokens = 0.75 * 256 + 0.25 * 256
    assert mix.mix_throughput_tok_s.item() == pytest.approx(
        4 * tokens / (0.75 * mix.e2e_s.sel(scenario="chat") + 0.25 * mix.e2e_s.sel(scenario="rag")).item())


def test_provenance_attrs():
    ds = hwdse.evaluate("llama-2-7b", "a6000", batch=2)
    assert ds.attrs["mode"] == "achieved" and ds.attrs["basis"] == "transferred" and ds.attrs["arch"] == "a6000"
    assert '"batch": 2' in ds.attrs["scenario"]
