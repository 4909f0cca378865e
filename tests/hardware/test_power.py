"""Power: V(f) curves, supply-scaled MAC energy and leakage, static energy over the wall time."""

import numpy as np
import pytest
import xarray as xr
from pydantic import ValidationError

import hwdse
from hwdse.hardware.power import VFCurve, load_shared_power
from hwdse.perf import evaluate

RUN = dict(batch=16, prompt=1024, gen=64, weights="mxfp4", activations="fp8-e4m3", kv="fp8-e4m3")


def test_vf_curve_is_piecewise_linear_through_its_points():
    vf = VFCurve(clock_GHz=(1.0, 2.0, 3.0), voltage_V=(0.6, 0.8, 1.2))
    assert [vf.voltage(f) for f in (1.0, 2.0, 3.0)] == pytest.approx([0.6, 0.8, 1.2])
    assert vf.voltage(1.5) == pytest.approx(0.7) and vf.voltage(2.5) == pytest.approx(1.0)
    assert vf.voltage(0.5) == pytest.approx(0.6)  # below the first point: the floor voltage
    grid = xr.DataArray([0.5, 1.5, 2.5], dims="clock")
    assert vf.voltage(grid).dims == ("clock",)
    np.testing.assert_allclose(vf.voltage(grid).values, [0.6, 0.7, 1.0])


@pytest.mark.parametrize("clocks,volts", [((1.0,), (0.7,)), ((2.0, 1.0), (0.7, 0.8)), ((1.0, 2.0), (0.8, 0.7))])
def test_vf_curve_rejects_unordered_points(clocks, volts):
    with pytest.raises(ValidationError):
        VFCurve(clock_GHz=clocks, voltage_V=volts)


def test_mac_energy_scales_with_the_square_of_the_supply_at_the_clock():
    base = hwdse.load_arch("decode-accel")
    fast = hwdse.with_overrides(base, {"pe.clock_GHz": 2.0})
    ratio = (fast.pe.voltage_V / base.pe.voltage_V) ** 2
    assert fast.pe.voltage_V > base.pe.voltage_V
    assert fast.pe.mac_energy_pJ("fp8") == pytest.approx(base.pe.mac_energy_pJ("fp8") * ratio)


def test_static_power_grows_with_area_and_supply():
    base = hwdse.load_arch("decode-accel")
    assert base.static_power_W == pytest.approx(base.leakage_W_per_mm2 * base.area_mm2)  # nominal clock
    bigger = hwdse.with_overrides(base, {"sram_MiB": 256})
    assert bigger.static_power_W / base.static_power_W == pytest.approx(bigger.area_mm2 / base.area_mm2)
    fast = hwdse.with_overrides(base, {"pe.clock_GHz": 2.0})
    assert fast.static_power_W / base.static_power_W == pytest.approx(fast.pe.voltage_V / base.pe.voltage_V)


def test_energy_charges_static_power_over_the_wall_time():
    ds = evaluate("llama-3-70b", "decode-accel", **RUN)
    wall = float(ds.ttft_s + RUN["gen"] * ds.tpot_s)
    assert float(ds.energy_j) == pytest.approx(float(ds.dynamic_energy_j) + float(ds.static_power_w) * wall)
    assert float(ds.avg_power_w) == pytest.approx(float(ds.energy_j) / wall)
    assert float(ds.static_power_w) < float(ds.avg_power_w) < float(ds.power_w)


def test_clock_trades_static_against_dynamic_energy():
    """Slow clocks spend leakage over a longer prefill, fast ones pay V^2 per MAC: an interior optimum."""
    clocks = xr.DataArray([0.8, 1.2, 1.5, 1.8, 2.2], dims="clock")
    ds = evaluate("llama-3-70b", "decode-accel", overrides={"pe.clock_GHz": clocks}, **RUN)
    e = ds.energy_j_per_token.values
    best = int(np.argmin(e))
    assert 0 < best < len(e) - 1 and ds.feasible.all()


def test_a_clock_past_the_vf_curve_is_infeasible():
    clocks = xr.DataArray([1.5, 2.5], dims="clock")
    ds = evaluate("llama-3-70b", "decode-accel", overrides={"pe.clock_GHz": clocks}, **RUN)
    assert ds.feasible.values.tolist() == [True, False]
    assert "V(f) curve" in ds.attrs["infeasible_reason"]
    assert not bool(evaluate("llama-3-70b", "decode-accel", overrides={"pe.clock_GHz": 2.5}, **RUN).feasible)


def test_gpu_static_power_is_idle_plus_busy_and_a_gpu_without_a_power_block_takes_the_shared_one():
    ds = evaluate("llama-2-7b", "h100-sxm", batch=1, prompt=128, gen=8)
    gpu = hwdse.load_arch("h100-sxm")
    assert float(ds.static_power_w) == pytest.approx(gpu.power.idle_W + gpu.power.busy_W)
    assert float(ds.energy_j) == pytest.approx(float(ds.dynamic_energy_j) + float(ds.static_power_w * ds.e2e_s))
    assert 0.4 * gpu.tdp_W < float(ds.avg_power_w) < gpu.tdp_W  # batch-1 decode: well below TDP, above idle
    bare = gpu.model_copy(update={"power": None})
    plain = evaluate("llama-2-7b", bare, batch=1, prompt=128, gen=8)
    shared = load_shared_power()
    assert float(plain.static_power_w) == pytest.approx((shared.idle_fraction_of_tdp + shared.busy_fraction_of_tdp)
                                                        * gpu.tdp_W)
    assert float(plain.energy_j) == pytest.approx(float(plain.dynamic_energy_j) + float(plain.static_power_w
                                                                                          * plain.e2e_s))
    tp8 = evaluate("llama-2-7b", "dgx-h100", batch=1, prompt=128, gen=8)
    assert float(tp8.static_power_w) == pytest.approx(8 * float(ds.static_power_w))  # a system sums its GPUs


def test_packaging_limits_memory_stacks_and_die_size():
    base = hwdse.load_arch("decode-accel")
    assert base.max_stacks == 4 and bool(base.reachable)  # two per long side of a ~420 mm^2 die
    six = hwdse.with_overrides(base, {"memory.count": 6})  # padded to ~595 mm^2 to host three per side
    assert six.max_stacks == 6 and bool(six.reachable) and six.area_mm2 > six.parts_mm2
    assert not bool(hwdse.with_overrides(base, {"memory.count": 8}).reachable)  # four per side: ~1,170 mm^2
    assert hwdse.with_overrides(base, {"pe.count": 512, "sram_MiB": 128}).max_stacks == 6  # ~660 mm^2
    big = hwdse.with_overrides(base, {"pe.count": 2048, "sram_MiB": 256})  # ~1,380 mm^2: over the reticle
    assert big.area_mm2 > big.reticle_mm2 and not bool(big.reachable)
    stacks = xr.DataArray([4, 8], dims="stacks")
    ds = evaluate("llama-3-70b", "decode-accel", overrides={"memory.count": stacks}, **RUN)
    assert ds.feasible.values.tolist() == [True, False] and "memory stacks" in ds.attrs["infeasible_reason"]
