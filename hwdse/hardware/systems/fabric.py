"""Collectives over the links of a system: one scale-up domain, or nodes joined by a network.

:func:`collective_timing` times one collective over one link (alpha-beta formulas of
:mod:`hwdse.hardware.systems.interconnect`, or the member GPU's calibrated NCCL model in achieved mode);
:class:`Fabric` composes them hierarchically when the devices span nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hwdse._array import where
from hwdse._params import Number
from hwdse.hardware._base import Mode, Timing
from hwdse.hardware.gpu.efficiency import collective_s
from hwdse.hardware.systems.interconnect import Collective, Interconnect
from hwdse.workload.ops import Op

__all__ = ["Fabric", "collective_timing"]


def collective_timing(op: Op, link: Interconnect, kind: Collective, nbytes: Number, p: Number, device: Any,
                mode: Mode) -> Timing:
    """Timing of one collective instance over ``p`` devices; energy counts every device's sends.

    Roofline mode uses the link's alpha-beta formula; achieved mode the member GPU's NCCL model
    (``efficiency.collective``, calibrated or transferred) when it has one.
    """
    achieved = getattr(device, "achieved_efficiency", None)
    eff = achieved().collective if mode == "achieved" and achieved is not None else None
    if mode == "achieved" and eff is not None:
        seconds = collective_s(eff, kind, nbytes, p, link.bandwidth_Bps)
    else:
        seconds = link.time(kind, nbytes, p)
    return Timing(op, "interconnect", "communication", 0.0, 0.0, {"communication": seconds},
                  bandwidth_Bps=link.bandwidth_Bps, energy_J=link.energy(kind, nbytes, p))


@dataclass(frozen=True)
class Fabric:
    """The links of a system of nodes: ``link`` inside a node of ``node_devices`` devices (None: one
    node), ``scale_out`` between nodes (one NIC per device, rail-aligned: device i of every node on
    one rail).

    A collective over ``p`` devices that span ``k = p / g`` nodes (``g = min(p, node_devices)``) runs
    hierarchically, as NCCL does across nodes: reduce-scatter of the buffer ``n`` inside each node,
    an all-reduce of each device's ``n / g`` shard across the nodes on its rail, an all-gather inside
    the node (all-gather: the rail step then the node step; reduce-scatter: the reverse). Inside a
    node the member's calibrated NCCL model applies in achieved mode; the network steps use the
    alpha-beta formula of ``scale_out`` (no measured multi-node collectives to calibrate on). A
    pipeline send crosses the network on the ``k - 1`` of the ``pp - 1`` stage boundaries that
    leave a node (stages fill nodes in order).
    """

    link: Interconnect
    scale_out: Interconnect | None = None
    node_devices: Number | None = None

    def _nodes(self, p: Number) -> tuple[Number, Number]:
        """(devices per node in the group, nodes the group spans)."""
        if self.node_devices is None:
            return p, 1.0
        g = np.minimum(p, self.node_devices)
        return g, np.ceil(p / g)

    def collective(self, op: Op, kind: Collective, nbytes: Number, p: Number, device: Any, mode: Mode) -> Timing:
        inner = collective_timing(op, self.link, kind, nbytes, p, device, mode)
        if self.node_devices is None:
            return inner
        g, k = self._nodes(p)
        if kind == "all_to_all":  # the node-local share over NVLink, the rest over each device's NIC
            local = collective_timing(op, self.link, "all_to_all", nbytes * g / p, g, device, mode)
            remote = (p - g) / p * nbytes
            seconds = (local.serial_s["communication"] + remote / self.scale_out.bandwidth_Bps
                       + (k - 1) * self.scale_out.latency_s)
            energy = local.energy_J + p * remote * self.scale_out.energy_J_per_byte
        else:
            first, network, last = {"all_reduce": ("reduce_scatter", "all_reduce", "all_gather"),
                                    "all_gather": (None, "all_gather", "all_gather"),
                                    "reduce_scatter": ("reduce_scatter", "reduce_scatter", None)}[kind]
            in_node = [collective_timing(op, self.link, step, nbytes, g, device, mode) for step in (first, last) if step]
            # every rail (g of them) runs its network step at once
            seconds = sum(t.serial_s["communication"] for t in in_node) + self.scale_out.time(network, nbytes / g, k)
            energy = sum(t.energy_J for t in in_node) + g * self.scale_out.energy(network, nbytes / g, k)
        flat = k <= 1
        return replace(inner, serial_s={"communication": where(flat, inner.serial_s["communication"], seconds)},
                       energy_J=where(flat, inner.energy_J, energy))

    def p2p(self, op: Op, nbytes: Number, tp: Number, pp: Number, device: Any, mode: Mode) -> Timing:
        inner = collective_timing(op, self.link, "p2p", nbytes, pp, device, mode)
        if self.node_devices is None:
            return inner
        _, k = self._nodes(tp * pp)
        cross = where(pp > 1, (k - 1) / np.maximum(pp - 1, 1), 0.0)  # share of boundaries that leave a node
        net = self.scale_out.time("p2p", nbytes, pp)
        seconds = (1 - cross) * inner.serial_s["communication"] + cross * net
        energy = (1 - cross) * inner.energy_J + cross * self.scale_out.energy("p2p", nbytes, pp)
        return replace(inner, serial_s={"communication": seconds}, energy_J=energy)
