"""Error bands of predictions and verdicts that say whether a difference exceeds them."""

import numpy as np
import pytest

from hwdse import evaluate, load_arch, serve, serve_disaggregated
from hwdse.perf.uncertainty import exceeds
from hwdse.report.pim_study import crossovers, pim_vs_gpu


def test_a_phase_band_is_its_kernel_families_bands_weighted_by_time() -> None:
    h100 = load_arch("h100-sxm")
    p90 = [p for _, p in h100.efficiency.held_out.values()]
    ds = evaluate("llama-2-7b", h100, batch=8, prompt=1024, gen=64)
    for band in (float(ds.ttft_band), float(ds.tpot_band)):
        assert min(p90) <= band <= max(p90)
    # decode of a long context is attention-heavy: its band leans to decode attention's p90
    long = evaluate("llama-2-7b", h100, batch=64, prompt=16384, gen=64)
    assert float(long.tpot_band) > float(ds.tpot_band)
    roof = evaluate("llama-2-7b", h100, batch=8, prompt=1024, gen=64, mode="roofline")
    assert np.isnan(float(roof.tpot_band)) and roof.attrs["basis"] == "roofline"  # a bound has no band
    moved = evaluate("llama-2-7b", "mi300x", batch=8, prompt=1024, gen=64)
    assert float(moved.tpot_band) > float(ds.tpot_band)  # transferred: the leave-device-out errors, wider


def test_an_energy_band_is_its_time_band_plus_the_power_models() -> None:
    """H100 (own power fit: its runs' leave-one-out p90); MI300X (no power data: the measured GPUs predicted
    from each other's fractions of TDP); a PIM device has no measured power either, so it takes that same
    transferred band (one basis for every kind without power data)."""
    h100 = load_arch("h100-sxm")
    ds = evaluate("llama-2-7b", h100, batch=8, prompt=1024, gen=64)
    time_band = (float(ds.ttft_s * ds.ttft_band) + 64 * float(ds.tpot_s * ds.tpot_band)) / float(ds.e2e_s)
    assert float(ds.energy_band) == pytest.approx(time_band + h100.power.held_out_p90, rel=1e-12)
    assert 0.1 < h100.power.held_out_p90 < 0.3
    shared = load_arch("mi300x").power_band
    assert shared is not None and shared > 0 and load_arch("mi300x").power is None
    pim = evaluate("llama-2-7b", "hbm3-pim", batch=8, prompt=1024, gen=64)
    pim_time = (float(pim.ttft_s * pim.ttft_band) + 64 * float(pim.tpot_s * pim.tpot_band)) / float(pim.e2e_s)
    assert load_arch("hbm3-pim").power_band == shared
    assert float(pim.energy_band) == pytest.approx(pim_time + shared, rel=1e-12)


def test_serving_results_carry_bands_on_their_basis() -> None:
    ds = serve("llama-3-8b", "h100-sxm", concurrency=np.array([1.0, 64.0]), isl=1024, osl=256)
    assert np.all((ds.ttft_band > 0.05) & (ds.tpot_band > 0.05) & (ds.energy_band > ds.tpot_band))
    roof = serve("llama-3-8b", "h100-sxm", concurrency=8.0, mode="roofline")
    assert np.isnan(float(roof.tpot_band)) and np.isnan(float(roof.energy_band))
    pools = serve_disaggregated("llama-2-70b", "dgx-h100", "dgx-a100-attacc", concurrency=32, isl=2048, osl=256,
                                weights="fp16", prefill_instances=2)
    assert pools.attrs["basis"] == "calibrated/derived" and float(pools.tpot_band) > 0
    # the PIM pool's power was never measured: the transferred band of a device without power data
    assert float(pools.energy_band) == pytest.approx(float(pools.tpot_band) + load_arch("hbm3-pim").power_band)


@pytest.mark.parametrize("a, b, band_a, band_b, verdict", [(1.5, 1.0, 0.2, 0.2, 1.0), (1.3, 1.0, 0.2, 0.2, 0.0),
                                                           (1.5, 1.0, np.nan, 0.2, np.nan)])
def test_a_difference_exceeds_the_bands_only_beyond_their_sum(a, b, band_a, band_b, verdict) -> None:
    assert np.array_equal(exceeds(a, b, band_a, band_b), verdict, equal_nan=True)


def test_verdicts_say_when_a_win_is_within_the_bands() -> None:
    data = pim_vs_gpu([1, 64], [512], 32, models=["llama-2-7b"],
                      systems={"GPU": ("h100-sxm", "bf16"), "MI300X": ("mi300x", "bf16")})
    record = crossovers(data)[0]
    assert isinstance(record["beyond_band"], list)
    tput = data.decode_tok_s.sel(model="llama-2-7b", prompt=512)
    band = data.tpot_band.sel(model="llama-2-7b", prompt=512)
    for i, batch in enumerate(data.batch.values):
        gap = abs(float(tput.sel(system="MI300X")[i] / tput.sel(system="GPU")[i]) - 1)
        assert (batch in record["beyond_band"]) == (gap > float(band.sel(system="MI300X")[i] + band.sel(system="GPU")[i]))
    pim = {"GPU": ("dgx-a100", "fp16"), "AttAcc": ("dgx-a100-attacc", "fp16")}
    bounds = pim_vs_gpu([1], [512], 32, models=["llama-2-7b"], systems=pim, mode="roofline")
    assert crossovers(bounds)[0]["beyond_band"] is None  # roofline bounds: no verdict beyond them
    derived = pim_vs_gpu([1], [512], 32, models=["llama-2-7b"], systems=pim)  # PIM units: the derived band
    assert isinstance(crossovers(derived)[0]["beyond_band"], list)
    assert float(derived.tpot_band.sel(system="AttAcc").max()) > 0
