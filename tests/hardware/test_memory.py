"""A memory system's stacks: a free bandwidth beyond the stacks' nominal rate places more of them."""

import pytest
import xarray as xr

import hwdse
from hwdse.hardware import load_memory


def test_free_bandwidth_runs_faster_pins_up_to_nominal_then_adds_stacks():
    h100 = hwdse.load_arch("h100-sxm")  # 5 HBM3 stacks at 5.23 Gbps; HBM3's nominal 6.4 Gbps is 819.2 GB/s a stack
    nominal = load_memory("hbm3").bandwidth_GBps
    assert h100.memory.stacks == 5
    bw = xr.DataArray([2000.0, 5 * nominal, 5 * nominal + 1, 8000.0], dims="bw")
    fast = hwdse.with_overrides(h100, {"memory.bandwidth_GBps": bw})
    assert fast.memory.stacks.values.tolist() == [5, 5, 6, 10]  # ceil(8000 / 819.2) = 10
    assert fast.capacity_bytes == h100.capacity_bytes and fast.memory.cost_usd == h100.memory.cost_usd  # same GB


def test_stacks_for_bandwidth_take_beachfront_and_phys_on_an_accelerator():
    accel = hwdse.load_arch("decode-accel")  # 4 HBM3E stacks of 1,228.8 GB/s, edges for 4
    more = hwdse.with_overrides(accel, {"memory.bandwidth_GBps": 6000.0})  # 5 stacks' worth
    assert more.memory.stacks == 5 and bool(more.reachable)
    assert more.parts_mm2 - accel.parts_mm2 == pytest.approx(accel.phy_mm2_per_device)
    assert more.area_mm2 == pytest.approx(more.edge_mm2) and more.edge_mm2 > more.parts_mm2  # padded: 3 per side
    assert bool(hwdse.with_overrides(accel, {"memory.bandwidth_GBps": 4000.0}).reachable)
