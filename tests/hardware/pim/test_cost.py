"""PIM build cost on the GPUs' basis: chips/stacks priced as the plain technology's, card controllers by the
card; a GPU + PIM system sums its parts (validation/cost_sources.md §8)."""

import math

import numpy as np
import pytest
import yaml

import hwdse
from hwdse._catalog import catalog_dir
from hwdse.hardware import with_overrides
from hwdse.serving import serve

GiB = 2**30


def _yaml(folder: str, name: str) -> dict:
    return yaml.safe_load((catalog_dir(folder) / f"{name}.yaml").read_text())


def test_aim_costs_its_chips_at_the_plain_gddr6_price_plus_its_card_controllers() -> None:
    """Recomputed from the YAML files alone: 1280 chips x one 16 Gb GDDR6 device's price, 40 cards x card_usd."""
    arch, tech = _yaml("arch", "gddr6-aim"), _yaml("memory", "gddr6")
    chips = arch["devices"] * arch["memory"]["count"]
    per_chip = tech["capacity_GiB"] * GiB / 1e9 * tech["usd_per_GB"]
    cards = math.ceil(arch["devices"] / arch["cards"]["devices_per_card"])
    want = chips * per_chip + cards * arch["cards"]["card_usd"]
    aim = hwdse.load_arch("gddr6-aim")
    assert aim.cost_usd == pytest.approx(want, rel=1e-12)
    assert 9000 < aim.cost_usd < 10000  # 1280 x $7.22 + 40 x $7.2


def test_a_pim_die_costs_the_plain_die_so_usable_dollars_per_gb_rise_by_one_over_capacity_fraction() -> None:
    aim = hwdse.load_arch("gddr6-aim")
    memory_usd = aim.cost_usd - aim.cards.cards(aim.devices) * aim.cards.card_usd
    assert memory_usd / (aim.capacity_bytes / 1e9) == pytest.approx(aim.memory.tech.usd_per_GB / aim.capacity_fraction)
    full = with_overrides(aim, {"capacity_fraction": 1.0})
    assert full.cost_usd == pytest.approx(aim.cost_usd)  # capacity lost, not dollars saved
    assert with_overrides(aim, {"devices": 2560}).cost_usd == pytest.approx(2 * aim.cost_usd)


def test_pim_without_cards_costs_its_stacks_and_an_unpriced_part_gives_nan() -> None:
    attacc = hwdse.load_arch("hbm3-pim")  # 5 HBM3 stacks of 16 GiB, no cards
    assert attacc.cost_usd == pytest.approx(5 * 16 * GiB / 1e9 * _yaml("memory", "hbm3")["usd_per_GB"])
    assert math.isnan(with_overrides(hwdse.load_arch("gddr6-aim"), {"cards.card_usd": None}).cost_usd)
    assert math.isnan(with_overrides(attacc, {"memory.technology": "gddr6x"}).cost_usd)  # no GDDR6X price


def test_gpu_pim_cost_is_the_xpu_plus_separate_pim_devices_and_shared_stacks_are_not_counted_twice() -> None:
    system = hwdse.load_arch("dgx-a100-attacc")
    gpu, device = hwdse.load_arch("a100-hbm3").cost_usd, hwdse.load_arch("hbm3-pim").cost_usd
    assert system.xpu.cost_usd == pytest.approx(8 * gpu)
    assert system.cost_usd == pytest.approx(8 * gpu + 8 * device)
    shared = hwdse.load_arch("a100-hbm3-pim")  # HBM-PIM in place of the A100's own stacks
    assert shared.attach == "shared" and shared.cost_usd == pytest.approx(gpu)


def test_aim_serving_reports_a_finite_cost_per_token() -> None:
    ds = serve("llama-2-70b", "gddr6-aim", concurrency=16, weights="bf16", isl=2048, osl=256)
    assert float(ds.cost_usd) == pytest.approx(hwdse.load_arch("gddr6-aim").cost_usd)
    assert np.isfinite(float(ds.usd_per_mtoken)) and float(ds.usd_per_mtoken) > 0


def test_the_server_share_is_charged_per_slot_a_card_of_chips_or_a_device() -> None:
    """A carded PIM system occupies one server slot per card, not per chip; a GPU + PIM system one per GPU and
    per separate PIM device; disaggregated pools add theirs."""
    from hwdse.perf.economics import Economics, server_slots
    from hwdse.serving import serve_disaggregated

    share = Economics().server_usd_per_device
    aim = hwdse.load_arch("gddr6-aim")
    assert server_slots(aim) == 40 and server_slots(hwdse.load_arch("dgx-a100-attacc")) == 16
    ds = serve("llama-2-70b", aim, concurrency=16, weights="bf16", isl=2048, osl=256)
    assert float(ds.system_cost_usd) == pytest.approx(aim.cost_usd + 40 * share)
    pools = serve_disaggregated("llama-2-70b", "dgx-a100", aim, concurrency=16, prefill_instances=2, weights="bf16",
                                isl=2048, osl=256)
    gpu = hwdse.load_arch("dgx-a100")
    assert float(pools.system_cost_usd) == pytest.approx(2 * gpu.cost_usd + aim.cost_usd + (16 + 40) * share)
