"""Mapping a standalone PIM system onto ``replicas x stages`` groups of devices (:class:`hwdse.hardware.pim.PIM`).

``replicas`` model copies each hold the whole model on ``devices / replicas`` devices; each replica's
``L`` layers are split into ``stages`` groups of consecutive layers, each on ``devices / (replicas x
stages)`` devices: its operators run on those devices alone (the tensor mapping of
:mod:`hwdse.hardware.pim.device` over one group: its inputs broadcast and outputs gathered over that
group's cards and hosts only, its controller work on that group's controller path). ``replicas =
stages = 1`` is the tensor mapping over the whole system.

Sequences never split: a replica's share of a batch of ``B`` sequences is ``ceil(B / replicas)`` (the
busiest replica sets the step), and a decode microbatch holds ``ceil(seqs / stages)`` whole sequences, so
up to ``stages`` microbatches are in flight (continuous batching's pipeline); a prefill pass splits a
replica's prompts into ``stages`` microbatches of tokens. With one group nothing is split and a fractional
batch is a mean, as in the tensor mapping. The critical-path counts are the pipeline's of
:mod:`hwdse.hardware.systems.multi` (:func:`~hwdse.hardware.systems.multi.shard_ops` with ``tp = 1``): a
decode step is ``L`` layer times at one microbatch's size plus ``stages - 1`` stage sends; a prefill pass
``L + (stages - 1) ceil(L / stages)`` layer times. Work versus time as there: a returned operator's
``count`` is its critical-path slots, its ``energy_J`` and its op's flops and bytes carry all the
system's work per slot (``count x energy_J``: every replica's and microbatch's energy), its peaks the
whole system's.

Placement: groups take consecutive devices in replica order, cards hold consecutive devices and hosts
consecutive cards. A group is whole cards (a smaller group would share its card's link and controller
with other groups, which is not modelled, so it is rejected); a group of several cards may straddle two
hosts (e.g. 8 replicas of 5 cards on hosts of 8 cards): its crossings then pay the network, and the
widest group sets the time while energy takes the mean over the groups. A stage send moves one
microbatch's residual stream up its card's link to its host, over the network where the next stage's
first card sits on another host, and down the next card's link; the replica with the most host
crossings sets the time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hwdse._array import where
from hwdse._params import Number
from hwdse.hardware._base import Timing
from hwdse.hardware.energy import dram_energy_J
from hwdse.hardware.systems.multi import is_decode_table, microbatch, per_slot, shard_ops, work_share
from hwdse.workload.ops import Op

Cards = Any  # a PIM system's packaging, :class:`hwdse.hardware.pim.device.PIMCards` (device.py imports this module)

__all__ = ["Group", "Plan", "stage_group", "plan", "mapping_error", "stage_send"]


@dataclass(frozen=True)
class Group:
    """One stage group of a mapped system and how the groups sit on cards and hosts."""

    groups: Number          # replicas x stages
    devices: Number         # PIM devices of one group
    cards: Number           # cards of one group
    hosts: Number           # hosts the widest group spans (times)
    narrow_hosts: Number    # hosts the other groups span
    wide: Number            # share of groups spanning narrow_hosts + 1 hosts (energies)
    crossings: Number       # stage boundaries leaving a host, in the replica with the most (times)
    mean_crossings: Number  # the same, mean over the replicas (energies)


def stage_group(devices: Number, replicas: Number, stages: Number, cards: Cards | None) -> Group:
    """Where the ``replicas x stages`` groups of ``devices`` sit (see the module docstring)."""
    groups = replicas * stages
    per_group = devices / groups
    if cards is None:  # every device on the controller's own link (one group: mapping_error)
        return Group(groups, per_group, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    per_host = cards.devices_per_card * cards.cards_per_host
    fewest, wide = _inside(devices, per_group, per_host)
    at_ends = _lcm(per_group, per_host)  # host boundaries that are group boundaries
    crossed, more = _inside(devices, stages * per_group, at_ends)
    return Group(groups, per_group, cards.cards(per_group), 1 + fewest + (wide > 0), 1 + fewest, wide,
                 crossed + (more > 0), crossed + more)


def _inside(total: Number, length: Number, step: Number) -> tuple[Number, Number]:
    """Multiples of ``step`` strictly inside each interval of ``length`` tiling ``(0, total)`` (integers): the
    fewest any interval holds (``floor((length - 1) / step)``; the others hold one more) and the share of
    intervals holding one more (all multiples inside ``(0, total)`` but those at interval ends, over the
    intervals, less the fewest)."""
    fewest = np.floor((length - 1) / step)
    inside = np.floor((total - 1) / step) - np.floor((total - 1) / _lcm(length, step))
    return fewest, inside / (total / length) - fewest


def _lcm(a: Number, b: Number) -> Number:
    return np.lcm(np.rint(a).astype(np.int64), np.rint(b).astype(np.int64))


def mapping_error(devices: Number, replicas: Number, stages: Number, cards: Cards | None) -> str:
    """Why ``replicas x stages`` groups cannot be laid on ``devices`` ("" if they can): groups of whole
    devices, and with more than one group, of whole cards (each group its own cards' links and controller)."""
    groups = replicas * stages
    uneven = np.mod(devices, groups) != 0
    if np.any(uneven):
        return (f"replicas x stages: must divide devices, got {_at(groups, uneven)} groups of "
                f"{_at(devices, uneven)} devices")
    several = groups > 1
    if cards is None:
        return ("replicas, stages: several groups need cards (each group on its own cards' links and controller), "
                f"got {_at(groups, several)} groups") if np.any(several) else ""
    per_group = devices / groups
    split = several & (np.mod(per_group, cards.devices_per_card) != 0)
    if np.any(split):
        return ("replicas x stages: each group must be whole cards (a smaller one would share its card's link and "
                f"controller), got groups of {_at(per_group, split)} devices on cards of "
                f"{_at(cards.devices_per_card, split)}")
    return ""


def _at(value: Number, bad: Number) -> str:
    """``value`` at the first point where ``bad`` holds (one offending point of a sweep)."""
    picked = np.ravel(np.asarray(where(bad, value, np.nan), dtype=float))
    return f"{picked[~np.isnan(picked)][0]:g}"


@dataclass(frozen=True)
class Plan:
    """A pass mapped onto the groups: per operator one microbatch's share on one stage group with its
    critical-path count, the stage send (None with one stage), the microbatch instances the whole system
    runs per pass, and the groups."""

    ops: list[Op]
    send: Op | None
    instances: Number
    groups: Number
    stages: Number

    def whole(self, timing: Timing, count: Number) -> Timing:
        """``timing`` (one instance on one group) charged with all the system's work per critical-path slot
        of an operator of ``count`` instances per pass."""
        work = per_slot(count * self.instances, timing.op.count)
        return replace(timing, op=work_share(timing.op, work), energy_J=timing.energy_J * work,
                       peak_ops_per_s=timing.peak_ops_per_s * self.groups,
                       bandwidth_Bps=timing.bandwidth_Bps * self.groups)

    def sends(self, timing: Timing) -> Timing:
        """The stage send's ``timing`` with every microbatch's ``stages - 1`` sends per pass."""
        return replace(timing, energy_J=timing.energy_J * per_slot(self.instances * (self.stages - 1),
                                                                    timing.op.count))


def plan(ops: list[Op], replicas: Number, stages: Number) -> Plan:
    """Map one pass's ``ops`` (a batch of ``shape["batch"]`` sequences, as its attention operators say; one
    group: the ops as they are)."""
    if np.ndim(replicas) == np.ndim(stages) == 0 and replicas * stages == 1:
        return Plan(ops, None, 1.0, 1, 1)
    batch = next((op.shape["batch"] for op in ops if "batch" in op.shape), 1.0)
    seqs = where(replicas > 1, np.ceil(batch / replicas), batch)  # the busiest replica's
    if is_decode_table(ops):
        size = where(stages > 1, np.ceil(seqs / stages), seqs)  # whole sequences per microbatch
    else:
        size = seqs / stages  # a prefill microbatch: 1/stages of the replica's prompt tokens
    mapped = shard_ops([microbatch(op, batch / seqs) for op in ops], 1, stages, seqs / size)
    shards = [op for op, _ in mapped]
    send = shards.pop() if shards[-1].name == "pp_send" else None
    return Plan(shards, send, batch / size, replicas * stages, stages)


def stage_send(op: Op, cards: Cards, group: Group, stages: Number) -> Timing:
    """One stage send (``op.shape["bytes"]``, one microbatch's residual stream): up the card link, down the
    next card's, over the network on ``crossings`` of a replica's ``stages - 1`` boundaries (the replica
    with the most; energy: the mean replica's)."""
    nbytes = op.shape["bytes"]
    card, net = cards.link, cards.network
    boundaries = np.maximum(stages - 1, 1)
    seconds = (2 * (card.latency_us * 1e-6 + nbytes / (card.bandwidth_GBps * 1e9))
               + group.crossings / boundaries * (net.latency_us * 1e-6 + nbytes / (net.bandwidth_GBps * 1e9)))
    energy = (dram_energy_J(2 * nbytes, card.energy_pJ_per_bit)
              + group.mean_crossings / boundaries * dram_energy_J(nbytes, net.energy_pJ_per_bit))
    return Timing(op, "interconnect", "communication", 0.0, 0.0, {"communication": seconds},
                  bandwidth_Bps=card.bandwidth_GBps * 1e9, energy_J=energy)
