"""One power accounting for every kind: static power wherever a kind has a sourced basis for it."""

import math

import numpy as np
import pytest

from hwdse import evaluate, load_arch, serve_disaggregated
from hwdse._catalog import names
from hwdse.hardware.power import load_shared_power

# Spatial chips without a chip power (Graphcore: no sourced figure) are the only kind left without one.
NO_POWER_FIGURE = {"graphcore-bow", "graphcore-gc200"}
FORMAT = {"gddr6-aim": "bf16"}  # its units compute BF16 only (arch/gddr6-aim.yaml); the AttAcc units FP16 only


@pytest.mark.parametrize("name", names("arch"))
def test_every_catalog_system_charges_static_power_and_reports_energy(name: str) -> None:
    arch = load_arch(name)
    fmt = FORMAT.get(name, "fp16")
    ds = evaluate("llama-2-7b", arch, batch=1, prompt=128, gen=8, mode="roofline", weights=fmt, activations=fmt, kv=fmt)
    static, energy = float(ds.static_power_w), float(ds.energy_j_per_token)
    if name in NO_POWER_FIGURE:
        assert math.isnan(static)
        return
    assert static > 0 and np.isfinite(energy) and energy > 0


def test_a_gpu_without_power_measurements_takes_the_shared_fractions_of_its_tdp() -> None:
    shared, mi300x = load_shared_power(), load_arch("mi300x")
    assert mi300x.power is None
    assert mi300x.static_power_W == pytest.approx((shared.idle_fraction_of_tdp + shared.busy_fraction_of_tdp) * 750)
    h100 = load_arch("h100-sxm")
    assert h100.static_power_W == pytest.approx(h100.power.idle_W + h100.power.busy_W)  # its own block wins


def test_pim_charges_dram_background_and_its_hosts() -> None:
    aim, pim = load_arch("gddr6-aim"), load_arch("hbm3-pim")
    hosts = aim.cards.hosts(aim.devices)
    assert aim.static_power_W == pytest.approx(aim.devices * 0.08 + hosts * aim.cards.host_W)
    assert pim.static_power_W == pytest.approx(5 * 1.43)
    system = load_arch("dgx-a100-attacc")
    assert system.static_power_W == pytest.approx(system.xpu.static_power_W + system.pim.static_power_W)


def test_disaggregated_static_power_sums_both_pools() -> None:
    ds = serve_disaggregated("llama-2-70b", "dgx-h100", "dgx-a100-attacc", concurrency=32, isl=2048, osl=256,
                             weights="fp16", prefill_instances=2)
    expected = 2 * load_arch("dgx-h100").static_power_W + load_arch("dgx-a100-attacc").static_power_W
    assert float(ds.static_power_w) == pytest.approx(expected)
    assert np.isfinite(float(ds.energy_j_per_token))
