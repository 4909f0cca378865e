"""Disaggregated serving: reduction to aggregated serving, the link, the pool ratio, any decode kind."""

import numpy as np
import pytest
import xarray as xr

from hwdse.perf.evaluate import resolve
from hwdse.perf.power_cap import capped
from hwdse.serving import StepModel, load_engine, serve, serve_disaggregated

KW = dict(isl=1024, osl=512, engine="vllm")


def _steps(arch="h100-sxm", model="llama-3-8b"):
    m, a, s = resolve(model, arch, None, None, batch=1, prompt=1024, gen=512, weights="bf16", activations="bf16",
                      kv="bf16", flash_attention=True)
    return StepModel(m, a, s, "achieved", load_engine("vllm"))


def test_infinite_link_and_identical_pools_is_aggregated_serving_without_interference():
    c = xr.DataArray([4.0, 32.0, 128.0], dims="c")
    dis = serve_disaggregated("llama-3-8b", "h100-sxm", "h100-sxm", concurrency=c, link_bandwidth_GBps=1e15,
                              link_latency_us=0.0, **KW)
    agg = serve("llama-3-8b", "h100-sxm", concurrency=c, **KW)
    steps = _steps()
    g = dis.requests_decoding
    assert np.allclose(dis.tpot_s, steps.step_s(g, 0.0, 1024, 1024 + 256), rtol=1e-9)  # decode-only steps
    assert np.all(dis.tpot_s < agg.tpot_s)  # aggregated steps also carry prefill chunks
    assert float(dis.kv_transfer_s.max()) < 1e-6
    prefill = float(capped(steps.arch, steps.pair(0.0, 1024.0, 1024.0, 1024.0, decode_only=False)[1])[0])
    assert float(dis.ttft_s[0]) == pytest.approx(prefill, rel=0.05)  # little queueing at 4 in flight


def test_kv_transfer_is_latency_plus_bytes_over_bandwidth():
    ds = serve_disaggregated("llama-3-8b", "h100-sxm", "h100-sxm", concurrency=8, link_bandwidth_GBps=25.0,
                             link_latency_us=20.0, **KW)
    kv_per_token = 32 * 2 * 1024 * 2  # layers x (K, V) x kv_dim x bf16
    assert float(ds.kv_transfer_bytes) == pytest.approx(1024 * kv_per_token, rel=1e-9)
    assert float(ds.kv_transfer_s) == pytest.approx(20e-6 + 1024 * kv_per_token / 25e9, rel=1e-9)


def test_pool_ratio_is_a_searchable_field_with_an_interior_optimum():
    """Too few prefill instances queue the prompts (TTFT explodes); too many waste devices."""
    ratio = xr.DataArray([1.0, 2.0, 3.0, 4.0, 8.0], dims="prefill_instances")
    ds = serve_disaggregated("llama-3-8b", "h100-sxm", "h100-sxm", arrival_rate=10.0, isl=8192, osl=256,
                             prefill_instances=ratio, decode_instances=2, ttft_slo_s=1.0, tpot_slo_s=0.05)
    good = ds.goodput_tok_s_per_device.values
    assert good[0] == 0 and not bool(ds.stable[0])  # one prefill instance cannot keep up
    assert 0 < np.argmax(good) < len(good) - 1
    assert np.all(np.diff(ds.ttft_s.values[2:]) < 0)


def test_a_pim_decode_pool_runs_next_to_a_gpu_prefill_pool():
    ds = serve_disaggregated("llama-2-70b", "dgx-h100", "dgx-a100-attacc", concurrency=32, isl=2048, osl=256,
                             weights="fp16")
    assert bool(ds.stable) and float(ds.tpot_s) > 0 and ds.attrs["decode_arch"] == "dgx-a100-attacc"
    # one mode for both pools: the H100s calibrated, the AttAcc pool derived (its PIM units on DRAM timing)
    assert ds.attrs["mode"] == "achieved" and ds.attrs["basis"] == "calibrated/derived"


def test_serve_cli_disaggregated_with_a_pim_decode_pool():
    import json

    from typer.testing import CliRunner

    from hwdse.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--arch", "dgx-h100", "--decode-arch", "dgx-a100-attacc", "--model",
                                      "llama-2-70b", "--weights", "fp16", "--concurrency", "32", "--isl", "2048",
                                      "--osl", "256", "--prefill-instances", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["arch"] == "dgx-h100 -> dgx-a100-attacc" and out["stable"] and out["kv_transfer_s"] > 0


def test_disaggregated_power_is_both_pools_static_plus_prompt_and_decode_energy():
    steps = _steps()
    ds = serve_disaggregated("llama-3-8b", "h100-sxm", "h100-sxm", concurrency=32.0, prefill_instances=2,
                             decode_instances=3, **KW)
    running = steps.arch.power.idle_W + steps.arch.power.busy_W
    assert float(ds.static_power_w) == pytest.approx(5 * running)
    _, prompt_j, _ = capped(steps.arch, steps.pair(0.0, 1024.0, 1024.0, 1024.0, decode_only=False)[1])
    _, step_j, _ = capped(steps.arch, steps.pair(float(ds.requests_decoding) / 3, 0.0, 1024.0, 1024 + 256,
                                                 decode_only=False)[1])
    want = float(ds.request_rate) * prompt_j + 3 * step_j / float(ds.tpot_s)
    assert float(ds.dynamic_power_w) == pytest.approx(want, rel=5e-3)


def test_speculation_runs_in_the_decode_pool():
    """The decode pool's steps verify k + 1 tokens per sequence and run the draft; TPOT is that step over
    the expected tokens kept (the prefill pool is unchanged)."""
    from hwdse.serving.speculative import Speculative, tokens_per_step

    spec = Speculative(draft_tokens=3, acceptance=0.7)
    c = xr.DataArray([4.0, 64.0], dims="c")
    plain = serve_disaggregated("llama-3-8b", "h100-sxm", "h100-sxm", concurrency=c, **KW)
    fast = serve_disaggregated("llama-3-8b", "h100-sxm", "h100-sxm", concurrency=c, speculative=spec, **KW)
    m, a, s = resolve("llama-3-8b", "h100-sxm", None, None, batch=1, prompt=1024, gen=512, weights="bf16",
                      activations="bf16", kv="bf16", flash_attention=True)
    steps = StepModel(m, a, s, "achieved", load_engine("vllm"), spec)
    g = fast.requests_decoding
    assert np.allclose(fast.tpot_s, steps.step_s(g, 0.0, 1024, 1024 + 256) / tokens_per_step(spec), rtol=1e-9)
    assert np.all(fast.tpot_s < plain.tpot_s) and "draft_tokens" in fast.attrs["speculative"]
    assert float(fast.kv_transfer_s) == pytest.approx(float(plain.kv_transfer_s))
