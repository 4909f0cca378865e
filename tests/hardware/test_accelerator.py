"""PE-based accelerators: peak, area and power derive from PE type x count x clock + memory + SRAM."""

import json

import numpy as np
import pytest
import xarray as xr
import yaml
from typer.testing import CliRunner

import hwdse
from hwdse._catalog import locate
from hwdse.cli.main import app
from hwdse.hardware import Accelerator
from hwdse.hardware.cost import device_usd
from hwdse.hardware.systems.multi import with_parallelism
from hwdse.hardware.pe import load_pe
from hwdse.perf import evaluate
from hwdse.perf.roofline import op_time
from hwdse.workload import Scenario, load_model, operator_table


def test_decode_accel_derives_peak_area_and_power():
    a = hwdse.load_arch("decode-accel")
    pe = load_pe(a.pe.type)
    assert a.kind == "accelerator"
    assert a.peak_ops_per_s("fp8") == pytest.approx(2 * pe.rows * pe.cols * pe.rate["fp8"] * a.pe.count * a.pe.clock_GHz * 1e9)
    area = pe.area_mm2 * a.pe.count + a.sram_MiB * a.sram_mm2_per_MiB + a.phy_mm2_per_device * a.memory.count + a.other_area_mm2
    assert a.area_mm2 == pytest.approx(area)
    mac_w = max(pe.macs_per_cycle(c) * pe.mac_energy_pJ(c) for c in pe.rate) * a.pe.count * a.pe.clock_GHz * 1e-3
    mem_w = a.bandwidth_Bps * 8 * a.memory.energy_pJ_per_bit * 1e-12
    assert a.power_W == pytest.approx(a.static_power_W + mac_w + mem_w)
    ds = evaluate("llama-2-7b", a, batch=1, prompt=128, gen=16)
    assert float(ds.area_mm2) == pytest.approx(a.area_mm2) and float(ds.power_w) == pytest.approx(a.power_W)
    assert np.isfinite(float(ds.energy_j)) and float(ds.energy_j) > 0


@pytest.mark.parametrize("path,value", [("pe.count", 512), ("pe.clock_GHz", 2.0), ("pe.type", "fp4-tensor-core"),
                                        ("sram_MiB", 256), ("memory.count", 6), ("memory.bandwidth_GBps", 4000)])
def test_dotted_paths_reach_every_searched_field(path, value):
    base = hwdse.load_arch("decode-accel")
    new = hwdse.with_overrides(base, {path: value})
    changed = (new.area_mm2 != base.area_mm2 or new.bandwidth_Bps != base.bandwidth_Bps
               or new.peak_ops_per_s("fp8") != base.peak_ops_per_s("fp8"))
    assert changed


def test_decode_mean_is_exact_against_a_brute_force_loop():
    arch = hwdse.load_arch("decode-accel")
    model, scen = load_model("llama-2-13b"), Scenario(batch=32, prompt=300, gen=23, weights="mxfp4",
                                                      activations="mxfp8-e4m3", kv="fp8-e4m3")
    ds = evaluate(model, arch, scen)
    steps = [sum(t.op.count * op_time(t) for t in arch.schedule(operator_table(model, scen, "decode", kv)))
             for kv in range(300, 323)]
    assert float(ds.tpot_s) == pytest.approx(np.mean(steps), rel=1e-12)


def test_user_yaml_accelerator_runs_from_a_path(tmp_path):
    data = yaml.safe_load(locate("arch", "decode-accel").read_text())
    data.update(name="my-accel", pe={"type": "flint-pe", "count": 128, "clock_GHz": 1.2})
    path = tmp_path / "my-accel.yaml"
    path.write_text(yaml.safe_dump(data))
    out = CliRunner().invoke(app, ["evaluate", "--arch", str(path), "--model", "llama-2-7b", "--weights", "int8",
                                   "--activations", "int8", "--kv", "int8", "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    assert res["arch"] == "my-accel" and res["tpot_s"] > 0 and res["area_mm2"] > 0


def test_accelerator_in_a_multi_device_system():
    ds = evaluate("llama-2-70b", "decode-accel", batch=8, prompt=512, gen=16)
    tp = evaluate("llama-2-70b", with_parallelism(hwdse.load_arch("decode-accel"), tp=4),
                  batch=8, prompt=512, gen=16)
    assert float(tp.tpot_s) < float(ds.tpot_s) and int(tp.devices) == 4
    assert float(tp.area_mm2) == pytest.approx(4 * float(ds.area_mm2))


def test_clock_sweep_over_dataarray():
    clock = xr.DataArray([1.0, 1.5, 2.0], dims="clock")
    ds = evaluate("llama-2-7b", "decode-accel", overrides={"pe.clock_GHz": clock}, batch=64, prompt=512, gen=8)
    assert ds.ttft_s.dims == ("clock",) and bool((ds.ttft_s.diff("clock") < 0).all())
    assert bool((ds.power_w.diff("clock") > 0).all())


def _small_six_stack() -> Accelerator:
    """300 PEs and six stacks: ~457 mm^2 of parts, whose edges hold four stacks (unreachable unpadded)."""
    return hwdse.with_overrides(hwdse.load_arch("decode-accel"), {"pe.count": 300, "memory.count": 6})


def test_die_is_padded_to_host_its_stacks_and_padding_leaks_nothing():
    base = _small_six_stack()
    edge = (2.5 * base.stack_edge_mm) ** 2 / base.die_aspect  # three stacks per long side: 2.5 edges long
    assert base.parts_mm2 < edge and base.edge_mm2 == pytest.approx(edge)
    assert base.area_mm2 == pytest.approx(edge) and base.max_stacks == 6 and bool(base.reachable)  # no more PEs
    assert base.cost_usd == pytest.approx(device_usd(edge, 1, base.fab, base.memory, base.package))
    four = hwdse.with_overrides(base, {"memory.count": 4})
    assert four.area_mm2 == pytest.approx(four.parts_mm2) and four.cost_usd < base.cost_usd  # no padding needed
    padded = hwdse.with_overrides(base, {"die_mm2": 700.0})
    assert padded.area_mm2 == 700.0 and padded.parts_mm2 == pytest.approx(base.parts_mm2)
    assert padded.cost_usd > base.cost_usd
    assert padded.static_power_W == base.static_power_W == pytest.approx(four.static_power_W + (  # two more PHYs
        base.leakage_W_per_mm2 * (base.parts_mm2 - four.parts_mm2) * base.pe.voltage_V / base.pe.pe.voltage_V))
    assert padded.power_W == base.power_W
    twelve = hwdse.with_overrides(base, {"memory.count": 12})
    assert twelve.area_mm2 > twelve.reticle_mm2 and not bool(twelve.reachable)  # six per side need 2,880 mm^2


def test_die_below_its_parts_and_edge_is_ignored():
    base = _small_six_stack()
    small = hwdse.with_overrides(base, {"die_mm2": 100.0})
    assert small.area_mm2 == pytest.approx(base.edge_mm2) and small.cost_usd == pytest.approx(base.cost_usd)


def test_die_sweep_over_dataarray_matches_scalar_designs():
    base = _small_six_stack()
    die = xr.DataArray([100.0, 600.0, 900.0], dims="die")
    swept = hwdse.with_overrides(base, {"die_mm2": die})
    for i, d in enumerate(die.values):
        one = hwdse.with_overrides(base, {"die_mm2": float(d)})
        for name in ("area_mm2", "max_stacks", "cost_usd", "reachable", "static_power_W"):
            assert np.broadcast_to(getattr(swept, name), die.shape)[i] == pytest.approx(getattr(one, name), rel=1e-12)
    ds = evaluate("llama-2-7b", base, overrides={"die_mm2": die}, batch=1, prompt=128, gen=8)
    assert ds.area_mm2.dims == ("die",) and ds.feasible.values.tolist() == [True, True, False]  # 900: over the reticle
    assert float(ds.static_power_w) == pytest.approx(base.static_power_W)  # padding leaks nothing
