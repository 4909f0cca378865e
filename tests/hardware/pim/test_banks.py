"""The DRAM-timing-derived bank efficiency of PIM units (the ``derived`` basis) and achieved mode on PIM."""

import numpy as np
import pytest

from hwdse import serve_disaggregated
from hwdse._errors import HwdseError
from hwdse.hardware import load_arch, with_overrides
from hwdse.hardware.pim.banks import (
    DRAMTiming,
    bank_efficiency,
    load_dram_timing,
    refresh_efficiency,
    row_efficiency,
)
from hwdse.perf import evaluate
from hwdse.workload import Scenario, load_model, operator_table

PIMS = ("hbm3-pim", "hbm3-pim-bg", "hbm3-pim-buffer", "hbm-pim", "gddr6-aim")


def _column_s(pim) -> float:
    return 1.0 / (pim.units.clock_GHz * 1e9 * pim.units.power_derate)


def _changed(timing: DRAMTiming, **fields) -> DRAMTiming:
    return DRAMTiming.model_validate({**timing.model_dump(), **fields})


@pytest.mark.parametrize("name", PIMS)
def test_efficiency_is_below_one_and_above_the_serial_row_bound(name):
    """Below 1 (refresh always costs); above the worst case of a lone bank that overlaps nothing: one
    bank's row cycle (ACT, its columns, tRTP, PRE) per row, refresh on top."""
    pim = load_arch(name)
    t = pim.dram_timing
    eff = float(pim.bank_efficiency)
    columns = t.page_bytes / pim.units.bytes_per_cycle
    stream = columns * _column_s(pim)
    serial = stream + (t.tRCD_ns + t.tRTP_ns + t.tRP_ns) * 1e-9
    assert stream / serial * refresh_efficiency(t) <= eff < 1.0


def test_all_bank_lockstep_hides_nothing_and_interleaved_groups_hide_the_rows():
    """Bank-level units in all-bank mode pay every activation; bank-group and buffer-die units read one
    bank while the others activate, so only refresh is left."""
    bank, group, buffer = (load_arch(n) for n in ("hbm3-pim", "hbm3-pim-bg", "hbm3-pim-buffer"))
    t = bank.dram_timing
    assert float(row_efficiency(t, "bank", 1024, 32, _column_s(bank))) < 0.9
    for pim in (group, buffer):
        assert float(pim.bank_efficiency) == pytest.approx(float(refresh_efficiency(t)))
    assert float(bank.bank_efficiency) < float(group.bank_efficiency)


def test_refresh_and_row_switch_terms_move_the_efficiency_the_right_way():
    pim = load_arch("hbm3-pim")
    t, args = pim.dram_timing, ("bank", pim.units.per_device, pim.units.bytes_per_cycle, _column_s(pim))
    base = float(bank_efficiency(t, *args))
    assert float(bank_efficiency(_changed(t, tRFC_ns=2 * t.tRFC_ns), *args)) < base     # longer refresh
    assert float(bank_efficiency(_changed(t, tREFI_ns=t.tREFI_ns / 2), *args)) < base   # refresh more often
    assert float(bank_efficiency(_changed(t, tRCD_ns=2 * t.tRCD_ns), *args)) < base     # slower activation
    assert float(bank_efficiency(_changed(t, tRP_ns=2 * t.tRP_ns), *args)) < base       # slower precharge
    assert float(bank_efficiency(_changed(t, page_bytes=2 * t.page_bytes), *args)) > base  # fewer row switches
    assert float(bank_efficiency(_changed(t, tRFC_ns=0.0), *args)) == pytest.approx(
        float(row_efficiency(t, *args)))
    # a faster column rate leaves the fixed row overhead a larger share
    assert float(bank_efficiency(t, "bank", 1024, 32, _column_s(pim) / 2)) < base
    # tRAS binds when a row streams fewer columns than it must stay open
    short = float(row_efficiency(_changed(t, page_bytes=32.0), "bank", 1024, 32, _column_s(pim)))
    assert short == pytest.approx(_column_s(pim) / ((t.tRAS_ns + t.tRP_ns) * 1e-9))


def test_interleaved_units_are_paced_by_the_four_activation_window():
    """A bank-group unit hides its rows until tFAW, shared by the units of one window, outlasts a row."""
    group = load_arch("hbm3-pim-bg")
    t = group.dram_timing
    args = ("bank_group", group.units.per_device, group.units.bytes_per_cycle, _column_s(group))
    assert float(row_efficiency(t, *args)) == 1.0
    stream = t.page_bytes / group.units.bytes_per_cycle * _column_s(group)
    slow = _changed(t, tFAW_ns=2 * stream * 1e9)  # 4 units per window: one ACT each per tFAW
    assert float(row_efficiency(slow, *args)) == pytest.approx(0.5)


def test_efficiency_sweeps_over_an_overridden_clock():
    clock = np.array([0.2, 0.325, 0.65])
    pim = with_overrides(load_arch("hbm3-pim"), {"units.clock_GHz": clock})
    eff = np.asarray(pim.bank_efficiency)
    assert eff.shape == (3,) and np.all(np.diff(eff) < 0)


def test_bad_timing_is_one_line():
    t = load_dram_timing("hbm3")
    with pytest.raises(ValueError, match="tRFC_ns"):
        _changed(t, tRFC_ns=t.tREFI_ns)
    assert load_dram_timing("lpddr5x") is None
    untimed = with_overrides(load_arch("hbm3-pim"), {"memory.technology": "lpddr5x"})
    with pytest.raises(HwdseError, match="memory.technology") as err:
        untimed.bank_efficiency
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", PIMS)
def test_achieved_pim_time_is_at_least_the_roofline(name):
    pim = load_arch(name)
    fields = {"weights": pim.units.formats[0], "activations": pim.units.formats[0], "kv": pim.units.formats[0]}
    model = load_model("llama-2-7b")
    ops = operator_table(model, Scenario(batch=4, prompt=1024, **fields), "decode", 1024)
    roof, achieved = pim.schedule(ops, "roofline"), pim.schedule(ops, "achieved")
    eff = float(pim.bank_efficiency)
    for r, a in zip(roof, achieved):
        assert float(a.seconds) >= float(r.seconds)
        if a.unit == "pim" and (r.op.kind != "elementwise" or pim.units.vector_at == "units"):
            assert float(a.memory_s) == pytest.approx(float(r.memory_s) / eff)
            assert a.serial_s == r.serial_s  # link transfers and mode switches keep their cost
    assert pim.error_band("gemm") == pytest.approx((1 / eff - 1, 1 / eff - 1))


def test_a_gpu_pim_system_runs_its_host_achieved_and_its_units_derived():
    """dgx-a100-attacc in auto mode: achieved; the A100s' operators on their calibrated model, the PIM
    attention at the derived efficiency; the band is the wider of the two parts'."""
    system = load_arch("dgx-a100-attacc")
    scen = Scenario(batch=16, prompt=2048, weights="fp16", activations="fp16", kv="fp16")
    ops = operator_table(load_model("llama-2-7b"), scen, "decode", 2048)
    achieved = {t.op.name: t for t in system.schedule(ops, "achieved")}
    roof = {t.op.name: t for t in system.schedule(ops, "roofline")}
    host = {t.op.name: t for t in system.xpu.schedule(ops, "achieved")}
    attention = next(op.name for op in ops if op.kind == "attention")
    assert achieved["q_proj"].seconds == pytest.approx(host["q_proj"].seconds)
    assert achieved[attention].unit == "pim"
    assert achieved[attention].memory_s == pytest.approx(roof[attention].memory_s / float(system.pim.bank_efficiency))
    for term in ("communication", "mode_switch"):  # link and mode-switch costs are the roofline's
        assert achieved[attention].serial_s[term] == roof[attention].serial_s[term]
    ds = evaluate("llama-2-7b", system, scen, gen=16)
    assert ds.attrs["mode"] == "achieved" and ds.attrs["basis"] == "derived"
    pim_band = system.pim.error_band("decode_attention")[1]
    assert float(ds.tpot_band) >= pim_band > 0


def test_a_gpu_prefill_pool_with_a_pim_decode_pool_resolves_to_achieved():
    ds = serve_disaggregated("llama-2-7b", "dgx-h100", "dgx-a100-attacc", concurrency=32, isl=2048, osl=256,
                             prefill_instances=2)
    assert ds.attrs["mode"] == "achieved"
    assert (ds.attrs["prefill_basis"], ds.attrs["decode_basis"]) == ("calibrated", "derived")
