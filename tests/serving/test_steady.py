"""Serving steady state: checked against a step-level simulation, capacity limits, SLOs, sweeps, CLI."""

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from hwdse.cli.main import app
from hwdse.serving import StepModel, load_engine, serve
from hwdse.perf.evaluate import resolve
from hwdse.perf.power_cap import clocked

from ._des import simulate



@pytest.mark.parametrize("engine, concurrency, isl, osl, light", [
    ("vllm", 8, 512, 200, True), ("vllm", 32, 256, 400, True), ("trtllm", 16, 2048, 400, True),
    ("trtllm", 48, 2048, 400, True),     # whole-prompt prefill steps, the prompts' server busy ~1/3
    ("vllm", 96, 1024, 300, False),      # busy ~1/2
    ("vllm", 16, 12000, 300, False)])    # every prompt takes two chunks of the 8192-token budget; busy ~3/4
def test_closed_form_matches_a_step_level_simulation(engine, concurrency, isl, osl, light):
    """Throughput and TPOT within 5 % of a discrete-event simulation of the same engine (same step
    times); TTFT within 15 % while prompts rarely queue. The simulation's closed loop is deterministic
    (it settles into a schedule with little queueing); the closed form's M/D/1 queue assumes random
    arrivals, as measured runs show (validation), and waits longer under load."""
    eng = load_engine(engine)
    model, arch, scen = resolve("llama-3-8b", "h100-sxm", None, None, batch=1, prompt=isl, gen=osl,
                                weights="bf16", activations="bf16", kv="bf16", flash_attention=True)
    steps = StepModel(model, arch, scen, "achieved", eng)
    kv_len = isl + osl / 2
    attention = steps.prefill_attention(isl)
    sim = simulate(lambda g, p: float(steps.step_s(float(g), float(p), isl, kv_len, attention)), concurrency, isl,
                   osl, eng.token_budget if eng.chunked_prefill else None)
    ds = serve("llama-3-8b", "h100-sxm", concurrency=concurrency, isl=isl, osl=osl, engine=eng, mode="achieved")
    assert float(ds.throughput_tok_s) == pytest.approx(sim["throughput_tok_s"], rel=0.05)
    assert float(ds.tpot_s) == pytest.approx(sim["tpot_s"], rel=0.05)
    if light:
        assert float(ds.ttft_s) == pytest.approx(sim["ttft_s"], rel=0.15)
    else:
        assert sim["ttft_s"] < float(ds.ttft_s) < 2 * sim["ttft_s"]


def test_kv_capacity_caps_requests_in_flight():
    """Llama-3-70B in FP8 on one H100: ~70 GB of weights leave room for few 32k-token requests; beyond
    them requests queue (TTFT grows with the excess, as Little's law says), decode does not."""
    c = xr.DataArray([4.0, 64.0, 256.0], dims="concurrency")
    ds = serve("llama-3-70b", "h100-sxm", concurrency=c, isl=30000, osl=2000, weights="fp8-e4m3", engine="vllm")
    cap = float(ds.max_requests)
    assert 1 <= cap < 64
    assert np.all(ds.requests_decoding <= ds.max_requests + 1e-9)
    assert float(ds.requests_decoding[2]) == pytest.approx(cap, rel=1e-3)
    assert float(ds.tpot_s[2]) == pytest.approx(float(ds.tpot_s[1]), rel=1e-3)
    cycle = 256 / float(ds.request_rate[2])
    assert float(ds.ttft_s[2]) == pytest.approx(cycle - 1999 * float(ds.tpot_s[2]), rel=1e-6)


def test_goodput_is_monotone_in_the_slo():
    slo = xr.DataArray(np.linspace(0.002, 0.05, 25), dims="tpot_slo")
    ds = serve("llama-3-8b", "h100-sxm", concurrency=xr.DataArray([4.0, 16.0, 128.0], dims="c"),
               isl=1024, osl=512, tpot_slo_s=slo, ttft_slo_s=5.0)
    good = ds.goodput_tok_s.transpose("c", "tpot_slo").values
    assert np.all(np.diff(good, axis=1) >= 0) and good[:, 0].max() == 0 and good[:, -1].min() > 0


def test_a_sweep_is_the_points_evaluated_one_by_one():
    c = xr.DataArray([2.0, 48.0], dims="c")
    rate = xr.DataArray([0.5, 4.0], dims="rate")
    grid = serve("llama-3-8b", "h200", concurrency=c, isl=2048, osl=256, engine="sglang")
    assert grid.tpot_s.dims == ("c",)
    for i, ci in enumerate(c.values):
        one = serve("llama-3-8b", "h200", concurrency=float(ci), isl=2048, osl=256, engine="sglang")
        assert float(grid.tpot_s[i]) == pytest.approx(float(one.tpot_s), rel=1e-9)
    open_loop = serve("llama-3-8b", "h200", arrival_rate=rate, isl=2048, osl=256)
    assert open_loop.ttft_s.dims == ("rate",) and float(open_loop.ttft_s[1]) > float(open_loop.ttft_s[0])


def test_open_loop_past_capacity_is_unstable_not_a_number():
    ds = serve("llama-3-8b", "h100-sxm", arrival_rate=xr.DataArray([1.0, 1e4], dims="rate"), isl=1024, osl=128)
    assert bool(ds.stable[0]) and not bool(ds.stable[1]) and np.isinf(float(ds.ttft_s[1]))
    assert float(ds.goodput_tok_s[1]) == 0


def test_more_load_costs_latency_and_buys_throughput():
    ds = serve("llama-3-8b", "h100-sxm", concurrency=xr.DataArray([1.0, 8.0, 64.0], dims="c"), isl=1024, osl=1024)
    assert np.all(np.diff(ds.tpot_s) > 0) and np.all(np.diff(ds.throughput_tok_s) > 0)


def test_serve_cli_json_and_open_loop():
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--arch", "h100-sxm", "--model", "llama-3-8b", "--concurrency", "64",
                                 "--isl", "1024", "--osl", "1024", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"ttft_s", "tpot_s", "tok_s_per_device", "goodput_tok_s_per_device"} <= set(out)
    assert 0.005 < out["tpot_s"] < 0.05 and out["stable"]
    result = runner.invoke(app, ["serve", "--arrival-rate", "2", "--tpot-slo-ms", "1"])
    assert result.exit_code == 0 and "goodput 0 tok/s/device" in result.output


def test_serve_cli_says_why_a_system_that_cannot_hold_a_request_serves_nothing():
    """Llama-2-70B in FP16 (138 GB) on one 80 GB H100: an answer with the reason, no numpy warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = serve("llama-2-70b", "h100-sxm", concurrency=8.0, isl=1024, osl=256)
    assert float(ds.max_requests) == 0 and not bool(ds.stable) and float(ds.throughput_tok_s) == 0
    result = CliRunner().invoke(app, ["serve", "--arch", "h100-sxm", "--model", "llama-2-70b", "--concurrency", "8"])
    assert result.exit_code == 0, result.output
    assert "does not fit: no request's KV cache fits next to the weights" in result.output


def test_serving_power_is_static_plus_the_mean_steps_energy_over_tpot():
    """Dynamic power x TPOT is the mean step's operator energy (decode steps and chunk steps in their
    shares, rebuilt from the step model); static is every GPU's running power; J/token = W / tok/s."""
    isl, osl = 1024, 256
    c = xr.DataArray([4.0, 64.0], dims="c")
    ds = serve("llama-3-8b", "dgx-h100", concurrency=c, isl=isl, osl=osl, engine="vllm", mode="achieved")
    model, arch, scen = resolve("llama-3-8b", "dgx-h100", None, None, batch=1, prompt=isl, gen=osl, weights="bf16",
                                activations="bf16", kv="bf16", flash_attention=True)
    steps = StepModel(model, arch, scen, "achieved", load_engine("vllm"))
    alone, mix = steps.pair(ds.requests_decoding.values, ds.prefill_chunk_tokens.values, isl, isl + osl / 2)
    share = ds.prefill_step_share.values
    _, [(_, e_dec), (_, e_mix)] = clocked(arch, alone.scaled(1 - share) + mix.scaled(share), alone, mix)
    np.testing.assert_allclose(ds.dynamic_power_w * ds.tpot_s, e_dec + share * (e_mix - e_dec), rtol=5e-3)
    gpu = arch.device.power
    assert np.allclose(ds.static_power_w, 8 * (gpu.idle_W + gpu.busy_W))
    np.testing.assert_allclose(ds.energy_j_per_token, ds.avg_power_w / ds.throughput_tok_s, rtol=1e-12)
    assert np.all(ds.avg_power_w / 8 < arch.device.tdp_W) and float(ds.energy_j_per_token[1]) < float(
        ds.energy_j_per_token[0])  # batching amortises the static floor
