"""The serving view of PIM versus GPU: each system at its best operating point, on one basis."""

import numpy as np
import pytest
import xarray as xr

from hwdse.hardware import load_arch, with_overrides
from hwdse.report import pim_serving
from hwdse.report.pim_serving import Candidate, serving_comparison
from hwdse.serving import serve, serve_disaggregated

HOST_W = load_arch("gddr6-aim").cards.host_W
SMALL = {
    "GPU": Candidate("dgx-a100-x2", "fp16", {"TP8": {"tp": 8}, "TP16 (2 nodes)": {"tp": 16}}, {"host_W": HOST_W}),
    "AiM": Candidate("gddr6-aim", "bf16", {"tensor": {}, "5 replicas": {"replicas": 5}}),
    "AiM-64": Candidate("gddr6-aim", "bf16", {"tensor": {"devices": 64}}),  # 32 GB: no 70B model fits
}
TIERS = {"server": (2.0, 0.2), "interactive": (0.45, 0.04)}


@pytest.fixture(scope="module")
def data():
    return serving_comparison(["llama-2-70b"], [2048.0], osl=128, candidates=SMALL, traffic=TIERS)


def _grid(candidate: Candidate, deployment: str, overrides: dict) -> xr.Dataset:
    """One option over the report's operating grid, served independently of the report's code."""
    fmt = dict(weights=candidate.fmt, isl=2048.0, osl=128, mode=pim_serving.DEFAULT_MODE)
    c = pim_serving.CONCURRENCY[:, None, None]
    if deployment == "aggregated":
        ds = serve("llama-2-70b", candidate.arch, concurrency=c[:, 0, 0], overrides=overrides, **fmt)
    else:
        arch, pre = pim_serving.PREFILL
        ds = serve_disaggregated("llama-2-70b", with_overrides(load_arch(arch), pre),
                                 with_overrides(load_arch(candidate.arch), overrides), concurrency=c,
                                 prefill_instances=pim_serving.PREFILL_INSTANCES[None, :, None],
                                 decode_instances=pim_serving.DECODE_INSTANCES[None, None, :], **fmt)
    return ds


@pytest.mark.parametrize("system", ["GPU", "AiM"])
@pytest.mark.parametrize("tier", list(TIERS))
def test_each_system_is_scored_at_the_best_point_of_every_option(data, system, tier):
    """The chosen goodput per kW is the largest over every mapping, deployment, concurrency and pool ratio whose
    mean TTFT and TPOT meet the tier (ties within 1 % may pick the lower TPOT)."""
    ttft, tpot = TIERS[tier]
    cand = SMALL[system]
    best = 0.0
    for deployment in ("aggregated", "disaggregated"):
        for overrides in cand.mappings.values():
            ds = _grid(cand, deployment, {**cand.basis, **overrides})
            ok = ds.stable & (ds.ttft_s <= ttft) & (ds.tpot_s <= tpot)
            best = max(best, float((ds.throughput_tok_s / ds.avg_power_w * 1e3).where(ok, 0.0).max()))
    cell = data.sel(model="llama-2-70b", context=2048.0, traffic=tier, system=system)
    assert float(cell.goodput_per_kw) == pytest.approx(best, rel=0.0101)
    assert bool(cell.serves) == (best > 0)
    if best > 0:
        assert float(cell.tpot_s) <= tpot and float(cell.ttft_s) <= ttft
        assert str(cell.deployment.values) in ("aggregated", "disaggregated")
        assert str(cell.mapping.values) in cand.mappings


def test_every_system_on_one_power_basis(data):
    """Hosts charged to every system: a GPU TP8 instance carries one 590 W host as AiM's model carries its five."""
    gpu = with_overrides(load_arch("dgx-a100-x2"), {"tp": 8, "host_W": HOST_W})
    plain = with_overrides(load_arch("dgx-a100-x2"), {"tp": 8})
    assert gpu.static_power_W - plain.static_power_W == pytest.approx(HOST_W)
    assert load_arch("gddr6-aim").static_power_W >= 5 * HOST_W
    assert data.attrs["mode"] == "achieved"


def test_a_system_that_cannot_hold_the_model_says_why_and_never_leads(data):
    cell = data.sel(model="llama-2-70b", context=2048.0, system="AiM-64")
    assert not cell.fits.any() and not cell.serves.any()
    assert all("capacity" in str(r) for r in cell.reason.values)
    assert (cell.goodput_per_kw == 0).all()


def test_the_disaggregated_option_is_searched_over_the_pool_ratio(data):
    aim = data.sel(model="llama-2-70b", context=2048.0, system="AiM")
    assert (aim.best_disaggregated > 0).any()
    pooled = aim.where(aim.deployment == "disaggregated", drop=True)
    for tier in pooled.traffic.values:
        p = pooled.sel(traffic=tier)
        assert float(p.prefill_instances) in pim_serving.PREFILL_INSTANCES
        assert float(p.decode_instances) in pim_serving.DECODE_INSTANCES
    assert np.isfinite(aim.energy_band).all() and (aim.energy_band > 0).all()
