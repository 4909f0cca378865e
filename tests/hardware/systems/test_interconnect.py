"""Links catalog and alpha-beta collective formulas (hwdse.hardware.systems.interconnect)."""

import numpy as np
import pytest
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.hardware.systems.interconnect import Interconnect, bytes_sent, collective_time, link_names, load_link

BW, ALPHA, N = 100e9, 1e-6, 64e6


@pytest.mark.parametrize("name", link_names())
def test_every_link_number_has_a_source(name):
    link = load_link(name)
    numeric = [k for k, v in link.model_dump().items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert numeric
    for key in numeric:
        assert any(key == p or key.startswith(p + ".") for p in link.sources), f"{name}: {key} has no source"


def test_catalog_has_the_named_links():
    assert {"nvlink3", "nvlink4", "nvlink5", "pcie4", "pcie5", "groq-c2c", "ipu-link", "cerebras-swarm"} <= set(link_names())
    assert load_link("nvlink4").bandwidth_GBps == 450


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_ring_formulas(p):
    assert collective_time("all_reduce", N, p, BW, ALPHA, "ring") == pytest.approx(
        2 * (p - 1) / p * N / BW + 2 * (p - 1) * ALPHA)
    for kind in ("all_gather", "reduce_scatter"):
        assert collective_time(kind, N, p, BW, ALPHA, "ring") == pytest.approx((p - 1) / p * N / BW + (p - 1) * ALPHA)
    assert collective_time("p2p", N, p, BW, ALPHA, "ring") == pytest.approx(N / BW + ALPHA)
    # a switch runs NCCL's ring algorithm at the per-device port bandwidth
    assert collective_time("all_reduce", N, p, BW, ALPHA, "switch") == collective_time("all_reduce", N, p, BW, ALPHA, "ring")


@pytest.mark.parametrize("p", [4, 16])
def test_fully_connected_and_torus(p):
    assert collective_time("all_reduce", N, p, BW, ALPHA, "fully_connected") == pytest.approx(2 * N / (p * BW) + 2 * ALPHA)
    a = np.sqrt(p)
    want = 2 * (a - 1) / a * N / BW + 2 * (a - 1) / a * N / (a * BW) + 4 * (a - 1) * ALPHA
    assert collective_time("all_reduce", N, p, BW, ALPHA, "torus2d") == pytest.approx(want)
    mesh = collective_time("all_reduce", N, p, BW, ALPHA, "mesh2d")
    assert mesh == pytest.approx(want + 4 * (a - 1) * ALPHA)


@pytest.mark.parametrize("topology", ["ring", "switch", "fully_connected", "torus2d", "mesh2d"])
@pytest.mark.parametrize("kind", ["all_reduce", "all_gather", "reduce_scatter", "p2p"])
def test_one_device_costs_nothing(topology, kind):
    assert collective_time(kind, N, 1, BW, ALPHA, topology) == 0
    assert bytes_sent(kind, N, 1, topology) == 0


def test_all_reduce_grows_with_devices_and_sweeps_over_dataarrays():
    p = xr.DataArray([2, 4, 8], dims="tp")
    t = collective_time("all_reduce", N, p, BW, ALPHA, "ring")
    assert t.dims == ("tp",) and bool((t.diff("tp") > 0).all())
    # ring all-reduce puts 2 (p-1)/p n bytes per device on the links
    assert bytes_sent("all_reduce", N, 4) == pytest.approx(2 * 3 / 4 * N * 4)


def test_interconnect_overrides_and_errors():
    ic = Interconnect(link="nvlink3", bandwidth_GBps=600)
    assert ic.bandwidth_Bps == 600e9 and ic.latency_s == pytest.approx(0.96e-6) and ic.shape == "switch"
    inline = Interconnect(bandwidth_GBps=10, topology="ring")
    assert inline.latency_s == 0 and inline.time("all_reduce", 1e9, 2) == pytest.approx(1e9 / 10e9)
    with pytest.raises(Exception, match="unknown link"):
        Interconnect(link="nvlink9")
    with pytest.raises(HwdseError, match="unknown link"):
        load_link("nope")
