"""Cost of ownership: a system's build cost amortized over its life plus the electricity it draws.

``usd_per_hour = (cost_usd + slots x server_usd_per_device) / life + avg_power x PUE x price``
and ``usd_per_mtoken = usd_per_hour / (tokens/s x 3600) x 10^6``, for the tokens the result
reports (a static batch's generated tokens over its wall time, or a server's output tokens/s).
``cost_usd`` is the devices' cost to build (:mod:`hwdse.hardware.cost`), NaN where a kind has no
cost model; the server share covers CPUs, switches, NICs and chassis around each device in a server slot
(:func:`server_slots`: a GPU, a PIM card of many chips).

Defaults (a US deployment, sources in ``validation/cost_sources.md`` §4 and §6):
``amortization_years`` 5 (the server lives Amazon and Meta book, 10-K filings; Microsoft and
Alphabet book 6, Epoch's models 3); ``usd_per_kWh`` 0.0806 (EIA, US industrial 2023);
``pue`` 1.58 (Uptime Institute 2023 survey average; hyperscale sites run below 1.4);
``server_usd_per_device`` 4,001 (SemiAnalysis: a DGX H100's non-GPU parts, about $32,010 / 8,
via Epoch's training-cost-trends notebook); ``price_to_cost`` 1 (designs compared at their cost
to build; a buyer of an H100 pays about 8x its estimated $3,320 build cost, $25,000-30,000,
Raymond James via TechSpot: set it to compare at market prices).
"""

from __future__ import annotations

from typing import Any

from hwdse._catalog import Spec
from hwdse._params import Number, quantity

__all__ = ["Economics", "ownership", "server_slots"]

HOUR_S = 3600.0
YEAR_H = 365.25 * 24


class Economics(Spec):
    """The ownership scenario: amortization, electricity price, facility overhead, server share."""

    amortization_years: quantity(gt=0, unit="year") = 5.0
    usd_per_kWh: quantity(ge=0, unit="USD/kWh") = 0.0806
    pue: quantity(ge=1) = 1.58
    server_usd_per_device: quantity(ge=0, unit="USD") = 4001.0
    price_to_cost: quantity(gt=0) = 1.0


def server_slots(arch: Any) -> Number:
    """Server slots a system occupies (what the per-device server share is charged on): its ``server_slots``
    where it has cards of many devices (a standalone PIM system), else its devices."""
    return getattr(arch, "server_slots", getattr(arch, "devices", 1))


def ownership(cost_usd: Number, slots: Number, avg_power_w: Number, tokens_per_s: Number,
              economics: Economics | None = None) -> dict[str, tuple[Any, str, str]]:
    """The cost variables of a result: build cost, hourly cost and cost per million tokens."""
    e = economics or Economics()
    system = cost_usd * e.price_to_cost + slots * e.server_usd_per_device
    hourly = system / (e.amortization_years * YEAR_H) + avg_power_w * e.pue * e.usd_per_kWh / 1000
    return {
        "cost_usd": (cost_usd, "USD", "devices' cost to build: dies, memory, package (NaN: no cost model)"),
        "system_cost_usd": (system, "USD", "cost_usd x price_to_cost plus the server share per slot"),
        "usd_per_hour": (hourly, "USD/h", "amortized build cost plus electricity at the mean power x PUE"),
        "usd_per_mtoken": (hourly / (tokens_per_s * HOUR_S) * 1e6, "USD/Mtoken", "cost per million output tokens"),
    }
