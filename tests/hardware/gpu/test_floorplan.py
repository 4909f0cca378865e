"""GPU floorplans: overridden peaks and bandwidth cost area, power budget and money; the datasheet part
keeps its own figures. Expected deltas are computed by hand from the YAML numbers and the energy constants."""

import numpy as np
import pytest
import xarray as xr

import hwdse
from hwdse._catalog import names
from hwdse._errors import HwdseError
from hwdse.hardware import GPU, load_memory, with_overrides
from hwdse.hardware.cost import device_usd
from hwdse.hardware.energy import GPU_NODE_SCALE, MAC_PJ_45NM, ONCHIP_PJ_PER_BIT

FLOORPLANNED = sorted(n for n in names("arch")
                      if isinstance(a := hwdse.load_arch(n), GPU) and a.floorplan is not None)


def test_the_study_base_gpus_have_a_floorplan():
    assert {"h100-sxm", "h200", "b200", "a100-sxm-80gb"} <= set(FLOORPLANNED)


@pytest.mark.parametrize("name", FLOORPLANNED)
def test_references_are_the_datasheet_figures_so_the_part_keeps_its_own(name):
    gpu = hwdse.load_arch(name)
    plan = gpu.floorplan
    assert plan.at_TOPS == {c: p for c, p in gpu.compute.peak_TOPS.items() if c != "fp32"}
    assert plan.at_GBps == pytest.approx(gpu.bandwidth_Bps / 1e9, rel=1e-12)
    assert gpu.area_mm2 == gpu.die_area_mm2 and gpu.power_W == gpu.tdp_W
    assert gpu.cost_usd == pytest.approx(device_usd(gpu.die_area_mm2, gpu.dies, gpu.fab, gpu.memory, gpu.package))


def _mac_W(gpu: GPU, ops_per_s: float) -> float:
    """BF16 ops/s at the H100's modelled MAC energy (Horowitz FP16 x the GPU node factor x its compute_scale)."""
    return ops_per_s / 2 * MAC_PJ_45NM["bf16"] * GPU_NODE_SCALE * gpu.power_model.compute_scale * 1e-12


def test_doubling_the_tensor_peak_adds_the_mac_arrays_and_their_power():
    h100 = hwdse.load_arch("h100-sxm")
    bf16 = with_overrides(h100, {"compute.peak_TOPS.bf16": 2 * 989.4})
    assert bf16.area_mm2 - h100.area_mm2 == pytest.approx(49.05)  # floorplan.tensor_mm2
    assert bf16.power_W - h100.power_W == pytest.approx(_mac_W(h100, 989.4e12))  # ~573 W
    assert bf16.cost_usd > h100.cost_usd
    fp8 = with_overrides(h100, {"compute.peak_TOPS.fp8": 2 * 1978.9})  # the same array runs FP8
    assert fp8.area_mm2 == pytest.approx(bf16.area_mm2) and fp8.power_W == pytest.approx(bf16.power_W)
    lone = with_overrides(h100, {"compute.peak_TOPS.bf16": 989.4 / 2})  # FP8 still needs the whole array
    assert lone.area_mm2 == h100.area_mm2 and lone.power_W == h100.power_W
    half = {f"compute.peak_TOPS.{c}": p / 2 for c, p in h100.floorplan.at_TOPS.items()}
    small = with_overrides(h100, half)
    assert small.area_mm2 - h100.area_mm2 == pytest.approx(-49.05 / 2)
    assert small.power_W - h100.power_W == pytest.approx(-_mac_W(h100, 989.4e12 / 2))
    fp32 = with_overrides(h100, {"compute.peak_TOPS.fp32": 2 * 66.9})  # FP32 units: not the tensor cores
    assert fp32.area_mm2 == h100.area_mm2


def test_more_bandwidth_adds_phys_power_and_stacks():
    h100 = hwdse.load_arch("h100-sxm")
    fast = with_overrides(h100, {"memory.bandwidth_GBps": 8000.0})
    assert fast.area_mm2 - h100.area_mm2 == pytest.approx(80.14 * (8000 / 3350 - 1))
    pj = load_memory("hbm3").energy_pJ_per_bit + ONCHIP_PJ_PER_BIT  # DRAM, then L2 and L1
    assert fast.power_W - h100.power_W == pytest.approx((8000 - 3350) * 1e9 * 8 * pj * 2.137e-12)  # memory_scale
    assert fast.memory.stacks == 10  # ceil(8000 / 819.2 GB/s at HBM3's nominal 6.4 Gbps)
    assert fast.cost_usd == pytest.approx(device_usd(fast.area_mm2, 1, "n4", fast.memory, "cowos-s"))
    assert fast.cost_usd > device_usd(fast.area_mm2, 1, "n4", h100.memory, "cowos-s")  # the interposer's stacks


def test_a_sweep_equals_scalar_designs():
    b200 = hwdse.load_arch("b200")
    peak = xr.DataArray([1500.0, 2250.0, 4000.0], dims="peak")
    bw = xr.DataArray([6000.0, 8000.0, 12000.0], dims="bw")
    grid = with_overrides(b200, {"compute.peak_TOPS.bf16": peak, "memory.bandwidth_GBps": bw})
    for i, p in enumerate(peak.values):
        for j, b in enumerate(bw.values):
            one = with_overrides(b200, {"compute.peak_TOPS.bf16": float(p), "memory.bandwidth_GBps": float(b)})
            for name in ("area_mm2", "power_W", "cost_usd"):
                assert getattr(grid, name).isel(peak=i, bw=j).item() == pytest.approx(getattr(one, name), rel=1e-12)


def test_evaluate_and_multi_gpu_systems_report_the_cost_of_bandwidth():
    base = hwdse.evaluate("llama-3-8b", "h100-sxm", batch=8, prompt=512, gen=16)
    fast = hwdse.evaluate("llama-3-8b", "h100-sxm", batch=8, prompt=512, gen=16,
                          overrides={"memory.bandwidth_GBps": 8000})
    for key in ("area_mm2", "power_w", "cost_usd"):
        assert float(fast[key]) > float(base[key])
    one = with_overrides(hwdse.load_arch("h100-sxm"), {"memory.bandwidth_GBps": 8000.0})
    dgx = with_overrides(hwdse.load_arch("dgx-h100"), {"device.memory.bandwidth_GBps": 8000.0})
    assert (dgx.area_mm2, dgx.power_W, dgx.cost_usd) == pytest.approx((8 * one.area_mm2, 8 * one.power_W,
                                                                       8 * one.cost_usd))


def test_a_gpu_without_a_floorplan_keeps_its_catalog_figures():
    mi300x = hwdse.load_arch("mi300x")
    assert mi300x.floorplan is None
    fast = with_overrides(mi300x, {"memory.bandwidth_GBps": 8000.0, "compute.peak_TOPS.bf16": 2000.0})
    assert (fast.area_mm2, fast.power_W) == (mi300x.area_mm2, mi300x.power_W)


def test_a_tensor_class_without_a_reference_is_an_error():
    with pytest.raises(HwdseError, match=r"floorplan: at_TOPS: no reference for compute.peak_TOPS.fp4"):
        with_overrides(hwdse.load_arch("h100-sxm"), {"compute.peak_TOPS.fp4": 4000.0})
    assert np.isfinite(with_overrides(hwdse.load_arch("h100-sxm"), {"compute.peak_TOPS.fp4": 4000.0,
                                                                    "floorplan.at_TOPS.fp4": 4000.0}).area_mm2)
