"""Links between devices (catalog ``arch/links/``) and alpha-beta collective costs per topology.

Every collective is costed with the alpha-beta model: a message of ``n`` bytes over one link
takes ``alpha + n / beta`` (``alpha`` = link latency in s, ``beta`` = bandwidth per direction
in B/s). ``nbytes`` is always the size of the *full* buffer one device holds (all-reduce: its
partial sums; all-gather: the gathered result; reduce-scatter: the input). With ``p`` devices:

``ring`` (and ``switch``: NCCL's ring algorithm through a full-bandwidth switch, each device
injecting at its per-direction link bandwidth):
    all-reduce      2 (p-1)/p * n / beta + 2 (p-1) alpha   (reduce-scatter then all-gather)
    all-gather      (p-1)/p * n / beta + (p-1) alpha
    reduce-scatter  (p-1)/p * n / beta + (p-1) alpha
``fully_connected`` (a direct link between every pair; ``beta`` is the bandwidth of ONE pair
link, each device drives its p-1 links at once):
    all-reduce      2 n / (p beta) + 2 alpha               (direct reduce-scatter + all-gather)
    all-gather / reduce-scatter   n / (p beta) + alpha
``torus2d`` (a sqrt(p) x sqrt(p) torus, ring algorithm along each dimension, each device
driving one link per dimension at ``beta``):
    all-reduce      2 (a-1)/a * n / beta + 2 (a-1)/a * n / (a beta) + 4 (a-1) alpha,  a = sqrt(p)
    all-gather / reduce-scatter   half of that
``mesh2d`` (the same grid without wrap-around links): as ``torus2d``, but each ring's closing edge
runs back over the a-1 links of its row in the other direction, so the latency hops double
    all-reduce      torus2d bandwidth term + 8 (a-1) alpha
all-to-all (``n`` = the buffer one device scatters, e.g. its tokens x top_k x hidden for an MoE
dispatch; each peer gets ``n / p``): ``switch`` pairwise exchange (p-1)/p * n / beta + (p-1) alpha;
``fully_connected`` n / (p beta) + alpha; ``ring`` and the grids forward each shard p/4 hops on
average through links of ``beta``: (p-1)/p * p/2 * n / beta + (p-1) alpha (a bound, not a tuned
algorithm).
point-to-point (any topology, one hop):  alpha + n / beta.

With ``p = 1`` every collective costs exactly 0. All costs are affine in ``nbytes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from hwdse._array import where
from hwdse._catalog import Spec, catalog_dir, load_in
from hwdse._errors import HwdseError
from hwdse._params import Number, quantity

__all__ = ["LinkSpec", "Interconnect", "Topology", "Collective", "load_link", "link_names", "collective_time",
           "bytes_sent"]

Topology = Literal["ring", "switch", "fully_connected", "torus2d", "mesh2d"]
Collective = Literal["all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p"]


class LinkSpec(Spec):
    """One device's scale-up port of a link technology: per-direction bandwidth, latency, energy."""

    name: str
    description: str = ""
    bandwidth_GBps: quantity(gt=0, unit="GB/s") = Field(description="per direction, per device (all lanes)")
    latency_us: quantity(ge=0, unit="us") = Field(description="one-hop latency (alpha)")
    energy_pJ_per_bit: quantity(ge=0, unit="pJ/bit")
    topology: Topology = "switch"
    sources: dict[str, str]


def _links_dir() -> Path:
    return catalog_dir("arch") / "links"


def link_names() -> list[str]:
    """Names of the link catalog entries (``arch/links/*.yaml``)."""
    return sorted(p.stem for p in _links_dir().glob("*.yaml"))


def load_link(name_or_path: str) -> LinkSpec:
    """A link from ``arch/links/`` by name, or a YAML path."""
    return load_in("arch/links", "link", name_or_path, LinkSpec)


class Interconnect(Spec):
    """The links of a system: a catalog link plus optional overrides (sweep these by dotted path)."""

    link: str | None = Field(None, description="arch/links catalog name; None: give bandwidth_GBps inline")
    topology: Topology | None = Field(None, description="default: the link's own topology (inline: switch)")
    bandwidth_GBps: quantity(gt=0, unit="GB/s") | None = Field(None, description="per direction; overrides the link")
    latency_us: quantity(ge=0, unit="us") | None = Field(None, description="inline default 0")
    energy_pJ_per_bit: quantity(ge=0, unit="pJ/bit") | None = Field(None, description="inline default NaN")

    def model_post_init(self, _context: object) -> None:
        if self.link is not None:
            load_link(self.link)  # unknown names fail at the boundary
        elif self.bandwidth_GBps is None:
            raise ValueError("interconnect: give a catalog link or bandwidth_GBps")

    def _get(self, field: str, inline: Number) -> Number:
        own = getattr(self, field)
        if own is not None:
            return own
        return getattr(load_link(self.link), field) if self.link is not None else inline

    @property
    def shape(self) -> Topology:
        return self.topology or (load_link(self.link).topology if self.link is not None else "switch")

    @property
    def bandwidth_Bps(self) -> Number:
        return self._get("bandwidth_GBps", np.nan) * 1e9

    @property
    def latency_s(self) -> Number:
        return self._get("latency_us", 0.0) * 1e-6

    @property
    def energy_J_per_byte(self) -> Number:
        return self._get("energy_pJ_per_bit", np.nan) * 8e-12

    def time(self, collective: Collective, nbytes: Number, p: Number) -> Number:
        """Seconds for one collective over ``p`` devices (see the module docstring)."""
        return collective_time(collective, nbytes, p, self.bandwidth_Bps, self.latency_s, self.shape)

    def energy(self, collective: Collective, nbytes: Number, p: Number) -> Number:
        """Joules for one collective: all bytes put on links by all devices x energy per byte."""
        return bytes_sent(collective, nbytes, p, self.shape) * self.energy_J_per_byte


def _steps(collective: Collective, p: Number, topology: Topology) -> tuple[Number, Number]:
    """(bandwidth factor f, latency hops h): time = f * nbytes / beta + h * alpha."""
    passes = 2.0 if collective == "all_reduce" else 1.0
    if collective == "p2p":
        return where(p > 1, 1.0, 0.0) * 1.0, where(p > 1, 1.0, 0.0) * 1.0
    if collective == "all_to_all" and topology in ("switch", "fully_connected"):  # pairwise exchange
        return ((p - 1) / p, p - 1) if topology == "switch" else (where(p > 1, 1.0 / p, 0.0), where(p > 1, 1.0, 0.0))
    if collective == "all_to_all":  # ring or grid: each shard hops halfway round on average
        return (p - 1) / p * p / 4 * 2, p - 1
    if topology in ("ring", "switch"):
        return passes * (p - 1) / p, passes * (p - 1)
    if topology == "fully_connected":
        return passes * where(p > 1, 1.0 / p, 0.0), passes * where(p > 1, 1.0, 0.0)
    if topology in ("torus2d", "mesh2d"):
        a = np.sqrt(p)
        hops = 2 * passes * (a - 1) * (2 if topology == "mesh2d" else 1)
        return passes * ((a - 1) / a + (a - 1) / (a * a)), hops
    raise HwdseError("interconnect", "topology", f"unknown topology {topology!r}")


def collective_time(collective: Collective, nbytes: Number, p: Number, bandwidth_Bps: Number,
                    latency_s: Number, topology: Topology = "ring") -> Number:
    """Alpha-beta time of one collective in seconds; exactly 0 for ``p = 1``."""
    f, h = _steps(collective, p, topology)
    return f * nbytes / bandwidth_Bps + h * latency_s


def bytes_sent(collective: Collective, nbytes: Number, p: Number, topology: Topology = "ring") -> Number:
    """Total bytes all ``p`` devices put on links for one collective (for energy)."""
    if collective == "p2p":
        return where(p > 1, 1.0, 0.0) * nbytes
    passes = 2.0 if collective == "all_reduce" else 1.0
    return passes * (p - 1) / p * nbytes * p  # all-to-all: (p-1)/p of each device's buffer leaves it
