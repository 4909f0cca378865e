"""Processing-in-memory devices (arch kind ``pim``): DRAM devices with PIM units and a controller.

A PIM device is ``devices`` x (``memory`` = technology x count of stacks/chips), each stack/chip
holding ``units.per_device`` PIM units (per bank, bank group or buffer die). What limits PIM is
explicit, and every limit is a spec field a study can vary (dotted paths for ``with_overrides``):

* compute: units run GEMV and vector work only. A GEMM of ``m`` rows costs ``m`` GEMVs: every
  weight element is streamed from the banks once per row (one MAC per weight element, no reuse),
  so PIM time grows with batch (``units.macs_per_cycle``, ``units.bytes_per_cycle``, ``clock_GHz``,
  ``power_derate``);
* capacity: PIM dies hold less (``capacity_fraction`` of the plain technology's capacity);
* communication: inputs are broadcast from the host over ``link`` (one per device, in parallel),
  outputs (``partial_sum_fanin`` partial sums per output) gathered back; each crossing costs the
  link latency plus bytes / bandwidth (serial term ``communication``). A standalone system packaged
  as ``cards`` (:class:`PIMCards`) adds each card's host link and the network between its hosts to
  every crossing: PIM devices never talk to each other but through the hosts; in ``blocked_mode`` the
  host and the PIM units are never active at once and each crossing pays ``mode_switch_us``
  (serial term ``mode_switch``).

Transfer rule: all host<->PIM traffic is charged to the PIM operator at the boundary (input when
the previous operator ran on the host, output when the next one does; a layer's operators wrap
around); moving a vector between PIM units (e.g. q to the units holding K) is not charged.
Achieved mode (basis ``derived``): the units sustain ``bank_efficiency`` of their peak, derived from the
memory technology's DRAM timing (:mod:`hwdse.hardware.pim.banks`: row activation and precharge per
page, all-bank refresh); their compute and bank-streaming terms are divided by it. Link transfers,
mode switches, buffer-die vector work and the controller keep their rates (no sourced efficiency).
Overlap rule: none here — an operator on PIM and one on the host never run at the same time
(blocked mode forbids it on shared memory; the decode dependence chain q/k/v -> attention ->
o_proj serialises them). :mod:`hwdse.hardware.pim.system` adds AttAcc's two overlaps for
separate memories (``fc: split``, ``overlap: heads``).
Mapping (standalone systems): ``replicas`` model copies, each pipelined over ``stages`` groups of
consecutive layers; every operator runs on its group's devices, cards and hosts alone and activations
cross between groups only at stage boundaries (:mod:`hwdse.hardware.pim.mapping`). The defaults (1, 1)
spread every operator over all the devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from hwdse._array import where
from hwdse._catalog import Spec
from hwdse._errors import HwdseError
from hwdse._params import Number, count, quantity
from hwdse.formats import get
from hwdse.hardware._base import COMPUTE_CLASSES, Basis, Mode, Timing, operand_class
from hwdse.hardware.energy import compute_energy_J, dram_energy_J
from hwdse.hardware.memory import MemorySystem
from hwdse.hardware.pim.banks import DRAMTiming, bank_efficiency, load_dram_timing
from hwdse.hardware.pim.mapping import (
    Group,
    mapping_error,
    plan,
    stage_group,
    stage_send,
)
from hwdse.hardware.power import load_shared_power
from hwdse.workload.ops import Op

__all__ = ["PIM", "PIMUnits", "PIMLink", "PIMCards", "Controller", "pim_work", "boundaries", "merge"]

Work = Literal["gemv", "attention", "elementwise"]
_WORK_OF_KIND = {"gemm": "gemv", "attention": "attention", "elementwise": "elementwise"}


class PIMUnits(Spec):
    """The PIM units of one stack/chip: placement, width, clock, formats, energy."""

    placement: Literal["bank", "bank_group", "buffer_die"]
    per_device: count() = Field(description="PIM units per stack/chip")
    macs_per_cycle: count() = Field(description="multiply-accumulates per unit per cycle (SIMD lanes)")
    bytes_per_cycle: quantity(gt=0, unit="B") = Field(description="bytes a unit reads from its bank(s) per cycle")
    clock_GHz: quantity(gt=0, unit="GHz") = Field(description="unit clock (column-access rate for bank units)")
    power_derate: quantity(gt=0, le=1) = Field(1.0, description="fraction of the rate sustained under the power limit")
    formats: tuple[str, ...] = Field(description="arithmetic classes the units compute (fp16, bf16)")
    runs: tuple[Work, ...] = Field(description="work the units can run: gemv, attention, elementwise")
    vector_at: Literal["units", "buffer_die"] = Field(
        "units", description="where elementwise work runs: the units, or buffer-die logic at the external rate")
    mac_pJ: quantity(gt=0, unit="pJ") = Field(description="energy of one MAC in the unit")
    internal_pJ_per_bit: quantity(gt=0, unit="pJ/bit") = Field(description="cell -> unit access energy")

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one arithmetic class")
        bad = [f for f in value if f not in COMPUTE_CLASSES]
        if bad:
            raise ValueError(f"unknown arithmetic class {bad[0]!r}; expected one of {', '.join(COMPUTE_CLASSES)}")
        return value

    @field_validator("runs")
    @classmethod
    def _runs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one kind of work (gemv, attention, elementwise)")
        return value


class PIMLink(Spec):
    """The host <-> PIM path of one device: per-direction bandwidth, latency, energy."""

    name: str
    bandwidth_GBps: quantity(gt=0, unit="GB/s") = Field(description="per device, per direction")
    latency_us: quantity(ge=0, unit="us") = 0.0
    energy_pJ_per_bit: quantity(ge=0, unit="pJ/bit") = Field(
        description="a byte moved between host and PIM (off-device access: array to host)")


class PIMCards(Spec):
    """How a standalone PIM system is packaged: ``devices_per_card`` PIM devices behind one card
    controller (an FPGA on AiMX), the card on its host's ``link`` (PCIe), ``cards_per_host`` cards per
    server, servers joined by ``network``. Host<->PIM traffic crosses all three levels; the hosts
    broadcast each input vector to one another and gather every output."""

    devices_per_card: count()
    cards_per_host: count()
    link: PIMLink = Field(description="host <-> card, per card, per direction")
    network: PIMLink = Field(description="between hosts, per host, per direction")
    host_W: quantity(ge=0, unit="W per host") = Field(description="a host server's power outside the PIM cards "
                                                                  "(CPUs, DRAM, fans, power supply)")
    card_usd: quantity(ge=0, unit="USD per card") | None = Field(
        None, description="cost to build one card's controller silicon (None: not priced, cost_usd NaN)")

    def cards(self, devices: Number) -> Number:
        return np.ceil(devices / self.devices_per_card)

    def hosts(self, devices: Number) -> Number:
        return np.ceil(self.cards(devices) / self.cards_per_host)


class Controller(Spec):
    """The host side of a standalone PIM system: runs what the units cannot (norms, embedding...)."""

    name: str
    peak_TFLOPS: quantity(gt=0, unit="10^12 ops/s")
    buffer_KiB: quantity(gt=0, unit="KiB") = Field(description="on-chip buffer (FlashAttention tile)")
    mac_pJ: quantity(gt=0, unit="pJ")


class PIM(Spec):
    """A PIM device or a standalone PIM accelerator (``devices`` PIM devices + a controller)."""

    kind: Literal["pim"] = "pim"
    name: str
    description: str = ""
    devices: count() = Field(1, description="PIM devices, each with its own memory and host link")
    memory: MemorySystem = Field(description="stacks/chips of one device (technology x count)")
    units: PIMUnits
    capacity_fraction: quantity(gt=0, le=1) = Field(description="usable capacity of a PIM die vs the plain one")
    link: PIMLink
    controller: Controller
    blocked_mode: bool = Field(description="host and PIM units never active at once (mode switches)")
    mode_switch_us: quantity(ge=0, unit="us") = 0.0
    partial_sum_fanin: count() = Field(1, description="partial sums gathered per GEMV output (1 = none)")
    cards: PIMCards | None = Field(None, description="standalone systems: cards, hosts and their network "
                                                     "(None: every device on the controller's own link)")
    replicas: count() = Field(1, description="model copies, each on devices / replicas devices with its share of "
                                             "the sequences (standalone systems)")
    stages: count() = Field(1, description="pipeline stages of a replica, each a group of consecutive layers on "
                                           "devices / (replicas x stages) devices (standalone systems)")
    sources: dict[str, str]

    @model_validator(mode="after")
    def _mapping(self) -> "PIM":
        reason = mapping_error(self.devices, self.replicas, self.stages, self.cards)
        if reason:
            raise ValueError(reason)
        return self

    # -- derived quantities (SI units) ---------------------------------------------------------
    @property
    def achieved_basis(self) -> Basis | None:
        """``derived`` where the memory technology has a DRAM timing (``arch/dram-timing/``), else None."""
        return "derived" if self.dram_timing is not None else None

    @property
    def dram_timing(self) -> DRAMTiming | None:
        """Bank timing of the memory technology (None: the catalog has none for it)."""
        return load_dram_timing(self.memory.technology)

    @property
    def bank_efficiency(self) -> Number:
        """Fraction of the units' peak rate sustained: row activations, precharges and refresh
        (:func:`hwdse.hardware.pim.banks.bank_efficiency`)."""
        timing = self.dram_timing
        if timing is None:
            raise HwdseError(f"arch {self.name}", "memory.technology",
                             f"no DRAM timing for {self.memory.technology!r} in arch/dram-timing/; achieved mode "
                             "needs one (use roofline)")
        return bank_efficiency(timing, self.units.placement, self.units.per_device, self.units.bytes_per_cycle,
                               1.0 / self._rate())

    def error_band(self, family: str) -> tuple[float, float]:
        """Median and p90 relative band of an achieved time, any kernel family: no measured PIM kernels
        exist to take it from, so both are the spread to the optimistic bound (every row overhead
        hidden, no refresh: the roofline), ``1 / bank_efficiency - 1``."""
        spread = float(np.max(1.0 / self.bank_efficiency - 1.0))
        return spread, spread

    @property
    def power_band(self) -> float:
        """p90 relative error of its predicted power. No PIM power has been measured to hold out, so it takes
        the band of a power model applied to a device without power data: the GPUs' leave-one-out board-power
        error (``arch/efficiency/power.yaml`` ``board_p90``); a floor on its own, bottom-up model's error."""
        return load_shared_power().board_p90

    @property
    def static_power_W(self) -> Number:
        """DRAM standby and refresh of every stack/chip (``memory`` technology's ``background_W``; PIM logic
        leakage has no sourced figure and is left out) plus, packaged as cards, the host servers'."""
        background = self.memory.tech.background_W or 0.0
        hosts = 0.0 if self.cards is None else self.cards.hosts(self.devices) * self.cards.host_W
        return self.devices * self.memory.count * background + hosts

    @property
    def cost_usd(self) -> Number:
        """Cost to build, US$, on the GPUs' basis (silicon and memory, no host servers): every stack/chip
        priced as the plain technology's (``memory.cost_usd``: a PIM die costs what the plain die does and
        holds ``capacity_fraction`` of its capacity, so usable $/GB is 1/capacity_fraction times the
        technology's) plus, packaged as cards, each card's controller (``cards.card_usd``). NaN where
        either has no price (validation/cost_sources.md §8)."""
        cards = 0.0 if self.cards is None else (
            np.nan if self.cards.card_usd is None else self.cards.cards(self.devices) * self.cards.card_usd)
        return self.devices * self.memory.cost_usd + cards

    @property
    def server_slots(self) -> Number:
        """Server slots it occupies (:func:`hwdse.perf.economics.server_slots`): one per card, else one per device."""
        return self.devices if self.cards is None else self.cards.cards(self.devices)

    @property
    def stacks(self) -> Number:
        """Stacks/chips in the whole system."""
        return self.devices * self.memory.count

    @property
    def units_total(self) -> Number:
        return self.units.per_device * self.stacks

    def _rate(self) -> Number:
        return self.units.clock_GHz * 1e9 * self.units.power_derate

    @property
    def internal_Bps_per_device(self) -> Number:
        """Internal (bank -> unit) bandwidth of one stack/chip in B/s."""
        return self.units.per_device * self.units.bytes_per_cycle * self._rate()

    @property
    def peak_ops_per_device(self) -> Number:
        """MAC throughput of one stack/chip in ops/s (2 ops per MAC)."""
        return self.units.per_device * self.units.macs_per_cycle * 2 * self._rate()

    @property
    def internal_Bps(self) -> Number:
        return self.internal_Bps_per_device * self.stacks

    @property
    def peak_ops_per_s(self) -> Number:
        return self.peak_ops_per_device * self.stacks

    @property
    def vector_Bps(self) -> Number:
        """Rate of elementwise work: the units' internal rate, or the external rate on the buffer die."""
        return self.internal_Bps if self.units.vector_at == "units" else self.memory.bandwidth_Bps * self.devices

    @property
    def link_Bps(self) -> Number:
        """Per-device host link bandwidth in B/s (devices transfer in parallel)."""
        return self.link.bandwidth_GBps * 1e9

    @property
    def capacity_bytes(self) -> Number:
        return self.memory.capacity_bytes * self.devices * self.capacity_fraction

    def footprint_shares(self, model: Any) -> tuple[Number, Number, Number]:
        """Multiples of the (weights, KV cache, activations) footprint held against the whole system's
        ``capacity_bytes``: every replica a full copy of the weights, the sequences' KV cache and activations
        divided among the replicas. A stage holds ``ceil(L / stages)`` of a replica's ``L`` layers in 1/stages
        of its memory, so weights and KV count ``stages ceil(L / stages) / L`` times (the fullest stage's
        excess; 1 where the stages divide the layers)."""
        fullest = self.stages * np.ceil(model.num_layers / self.stages) / model.num_layers
        return self.replicas * fullest, fullest, 1.0

    @property
    def onchip_bytes(self) -> float:
        return float(self.controller.buffer_KiB) * 1024

    # -- per-operator model ----------------------------------------------------------------------
    def runnable(self, op: Op) -> bool:
        """True when the units can run ``op`` (its work kind and its arithmetic class)."""
        work = _WORK_OF_KIND.get(op.kind)
        if work is None or work not in self.units.runs:
            return False
        return not op.operands or operand_class(op.operands) in self.units.formats

    def why_not(self, op: Op) -> str:
        """One line saying why the units cannot run ``op``."""
        work = _WORK_OF_KIND.get(op.kind)
        if work is None or work not in self.units.runs:
            return (f"op {op.name} ({op.kind}) cannot run in PIM: units.runs is "
                    f"{', '.join(self.units.runs)}")
        return (f"op {op.name} needs {operand_class(op.operands)} arithmetic; the PIM units compute "
                f"{', '.join(self.units.formats)}")

    def timing(self, op: Op, inbound: Any = True, outbound: Any = True, mode: Mode = "roofline",
               on: Group | None = None) -> Timing:
        """One instance of ``op`` on the PIM units of one stage group ``on`` (None: all the devices);
        ``inbound``/``outbound``: it crosses the link; in ``achieved`` mode the units' terms run at
        ``bank_efficiency`` of their peak."""
        on = on if on is not None else stage_group(self.devices, 1, 1, self.cards)
        work = _WORK_OF_KIND[op.kind]
        if work == "elementwise":
            bw = self.vector_Bps / on.groups
            cls, peak = "vector", bw  # 1 op per byte-rate cycle
            streamed = op.bytes
        else:
            cls, bw = operand_class(op.operands), self.internal_Bps / on.groups
            peak = self.peak_ops_per_s / on.groups
            if work == "gemv":  # one weight element per MAC, re-streamed for every row (sequence)
                streamed = op.flops / 2 * get(op.operands[0]).bits_per_element / 8 + op.kv_write_bytes
            else:
                streamed = op.kv_read_bytes + op.kv_write_bytes
        split = 1 if work == "gemv" else on.devices  # FC: every device needs the whole input vector
        fanin = self.partial_sum_fanin if work == "gemv" else 1
        in_bytes = op.act_in_bytes / split
        out_bytes = op.act_out_bytes * fanin / on.devices
        lat = self.link.latency_us * 1e-6
        comm = inbound * (lat + in_bytes / self.link_Bps) + outbound * (lat + out_bytes / self.link_Bps)
        if self.cards is not None:
            comm = comm + self._card_levels(op, work, inbound, outbound, on)
        switches = (inbound * 1.0 + outbound * 1.0) * (self.mode_switch_us * 1e-6 if self.blocked_mode else 0.0)
        copies = on.devices if work == "gemv" else 1  # a broadcast puts the input on every device's link
        link_bytes = inbound * op.act_in_bytes * copies + outbound * op.act_out_bytes * fanin
        mac_pJ = self.units.mac_pJ if work != "elementwise" else self.units.mac_pJ / 2
        energy = (compute_energy_J(op.flops, mac_pJ) + dram_energy_J(streamed, self.units.internal_pJ_per_bit)
                  + dram_energy_J(link_bytes, self.link.energy_pJ_per_bit))
        if self.cards is not None:
            energy = energy + self._card_energy(op, work, inbound, outbound, on)
        runs = work == "elementwise" or cls in self.units.formats  # no datapath for cls: infinite time
        on_units = work != "elementwise" or self.units.vector_at == "units"
        eff = self.bank_efficiency if mode == "achieved" and on_units else 1.0
        return Timing(op, "pim", cls, op.flops / (peak * eff) if runs else np.inf, streamed / (bw * eff),
                      {"communication": comm, "mode_switch": switches},
                      peak_ops_per_s=peak, bandwidth_Bps=bw, energy_J=energy)

    def _card_levels(self, op: Op, work: str, inbound: Any, outbound: Any, on: Group) -> Number:
        """Seconds the card and host levels of group ``on`` (its widest) add to an operator's host<->PIM
        traffic: the hosts broadcast the input along a chain (``(hosts - 1)`` hops, pipelined) and
        all-gather the outputs; each card receives the whole input (a GEMV's vector; attention's share of
        queries) and returns its share of the outputs over its own link, all cards at once."""
        c = self.cards
        cards, hosts = on.cards, on.hosts
        split = 1 if work == "gemv" else cards
        fanin = self.partial_sum_fanin if work == "gemv" else 1
        card_s = c.link.latency_us * 1e-6
        card = (inbound * (card_s + op.act_in_bytes / split / (c.link.bandwidth_GBps * 1e9))
                + outbound * (card_s + op.act_out_bytes * fanin / cards / (c.link.bandwidth_GBps * 1e9)))
        net_bps, hops = c.network.bandwidth_GBps * 1e9, hosts - 1
        net_s = c.network.latency_us * 1e-6
        net = (inbound * where(hops > 0, hops * net_s + op.act_in_bytes / net_bps, 0.0)
               + outbound * (hops * net_s + hops / hosts * op.act_out_bytes * fanin / net_bps))
        return card + net

    def _card_energy(self, op: Op, work: str, inbound: Any, outbound: Any, on: Group) -> Number:
        """Joules of the card and network crossings in group ``on`` (every card receives its input; every
        host but one the broadcast; the mean over groups of ``narrow_hosts`` and of one host more)."""
        c = self.cards
        copies = on.cards if work == "gemv" else 1
        fanin = self.partial_sum_fanin if work == "gemv" else 1
        card_bytes = inbound * op.act_in_bytes * copies + outbound * op.act_out_bytes * fanin

        def net_bytes(hosts: Number) -> Number:
            return (hosts - 1) * (inbound * op.act_in_bytes + outbound * op.act_out_bytes * fanin / hosts)

        net = (1 - on.wide) * net_bytes(on.narrow_hosts) + on.wide * net_bytes(on.narrow_hosts + 1)
        return dram_energy_J(card_bytes, c.link.energy_pJ_per_bit) + dram_energy_J(net, c.network.energy_pJ_per_bit)

    def controller_timing(self, op: Op, on: Group) -> Timing:
        """``op`` on the controller of group ``on``: its bytes cross the group's devices' links, its ops use
        the controller peak."""
        peak = self.controller.peak_TFLOPS * 1e12
        bw = self.link_Bps * on.devices
        if self.cards is not None:  # the controller's data crosses the card links
            bw = np.minimum(bw, on.cards * self.cards.link.bandwidth_GBps * 1e9)
        energy = (compute_energy_J(op.flops, self.controller.mac_pJ)
                  + dram_energy_J(op.bytes, self.link.energy_pJ_per_bit))
        cls = operand_class(op.operands) if op.operands else "vector"
        return Timing(op, "controller", cls, op.flops / peak, op.bytes / bw, peak_ops_per_s=peak,
                      bandwidth_Bps=bw, energy_J=energy)

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        """Standalone: every op the units can run goes to PIM (prefill too), the rest to the controller,
        each timed as one microbatch on one stage group and charged with all the groups' work
        (:mod:`hwdse.hardware.pim.mapping`); the stage sends last."""
        on_pim = [pim_work(self, op, required=op.kind in ("gemm", "attention")) for op in ops]
        inbound, outbound = boundaries(ops, on_pim)
        mapped = plan(list(ops), self.replicas, self.stages)
        group = stage_group(self.devices, self.replicas, self.stages, self.cards)
        timings = []
        for op, shard, p, i, o in zip(ops, mapped.ops, on_pim, inbound, outbound):
            t = self.timing(shard, i, o, mode, group) if p else self.controller_timing(shard, group)
            timings.append(mapped.whole(t, op.count))
        if mapped.send is not None:
            timings.append(mapped.sends(stage_send(mapped.send, self.cards, group, self.stages)))
        return timings


def pim_work(pim: PIM, op: Op, required: bool) -> bool:
    """Whether ``op`` goes to PIM. A ``required`` op of a kind the units cannot run is a one-line
    configuration error; one whose operand format the units lack goes to PIM with infinite time
    (the design is infeasible for that workload: an answer, not a crash)."""
    if pim.runnable(op) or (required and _WORK_OF_KIND.get(op.kind) in pim.units.runs):
        return True
    if required and op.kind in ("gemm", "attention"):
        raise HwdseError(f"arch {pim.name}", "units.runs", pim.why_not(op))
    return False


def _neighbours(ops: Sequence[Op]) -> tuple[list[int], list[int]]:
    """Previous/next index of each op, wrapping around within a run of ops with the same count."""
    prev, nxt = list(range(len(ops))), list(range(len(ops)))
    start = 0
    for i in range(1, len(ops) + 1):
        if i == len(ops) or ops[i].count != ops[start].count:
            run = list(range(start, i))
            for j, k in enumerate(run):
                prev[k], nxt[k] = run[j - 1], run[(j + 1) % len(run)]
            start = i
    return prev, nxt


def boundaries(ops: Sequence[Op], on_pim: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Per op: input arrives from the host (inbound), output goes back to it (outbound).

    ``on_pim`` entries are booleans or boolean arrays (placement may depend on a swept batch).
    """
    prev, nxt = _neighbours(ops)
    inbound = [np.logical_and(on_pim[i], np.logical_not(on_pim[prev[i]])) for i in range(len(ops))]
    outbound = [np.logical_and(on_pim[i], np.logical_not(on_pim[nxt[i]])) for i in range(len(ops))]
    return inbound, outbound


def merge(on_pim: Any, pim: Timing, host: Timing) -> Timing:
    """One timing that is ``pim`` where ``on_pim`` holds and ``host`` elsewhere (element-wise)."""
    if isinstance(on_pim, (bool, np.bool_)):
        base = pim if on_pim else host
        keys = set(pim.serial_s) | set(host.serial_s)
        return Timing(host.op, base.unit, base.compute_class, base.compute_s, base.memory_s,
                      {k: base.serial_s.get(k, 0.0) for k in sorted(keys)}, base.peak_ops_per_s,
                      base.bandwidth_Bps, base.energy_J)

    def pick(a: Any, b: Any) -> Any:
        return where(on_pim, a, b)

    keys = sorted(set(pim.serial_s) | set(host.serial_s))
    return Timing(host.op, pick(pim.unit, host.unit), pick(pim.compute_class, host.compute_class),
                  pick(pim.compute_s, host.compute_s), pick(pim.memory_s, host.memory_s),
                  {k: pick(pim.serial_s.get(k, 0.0), host.serial_s.get(k, 0.0)) for k in keys},
                  pick(pim.peak_ops_per_s, host.peak_ops_per_s), pick(pim.bandwidth_Bps, host.bandwidth_Bps),
                  pick(pim.energy_J, host.energy_J))

