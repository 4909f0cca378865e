"""Power budgets: no result draws more than its system's budget; the clock, time and energy follow the cap."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import hwdse
from hwdse import evaluate, serve
from hwdse.hardware.systems import with_parallelism
from hwdse.perf.power_cap import BISECTIONS, Work, capped
from hwdse.serving import serve_disaggregated

CATALOG = sorted(p.stem for p in (Path(hwdse.__file__).resolve().parents[1] / "arch").glob("*.yaml"))
FORMATS = {"gddr6-aim": "bf16"}  # AiM multiplies BF16 only
RTOL = 1e-6


@pytest.mark.parametrize("mode", ["auto", "roofline"])
@pytest.mark.parametrize("name", CATALOG)
def test_no_catalog_system_draws_more_than_its_budget(name: str, mode: str) -> None:
    fmt = FORMATS.get(name, "fp16")
    ds = evaluate("llama-3-8b", name, mode=mode, batch=np.array([1.0, 64.0, 512.0]), prompt=2048, gen=128,
                  weights=fmt, activations=fmt, kv=fmt)
    budget = np.asarray(ds.power_w)
    feasible = np.asarray(ds.feasible)
    assert feasible.any(), ds.attrs["infeasible_reason"]
    assert np.isfinite(np.asarray(ds.energy_j)[feasible]).all()
    if np.isfinite(budget).all():
        assert (np.asarray(ds.avg_power_w)[feasible] <= budget * (1 + RTOL)).all()
        assert (np.asarray(ds.prefill_clock) <= 1).all() and (np.asarray(ds.decode_clock) <= 1).all()


@pytest.mark.parametrize("name, tp", [("b200", 1), ("gb200", 1), ("mi300x", 1), ("h200", 8), ("h100-sxm", 1)])
def test_serving_stays_within_the_budget_at_every_load(name: str, tp: int) -> None:
    arch = hwdse.load_arch(name) if tp == 1 else with_parallelism(hwdse.load_arch(name), tp)
    ds = serve("llama-3-70b", arch, concurrency=np.array([1.0, 16.0, 64.0, 256.0, 1024.0]), isl=2048, osl=512,
               weights="fp8-e4m3")
    assert (ds.avg_power_w <= float(arch.power_W) * (1 + RTOL)).all()


def test_a_disaggregated_result_stays_within_both_pools_budgets() -> None:
    pre, dec = hwdse.load_arch("b200"), hwdse.load_arch("b200")
    ds = serve_disaggregated("llama-3-70b", pre, dec, concurrency=np.array([8.0, 256.0]), isl=4096, osl=256,
                             prefill_instances=2, decode_instances=1, weights="fp8-e4m3")
    assert (ds.avg_power_w <= 3 * pre.power_W * (1 + RTOL)).all()


def test_a_budget_throttles_compute_bound_prefill_and_saves_core_energy() -> None:
    """B200 FP8 prefill of a 256-prompt batch: power-bound at its 1000 W TDP. Without the budget it runs
    at the rated clock, faster and hotter; under it the clock drops, TTFT grows by less than the clock
    falls (memory-bound operators keep their time) and the dynamic energy falls (V^2)."""
    scen = dict(batch=256, prompt=2048, gen=64, weights="fp8-e4m3", activations="fp8-e4m3", kv="fp8-e4m3")
    b200 = hwdse.load_arch("b200")
    capped_ds = evaluate("llama-3-70b", b200, **scen)
    free = evaluate("llama-3-70b", b200.model_copy(update={"tdp_W": 1e6}), **scen)
    clock = float(capped_ds.prefill_clock)
    assert 0.4 < clock < 1 and float(free.prefill_clock) == 1
    assert float(free.ttft_s) < float(capped_ds.ttft_s) < float(free.ttft_s) / clock
    assert float(capped_ds.dynamic_energy_j) < float(free.dynamic_energy_j)
    assert float(free.avg_power_w) > 1000 >= float(capped_ds.avg_power_w) * (1 - RTOL)


def test_memory_bound_work_over_budget_is_paid_for_at_the_budget() -> None:
    """Traffic whose DRAM energy alone exceeds the headroom cannot be sped up by the core clock: at the
    lowest clock it takes its energy over (budget - static), so it draws the budget exactly."""
    arch = hwdse.load_arch("h100-sxm").model_copy(update={"tdp_W": 400.0})
    static = arch.static_power_W
    work = Work(seconds=1e-3, clocked_s=0.0, joules=0.5, core_j=0.05)  # 500 W dynamic, memory-bound
    seconds, joules, clock = capped(arch, work)
    assert clock == pytest.approx(arch.throttle_curve.min_clock_fraction)
    assert joules < work.joules
    assert static + joules / seconds == pytest.approx(400.0, rel=1e-9)


def test_no_budget_means_no_throttling() -> None:
    work = Work(seconds=1e-3, clocked_s=1e-3, joules=10.0, core_j=10.0)
    pim = hwdse.load_arch("hbm3-pim")
    assert capped(pim, work) == (work.seconds, work.joules, 1.0)


def test_the_supply_curve_is_rated_at_one_and_falls_with_the_clock() -> None:
    curve = hwdse.load_arch("h100-sxm").throttle_curve
    assert curve.voltage_fraction(1.0) == pytest.approx(1.0)
    volts = curve.voltage_fraction(np.array([0.4, 0.6, 0.8, 0.95, 1.0]))
    assert (np.diff(volts) > 0).all() and volts[0] == pytest.approx(0.6 / 0.95)


def test_the_bisection_of_the_over_budget_points_alone_equals_it_over_the_whole_grid() -> None:
    """``capped`` bisects only the points over budget; every point's clock, time and energy equal those of
    the bisection run over the whole grid (the same arithmetic, uncapped points discarded), bit for bit."""
    arch = hwdse.load_arch("h100-sxm")
    curve, budget, static = arch.throttle_curve, arch.power_W, arch.static_power_W
    seconds = xr.DataArray(np.geomspace(1e-4, 1e-2, 7), dims="s")
    joules = xr.DataArray(np.geomspace(1e-3, 20.0, 9), dims="j")
    work = Work(seconds=seconds, clocked_s=0.6 * seconds, joules=joules, core_j=0.7 * joules)
    t, j, clock = capped(arch, work)

    lo, hi = curve.min_clock_fraction + 0.0 * seconds * joules, 1.0 + 0.0 * seconds * joules
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        s, e = work.at(mid, curve.voltage_fraction(mid))
        fits = static + e / s <= budget
        lo, hi = xr.where(fits, mid, lo), xr.where(fits, hi, mid)
    s, e = work.at(1.0, 1.0)
    over = static + e / s > budget
    expected = xr.where(over, lo, 1.0)
    assert 0 < float(over.mean()) < 1
    assert clock.dims == expected.dims and np.array_equal(clock.values, expected.values)
    s, e = work.at(expected, curve.voltage_fraction(expected))
    stretch = xr.where(over, np.maximum(e / (budget - static) / s, 1.0), 1.0)
    assert np.array_equal(t.values, (s * stretch).transpose(*t.dims).values)
    assert np.array_equal(j.values, e.transpose(*j.dims).values)
