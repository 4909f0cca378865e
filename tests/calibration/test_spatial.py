"""Spatial decode efficiencies: fitted to measured kernels, carried in the catalog, applied in achieved mode."""

import numpy as np
import pytest
from typer.testing import CliRunner

import hwdse
from hwdse._errors import HwdseError
from hwdse.cli.main import app
from hwdse.perf import evaluate
from hwdse.calibration.spatial import fit, kernel_rows
from hwdse.workload import Scenario, load_model, operator_table

FITTED = {"cerebras-wse-2": "waferllm-wse2", "cerebras-wse-3": "waferllm-wse2", "groq-lpu": "groq-lstm"}


@pytest.fixture(scope="module")
def fits():
    return {name: fit(name) for name in kernel_rows()}


@pytest.mark.parametrize("arch", FITTED)
def test_catalog_efficiency_is_the_fit_of_the_measured_kernels(arch, fits):
    fitted = fits[FITTED[arch]].efficiency
    eff = hwdse.load_arch(arch).efficiency
    for key in ("sram_fraction", "op_cycles", "hop_cycles"):
        assert getattr(eff, key) == fitted.get(key), (arch, key)
    assert fitted["source"] in eff.source


def test_waferllm_layers_are_reproduced_within_three_percent_including_the_held_out_grid(fits):
    f = fits["waferllm-wse2"]
    assert f.held_out.sum() == 4 and (~f.held_out).sum() == 8  # the P = 540 rows are not fitted
    assert np.abs(f.errors).max() < 0.03
    # the fitted rates are physical: below the SIMD's 4 weights/cycle/core and above one hop cycle per 2 hops
    eff = f.efficiency
    wse2 = hwdse.load_arch("cerebras-wse-2")
    bytes_per_cycle = wse2.sram_bandwidth_TBps * 1e12 / wse2.pe.count / (wse2.pe.clock_GHz * 1e9)
    assert 0.5 < eff["sram_fraction"] * bytes_per_cycle / 2 < 4  # fp16 weights per core per cycle
    assert 0.5 < eff["hop_cycles"] < 2 and eff["op_cycles"] > 0


def test_groq_lstm_rate_is_a_few_terabytes_per_second_not_the_80_tb_s_headline(fits):
    f = fits["groq-lstm"]
    assert np.abs(f.errors).max() < 1e-3  # two rows, two parameters
    groq = hwdse.load_arch("groq-lpu")
    rate = f.efficiency["sram_fraction"] * groq.sram_bandwidth_TBps  # TB/s
    # marginal rate of the notebook's two LSTM sizes: 6.29 MB more in 1288 more cycles at 0.9 GHz
    assert rate == pytest.approx((8388608 - 2097152) / (1958 - 670) * 0.9e9 / 1e12, rel=0.02)


def _decode(arch_name, model_name, scen, mode):
    arch = hwdse.load_arch(arch_name)
    model = load_model(model_name)
    bound = arch.for_workload(model, scen)
    ops = operator_table(model, scen, "decode", scen.prompt)
    return bound, {t.op.name: t for t in bound.schedule(ops, mode)}


def test_achieved_decode_streams_at_the_fitted_fraction_and_pays_per_step_cycles():
    scen = Scenario(batch=1, prompt=512, gen=16, weights="bf16", activations="bf16", kv="bf16", flash_attention=True)
    wse, t = _decode("cerebras-wse-3", "llama-3-8b", scen, "achieved")
    eff, hz = wse.efficiency, wse.pe.clock_GHz * 1e9
    share = wse._shares()["q_proj"]
    q = t["q_proj"]
    assert q.memory_s == pytest.approx(q.op.bytes / (wse.sram_bandwidth_TBps * 1e12 * eff.sram_fraction * share))
    assert q.serial_s == pytest.approx({"overhead": eff.op_cycles / hz,
                                        "fabric": 2 * np.sqrt(wse.pe.count * share) * eff.hop_cycles / hz})
    assert t["flash_attention"].serial_s["overhead"] == pytest.approx(2 * eff.op_cycles / hz)  # two matrix steps
    _, roof = _decode("cerebras-wse-3", "llama-3-8b", scen, "roofline")
    assert t["attn_norm"].seconds == roof["attn_norm"].seconds  # vector operators keep the roofline
    groq, g = _decode("groq-lpu", "llama-2-7b", scen.with_(weights="int8", activations="fp16", kv="fp16"), "achieved")
    assert g["q_proj"].serial_s == pytest.approx({"overhead": 239 / 0.9e9})  # no traversal term of its own
    # streaming: every operator has the whole chip's (achieved) bandwidth
    assert g["q_proj"].bandwidth_Bps == pytest.approx(80e12 * groq.efficiency.sram_fraction)


def test_achieved_mode_changes_decode_only_and_auto_picks_it_for_calibrated_chips():
    run = dict(batch=1, prompt=1000, gen=150, weights="bf16", activations="bf16", kv="bf16", flash_attention=True)
    roof = evaluate("llama-3-8b", "cerebras-wse-3", mode="roofline", **run)
    ach = evaluate("llama-3-8b", "cerebras-wse-3", mode="achieved", **run)
    auto = evaluate("llama-3-8b", "cerebras-wse-3", mode="auto", **run)
    assert float(ach.ttft_s) == pytest.approx(float(roof.ttft_s), rel=1e-12)
    assert float(ach.tpot_s) > 2 * float(roof.tpot_s)
    assert float(auto.tpot_s) == float(ach.tpot_s)
    assert float(evaluate("llama-2-7b", "graphcore-bow", mode="auto", batch=1, prompt=128, gen=8).tpot_s) > 0


def test_achieved_mode_without_an_efficiency_block_is_a_one_line_error():
    with pytest.raises(HwdseError, match="graphcore-bow: mode: achieved mode needs calibrated, transferred or derived"):
        evaluate("llama-2-7b", "graphcore-bow", mode="achieved", batch=1, prompt=128, gen=8)


def test_calibrate_spatial_prints_every_fit_and_row():
    out = CliRunner().invoke(app, ["calibrate", "--spatial"])
    assert out.exit_code == 0, out.output
    assert "waferllm-wse2: fit max" in out.output and "(held out)" in out.output
    assert "groq-lstm" in out.output and out.output.count(" %") >= 14
