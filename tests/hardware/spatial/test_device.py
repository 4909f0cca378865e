"""Spatial dataflow systems: chips sized by the model, region timing, hops, validation against vendor data."""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from typer.testing import CliRunner

import hwdse
import hwdse.hardware.memory
from hwdse._catalog import locate
from hwdse.cli.main import app
from hwdse.perf import evaluate, fit_reason
from hwdse.perf.roofline import op_time
from hwdse.workload import Scenario, load_model, operator_table

ROOT = Path(__file__).resolve().parents[3]
SPATIAL = ["groq-lpu", "graphcore-gc200", "graphcore-bow", "cerebras-wse-2", "cerebras-wse-3"]
CASES = yaml.safe_load((ROOT / "validation" / "spatial_cases.yaml").read_text())["cases"]


@pytest.mark.parametrize("name", SPATIAL)
def test_catalog_entries_report_chips_latency_and_rate(name):
    out = CliRunner().invoke(app, ["evaluate", "--arch", name, "--model", "llama-2-70b", "--batch", "1",
                                   "--prompt", "1024", "--gen", "256", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["chips"] >= 1 and d["ttft_s"] > 0 and d["tpot_s"] > 0
    assert d["tok_s_per_user"] == pytest.approx(1 / d["tpot_s"])
    arch = hwdse.load_arch(name)
    assert d["area_mm2"] == pytest.approx(arch.die_area_mm2 * d["chips"])
    # weights + KV fit in the usable share of each chip's SRAM
    assert d["weights_bytes"] + d["kv_cache_bytes"] <= arch.usable_sram_fraction * d["capacity_bytes"] * (1 + 1e-12)


def test_a_model_too_large_for_one_chip_uses_more_chips():
    small = evaluate("llama-2-7b", "groq-lpu", batch=1, prompt=512, gen=64, weights="int8")
    big = evaluate("llama-2-70b", "groq-lpu", batch=1, prompt=512, gen=64, weights="int8")
    wider = evaluate("llama-2-70b", "groq-lpu", batch=1, prompt=512, gen=64, weights="fp16")
    assert 1 < int(small.chips) < int(big.chips) < int(wider.chips)
    wse = evaluate("llama-2-7b", "cerebras-wse-3", batch=1, prompt=512, gen=64)
    assert int(wse.chips) == 1  # 13.5 GB fits on one wafer
    arch = hwdse.load_arch("groq-lpu")
    model, scen = load_model("llama-2-70b"), Scenario(batch=1, prompt=512, gen=64, weights="int8")
    resident = model.num_params + 1 * 576 * model.num_layers * 2 * model.kv_dim * 2
    per_node = arch.tp * arch.usable_sram_fraction * arch.sram_MiB * 2**20
    assert int(big.chips) == np.ceil(resident / per_node) * arch.tp
    assert arch.for_workload(model, scen).chips == int(big.chips)


def test_more_chips_give_each_operator_more_bandwidth_on_a_stationary_chip_only():
    run = dict(batch=1, prompt=512, gen=64, flash_attention=True, detail=True)
    # stationary: half the layers per wafer -> each layer's region (its cores' SRAM and PEs) doubles
    wafers = evaluate("llama-2-70b", "cerebras-wse-3", overrides={"chips": xr.DataArray([4, 8], dims="chips")}, **run, mode="roofline")
    q = wafers.op_memory_s.sel(phase="decode", op="q_proj")
    assert float(q[1]) == pytest.approx(float(q[0]) / 2, rel=1e-9)
    # ... and its broadcast/reduction side grows by sqrt(2): at one cycle per hop the wider region is slower
    d = wafers.sel(phase="decode", op="q_proj")
    fill = (8 + 1) / 0.85e9  # the 8 x 1 SIMD array of a WSE-3 core
    fabric = d.op_time_s - np.maximum(d.op_compute_s, d.op_memory_s) - fill
    assert float(fabric[1]) == pytest.approx(float(fabric[0]) * np.sqrt(2), rel=1e-9)
    # streaming: every operator already streams from the whole chip
    groq = evaluate("llama-2-70b", "groq-lpu", overrides={"chips": xr.DataArray([576, 1152], dims="chips")},
                    weights="int8", **run, mode="roofline")
    q = groq.op_memory_s.sel(phase="decode", op="q_proj")
    assert float(q[1]) == pytest.approx(float(q[0]), rel=1e-12)


def test_decode_latency_is_region_time_plus_all_reduces_plus_hops():
    arch = hwdse.load_arch("groq-lpu")
    ds = evaluate("llama-2-70b", arch, overrides={"chips": 576}, batch=1, prompt=512, gen=32, weights="int8",
                  flash_attention=True, detail=True)
    d = ds.sel(phase="decode")
    hops = d.op_count.sel(op="pp_send")
    assert float(hops) == 576 / 8 - 1
    # one token (batch 1) passes every stage in turn: all 80 layers and their all-reduces are on its path
    assert float(d.op_count.sel(op="q_proj")) == 80 and float(d.op_count.sel(op="tp_allreduce_mlp")) == 80
    link = hwdse.with_overrides(arch, {"chips": 576}).interconnect
    h = load_model("llama-2-70b").hidden_size
    assert float(d.op_time_s.sel(op="pp_send")) == pytest.approx(h * 2 / link.bandwidth_Bps + link.latency_s)
    # fully connected TP group: all-reduce = 2 alpha + 2 n / (p beta)
    assert float(d.op_time_s.sel(op="tp_allreduce_mlp")) == pytest.approx(
        2 * link.latency_s + 2 * h * 2 / (8 * link.bandwidth_Bps))
    assert float((d.op_time_s * d.op_count).sum()) == pytest.approx(float(ds.tpot_s), rel=1e-12)


@pytest.mark.parametrize("arch_name, model_name, run", [
    ("graphcore-bow", "llama-2-13b", dict(batch=2, prompt=200, gen=29, weights="int8")),
    ("cerebras-wse-2", "llama-2-7b", dict(batch=1, prompt=300, gen=17, weights="bf16")),  # the mesh fabric too
])
def test_decode_mean_is_exact_against_a_brute_force_loop(arch_name, model_name, run):
    model, scen = load_model(model_name), Scenario(**run)
    arch = hwdse.load_arch(arch_name).for_workload(model, scen)
    ds = evaluate(model, arch_name, scen, mode="roofline")
    steps = [sum(t.op.count * op_time(t) for t in arch.schedule(operator_table(model, scen, "decode", kv)))
             for kv in range(int(scen.prompt), int(scen.prompt + scen.gen))]
    assert float(ds.tpot_s) == pytest.approx(np.mean(steps), rel=1e-12)


def test_unsized_system_asks_for_a_workload():
    with pytest.raises(hwdse._errors.HwdseError, match="depends on the workload"):
        hwdse.load_arch("groq-lpu").area_mm2


NEW_PE = """\
name: my-pe
description: a 64 x 64 int8 and fp8 systolic array with a 1 MiB local buffer, no 16-bit path
rows: 64
cols: 64
rate: {fp8: 1, int8: 1}
vector_ops_per_cycle: 256
local_buffer_KiB: 1024
sram_mm2_per_MiB: 2.98
node_nm: 7
voltage_V: 0.75
unsupported: infeasible
sources:
  rows: "assumption: example"
  cols: "assumption: example"
  rate: "assumption: example"
  vector_ops_per_cycle: "assumption: example"
  local_buffer_KiB: "assumption: example"
  sram_mm2_per_MiB: "GA100 L2 119.31 mm^2 / 40 MiB (llmcompass_die_area.csv)"
  node_nm: "assumption: example"
  voltage_V: "assumption: example"
"""


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the infeasible design computes inf - inf
def test_user_written_pe_and_chip_run_from_yaml_with_dotted_overrides(tmp_path):
    (tmp_path / "my-pe.yaml").write_text(NEW_PE)
    chip = yaml.safe_load(locate("arch", "groq-lpu").read_text())
    chip.update(name="my-chip", pe={"type": str(tmp_path / "my-pe.yaml"), "count": 16, "clock_GHz": 1.2},
                sram_MiB=512, chip_power_W=200)
    path = tmp_path / "my-chip.yaml"
    path.write_text(yaml.safe_dump(chip))
    out = CliRunner().invoke(app, ["evaluate", "--arch", str(path), "--model", "llama-2-7b", "--weights", "fp8-e4m3",
                                   "--activations", "fp8-e4m3", "--kv", "fp8-e4m3", "--json"])
    assert out.exit_code == 0, out.output
    base = json.loads(out.output)
    assert base["arch"] == "my-chip" and base["chips"] >= 8
    more_sram = evaluate("llama-2-7b", str(path), overrides={"sram_MiB": 2048}, weights="fp8-e4m3",
                         activations="fp8-e4m3", kv="fp8-e4m3", mode="roofline")
    assert int(more_sram.chips) < base["chips"]
    faster = evaluate("llama-2-7b", str(path), overrides={"interconnect.bandwidth_GBps": 100, "pe.clock_GHz": 2.0,
                                                          "pe.count": 32, "chips": 64, "tp": 4},
                      weights="fp8-e4m3", activations="fp8-e4m3", kv="fp8-e4m3", mode="roofline")
    assert int(faster.chips) == 64 and float(faster.tpot_s) < base["tpot_s"]
    # the PE has no fp16 datapath and must not upcast: fp16 operands make the design infeasible
    bad = evaluate("llama-2-7b", str(path), batch=1, prompt=64, gen=4, mode="roofline")
    assert float(bad.ttft_s) == np.inf
    # the design fits in SRAM but cannot run: `feasible` says so, and why
    assert bool(bad.fits) and not bool(bad.feasible)
    assert "cannot compute fp16" in bad.attrs["infeasible_reason"] and "my-pe" in bad.attrs["infeasible_reason"]
    assert bool(more_sram.feasible) and more_sram.attrs["infeasible_reason"] == ""
    assert base["feasible"] is True
    upcast = evaluate("llama-2-7b", str(path), overrides={"pe.type": "groq-mxm"}, batch=1, prompt=64, gen=4, mode="roofline")
    assert bool(upcast.feasible) and np.isfinite(float(upcast.tpot_s))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_validation_cases_reproduce_the_recorded_error(case):
    for mode in ("roofline", "achieved"):
        ds = evaluate(case["model"], case["arch"], overrides=case["overrides"], mode=mode, **case["scenario"])
        error = float(ds.tok_s_per_user) / case["measured"] - 1
        assert error == pytest.approx(case[f"{mode}_error"], abs=0.02), f"{case['name']} {mode}: error now {error:+.3f}"
        assert bool(ds.fits)
    assert case["within_goal"] == (abs(error) <= 0.15)


def test_a_batch_pipelines_over_the_stages():
    run = dict(prompt=512, gen=64, weights="int8", flash_attention=True, overrides={"chips": 576})
    one = evaluate("llama-2-70b", "groq-lpu", batch=1, **run)
    eight = evaluate("llama-2-70b", "groq-lpu", batch=8, **run)
    # 8 sequences in 72 stages: each decode step still passes L layers of one-sequence microbatches
    assert float(eight.tok_s_per_user) == pytest.approx(float(one.tok_s_per_user), rel=0.05)
    assert float(eight.decode_tok_s) == pytest.approx(8 * float(eight.tok_s_per_user))
    lockstep = evaluate("llama-2-70b", "groq-lpu", batch=8, **{**run, "overrides": {"chips": 576, "microbatches": 1}})
    assert float(lockstep.tpot_s) > float(eight.tpot_s)


def _decode_timings(arch_name, model_name, scen, overrides=None, kv=None):
    arch = hwdse.load_arch(arch_name)
    if overrides:
        arch = hwdse.with_overrides(arch, overrides)
    model = load_model(model_name)
    bound = arch.for_workload(model, scen)
    kv = scen.prompt if kv is None else kv
    return bound, {t.op.name: t for t in bound.schedule(operator_table(model, scen, "decode", kv))}


def test_mesh_fabric_counts_the_region_side_twice_per_matrix_operator():
    scen = Scenario(batch=1, prompt=256, gen=16, weights="bf16", activations="bf16", kv="bf16")
    wse, t = _decode_timings("cerebras-wse-3", "llama-3-8b", scen)
    shares = wse._shares()
    hz = wse.pe.clock_GHz * 1e9
    for name in ("q_proj", "down_proj", "lm_head"):
        cores = wse.pe.count * shares[name]
        assert 1 < cores < wse.pe.count  # a region, not the whole wafer
        assert t[name].serial_s["fabric"] == pytest.approx(2 * np.sqrt(cores) / hz)
    # the operators of one layer share its region; the LM head (1.05 GB, more than a layer's 0.44 GB) owns a larger one
    assert shares["q_proj"] == shares["down_proj"] == pytest.approx(
        shares["lm_head"] * 32 * 4096 * (2 * 4096 + 2 * 1024 + 3 * 14336 + 0) / (32 * 4096 * 128256), rel=0.05)
    assert t["lm_head"].serial_s["fabric"] > t["q_proj"].serial_s["fabric"]
    assert "fabric" not in t["attn_norm"].serial_s  # vector operators are chained onto the stream
    slow, t2 = _decode_timings("cerebras-wse-3", "llama-3-8b", scen, {"fabric.hop_cycles": 3})
    assert t2["q_proj"].serial_s["fabric"] == pytest.approx(3 * t["q_proj"].serial_s["fabric"])


def test_fixed_fabric_is_a_per_operator_constant_from_the_catalog():
    scen = Scenario(batch=1, prompt=256, gen=16, weights="int8", flash_attention=True)
    groq, t = _decode_timings("groq-lpu", "llama-2-7b", scen)
    # 2 x 44 MEM slices out and back + 19 superlanes of instruction skew, one cycle each, at 0.9 GHz
    assert groq.fabric.op_hops == 107
    for name in ("q_proj", "down_proj"):
        assert t[name].serial_s["fabric"] == pytest.approx(107 / 0.9e9)
    # fused attention = two dependent matrix steps: the same fill and traversal as the unfused qk/sv pair
    assert t["flash_attention"].serial_s["fabric"] == pytest.approx(2 * 107 / 0.9e9)
    _, unfused = _decode_timings("groq-lpu", "llama-2-7b", scen.with_(flash_attention=False))
    for term in ("fabric", "array_fill"):
        assert t["flash_attention"].serial_s[term] == pytest.approx(
            unfused["qk_matmul"].serial_s[term] + unfused["sv_matmul"].serial_s[term])
    ipu, t = _decode_timings("graphcore-gc200", "llama-2-7b", scen)
    assert t["q_proj"].serial_s["fabric"] == pytest.approx(ipu.fabric.sync_cycles / 1.35e9)


def test_the_fabric_term_adds_exactly_its_per_operator_latency_to_tpot():
    run = dict(batch=1, prompt=512, gen=32, weights="bf16", activations="bf16", kv="bf16", flash_attention=True)
    with_fabric = evaluate("llama-3-8b", "cerebras-wse-3", detail=True, **run, mode="roofline")
    without = evaluate("llama-3-8b", "cerebras-wse-3", overrides={"fabric": None}, **run, mode="roofline")
    scen = Scenario(**run)
    _, t = _decode_timings("cerebras-wse-3", "llama-3-8b", scen)
    d = with_fabric.sel(phase="decode")
    added = sum(float(d.op_count.sel(op=name)) * timing.serial_s.get("fabric", 0.0) for name, timing in t.items())
    assert added > 0
    assert float(with_fabric.tpot_s) - float(without.tpot_s) == pytest.approx(added, rel=1e-9)
    sweep = evaluate("llama-3-8b", "cerebras-wse-3", overrides={"fabric.hop_cycles": xr.DataArray([1, 2, 4], dims="h")},
                     **run, mode="roofline")
    assert float(sweep.tpot_s[0]) == pytest.approx(float(with_fabric.tpot_s), rel=1e-12)
    assert float(sweep.tpot_s[2]) - float(sweep.tpot_s[0]) == pytest.approx(3 * added, rel=1e-9)


def test_sixteen_bit_weights_cannot_fit_the_576_chip_groq_system():
    # the precision decision of validation/spatial_cases.yaml: 69 B params x 2 B > 576 x 220 MiB
    model, arch = load_model("llama-2-70b"), hwdse.load_arch("groq-lpu")
    assert model.num_params * 2 > 576 * arch.sram_MiB * 2**20
    fp16 = evaluate("llama-2-70b", "groq-lpu", batch=1, prompt=550, gen=150, weights="fp16", flash_attention=True)
    assert int(fp16.chips) > 576
    int8 = evaluate("llama-2-70b", "groq-lpu", batch=1, prompt=550, gen=150, weights="int8", flash_attention=True)
    assert int(int8.chips) < 576


def test_energy_per_token_does_not_fall_with_batch_by_counting_only_critical_path_slots():
    # 72 stages; up to 72 sequences, each its own microbatch: every sequence's pass reads the weights.
    # The operators' energy per token (static power follows the time, not the work)
    run = dict(prompt=512, gen=64, weights="int8", flash_attention=True)

    def per_token(ds, batch):
        return float(ds.dynamic_energy_j) / (batch * run["gen"])

    one = evaluate("llama-2-70b", "groq-lpu", batch=1, overrides={"chips": 576}, **run)
    for batch in (8, 64):
        many = evaluate("llama-2-70b", "groq-lpu", batch=batch, overrides={"chips": 576}, **run)
        assert per_token(many, batch) == pytest.approx(per_token(one, 1), rel=1e-9)
    # 144 sequences in 72 microbatches of 2 = 72 passes of the 2-sequence lockstep batch
    wide = evaluate("llama-2-70b", "groq-lpu", batch=144, overrides={"chips": 576}, **run)
    pair = evaluate("llama-2-70b", "groq-lpu", batch=2, overrides={"chips": 576, "microbatches": 1}, **run)
    assert per_token(wide, 144) == pytest.approx(per_token(pair, 2), rel=1e-9)
    # at least every chip's weights are read once per token: 69 GB x the SRAM pJ/bit
    sram_J_per_B = hwdse.hardware.memory.load_memory("sram").energy_pJ_per_bit * 8e-12
    assert float(one.decode_energy_j_per_token) > float(one.weights_bytes) * 576 * sram_J_per_B


def _fits_all_but_headroom(ds, arch):
    """Evaluate's fit check and the usable-SRAM share for weights + KV cache (the sizing rule)."""
    return bool(ds.fits) and float(ds.weights_bytes + ds.kv_cache_bytes) <= (
        arch.usable_sram_fraction * float(ds.capacity_bytes) * (1 + 1e-12))


@pytest.mark.parametrize("name", SPATIAL)
def test_auto_sized_systems_fit_with_the_fewest_chip_groups(name):
    arch = hwdse.load_arch(name)
    activation_bound = 0
    for model in hwdse._catalog.names("models"):
        for batch, extra in ((1, {}), (8, {}), (8, {"microbatches": 1})):
            run = dict(batch=batch, prompt=1024, gen=128)
            ds = evaluate(model, name, overrides=extra, **run)
            chips = int(ds.chips)
            if float(ds.activation_bytes) > float(ds.capacity_bytes):
                # a lockstep batch's activations alone exceed a chip's SRAM: no chip count fits
                assert extra and not bool(ds.fits)
                continue
            assert _fits_all_but_headroom(ds, arch), (model, batch, extra, fit_reason(ds))
            if chips == arch.tp:
                continue
            fewer = evaluate(model, name, overrides={**extra, "chips": chips - arch.tp}, **run)
            assert not _fits_all_but_headroom(fewer, arch), (model, batch, extra)
            activation_bound += float(fewer.weights_bytes + fewer.kv_cache_bytes) <= (
                arch.usable_sram_fraction * float(fewer.capacity_bytes))
    if name == "groq-lpu":  # 16-bit 70B at prompt 1024: the prefill activations need more chips
        assert activation_bound > 0


def test_cerebras_peaks_are_dense_simd_rates_not_the_sparse_marketing_figure():
    # WSE-3: 8-wide FP16 SIMD per core, WSE-2: 4-wide (arch/pe/cerebras-core*.yaml sources)
    wse3, wse2 = hwdse.load_arch("cerebras-wse-3"), hwdse.load_arch("cerebras-wse-2")
    assert wse3.pe.peak_ops_per_s("bf16") == pytest.approx(900_000 * 8 * 2 * 0.85e9)
    assert wse2.pe.peak_ops_per_s("fp16") == pytest.approx(850_000 * 4 * 2 * 0.85e9)
    # the published 125 PFLOPS "AI compute" is a sparse figure, ~10x the dense peak at the 850 MHz SDK clock
    assert 9 < 125e15 / wse3.pe.peak_ops_per_s("fp16") < 11
    # batch-1 decode of an 8B model on one WSE-3 is then PE-bound, not SRAM-bound, in every GEMV region
    _, t = _decode_timings("cerebras-wse-3", "llama-3-8b", Scenario(batch=1, prompt=1000, gen=150, weights="bf16",
                                                                  activations="bf16", kv="bf16"))
    assert all(t[name].compute_s > t[name].memory_s for name in ("q_proj", "gate_proj", "down_proj"))
