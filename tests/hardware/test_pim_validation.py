"""PIM validation: the published headline numbers of validation/pim_cases.yaml, from catalog data alone."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from hwdse.hardware import load_arch
from hwdse.perf import evaluate
from hwdse.workload import Scenario, load_model, operator_table

CASES = yaml.safe_load((Path(__file__).resolve().parents[2] / "validation" / "pim_cases.yaml").read_text())


@pytest.mark.parametrize("name", sorted(CASES["device"]))
def test_device_headline(name):
    case = CASES["device"][name]
    measured = getattr(load_arch(case["arch"]), case["quantity"]) * case["scale"]
    assert abs(measured / case["target"] - 1) <= case["tolerance"], f"{name}: {measured} vs {case['target']}"
    assert measured == pytest.approx(case["measured"], rel=1e-3)


def _largest_fitting(case, arch):
    batch = xr.DataArray(np.arange(1, 513), dims="batch")
    ds = evaluate(case["model"], arch, batch=batch, prompt=case["prompt"], gen=case["gen"])
    best = int(batch.values[ds.fits.values].max())
    return best, ds.sel(batch=best)


@pytest.fixture(scope="module")
def attacc():
    case = CASES["system"]["attacc-throughput"]
    out = {}
    for role in ("system", "baseline"):
        batch, ds = _largest_fitting(case, case[role])
        out[role] = (batch, float(ds.decode_tok_s), float(ds.decode_energy_j_per_token))
    return out


def test_attacc_throughput(attacc):
    case = CASES["system"]["attacc-throughput"]
    ratio = attacc["system"][1] / attacc["baseline"][1]
    assert ratio > 1  # the GPU+PIM system wins, as published
    assert abs(ratio / case["target"] - 1) <= case["tolerance"]
    assert ratio == pytest.approx(case["measured"], rel=0.01)


def test_attacc_energy_efficiency(attacc):
    case = CASES["system"]["attacc-energy-efficiency"]
    ratio = attacc["baseline"][2] / attacc["system"][2]
    assert ratio > 1
    assert abs(ratio / case["target"] - 1) <= case["tolerance"]
    assert ratio == pytest.approx(case["measured"], rel=0.01)


def test_aim_runs_gemv_only():
    """AiM: GEMV only. A GEMM of m rows costs m GEMVs (weights re-streamed); vector work leaves the chips."""
    aim, model = load_arch("gddr6-aim"), load_model("llama-2-7b")
    scen = Scenario(batch=1, prompt=64, weights="bf16", activations="bf16", kv="bf16", flash_attention=False)
    prefill = {t.op.name: t for t in aim.schedule(operator_table(model, scen, "prefill"))}
    decode = {t.op.name: t for t in aim.schedule(operator_table(model, scen, "decode", 64))}
    assert prefill["q_proj"].memory_s == pytest.approx(64 * decode["q_proj"].memory_s)
    assert prefill["q_proj"].unit == "pim" and prefill["softmax"].unit == "controller"
    assert "elementwise" not in aim.units.runs


@pytest.mark.parametrize("name, constrained, free", [
    ("hbm3-pim", 9, 16), ("hbm3-pim-bg", 3, 8), ("hbm3-pim-buffer", 1, 1)])
def test_attacc_placement_bandwidth_scales(name, constrained, free):
    """AttAcc BW_SCALE (attacc_simulator src/config.py): internal / external bandwidth per stack for bank,
    bank-group and buffer-die PIM, with (--powerlimit) and without the power constraint."""
    from hwdse.hardware import with_overrides

    pim = load_arch(name)
    external = pim.memory.bandwidth_Bps / pim.memory.count
    assert pim.internal_Bps_per_device / external == pytest.approx(constrained)
    unconstrained = with_overrides(pim, {"units.power_derate": 1.0})
    assert unconstrained.internal_Bps_per_device / external == pytest.approx(free)


def test_attacc_placements_rank_bank_over_bank_group_over_buffer():
    from hwdse.hardware import with_overrides

    base = load_arch("dgx-a100-attacc")
    tok_s, energy = {}, {}
    for name in ("hbm3-pim", "hbm3-pim-bg", "hbm3-pim-buffer"):
        system = with_overrides(base, {"pim": {"base": name, "devices": 8}})
        ds = evaluate("gpt3-175b", system, batch=64, prompt=2048, gen=128)
        tok_s[name], energy[name] = float(ds.decode_tok_s), float(ds.decode_energy_j_per_token)
    assert tok_s["hbm3-pim"] > tok_s["hbm3-pim-bg"] > tok_s["hbm3-pim-buffer"]
    assert energy["hbm3-pim"] < energy["hbm3-pim-bg"] < energy["hbm3-pim-buffer"]
