"""Multi-device systems: tensor (Megatron), expert, data and pipeline parallelism over identical devices.

A :class:`MultiGPU` is a Device: ``schedule(ops)`` shards every operator for ONE device (a pure
function of the op's fields and ``shape``), lets the member device time the shards, and inserts
collective operators (kind ``collective``) timed by the interconnect (alpha-beta formulas in
:mod:`hwdse.hardware.systems.interconnect`). Sharding rules (Megatron-LM, Shoeybi et al. 2019):

* column-parallel (output dim / tp): q_proj, gate_proj, up_proj, fc1, lm_head (vocab-parallel);
  k_proj, v_proj split by ``min(tp, kv_heads)`` (KV heads are replicated beyond that);
* row-parallel (input dim / tp): o_proj, down_proj, fc2, each followed by an all-reduce of its
  full output (two per layer); the vocab-parallel embedding is followed by an all-reduce and the
  lm_head by an all-gather of the logits;
* attention heads split by tp, the KV cache by ``min(tp, kv_heads)``; the activation ``act`` by tp;
  norms, residual adds and the MoE router are replicated.

MoE layouts (vLLM / SGLang / TensorRT-LLM): the ``tp`` devices of a stage run attention and every
dense weight as ``attention_dp`` data-parallel groups of ``tp / attention_dp`` tensor-parallel
devices, and the routed experts as ``ep`` expert groups of ``tp / ep`` tensor-parallel devices (so
``attention_dp = ep = tp`` is the DeepSeek "DP attention + EP" layout, ``ep = tp`` alone is TP
attention with EP experts, ``ep = 1`` is expert TP); :func:`shard_ops` says which collectives join
them.

Pipeline parallelism splits the ``L`` layers into ``pp`` stages. With ``m`` microbatches (each
op's batch-proportional terms / m, weights read once per microbatch) the critical path of a
prefill pass is ``L + (m-1) ceil(L/pp)`` layer times (the stage bubble: ``(m + pp - 1)`` stage
slots), and of a decode step ``L + (max(m, pp) - pp) ceil(L/pp)`` (a microbatch's next token
cannot start before its previous one left the last stage). With ``m = 1`` both are ``L``: one
static batch passes the stages one after the other. Activations cross ``(pp-1)/pp`` of the stage
slots as point-to-point sends (``pp_send``). TP = PP = 1 reproduces the member device exactly.

Work versus time: an op's ``count`` is its critical-path slots (time), but every microbatch does
the work of a whole pass, ``m x count`` instances (``m (pp-1)`` sends), and re-reads the
weights. Each returned Timing therefore charges ``energy_J`` = all ``tp`` devices' energy of
one instance x work / slots, so ``count x energy_J`` is the energy of all the work; and its
``op`` carries ``flops`` and byte fields x work / (pp x slots), so ``count x flops`` is one
device's mean share of the work (utilization = that / (time x one device's peak)). Times
(compute_s, memory_s, serial) are those of one critical-path instance, as timed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, TypeAdapter, model_validator

from hwdse._array import where
from hwdse._catalog import Spec, load, validate
from hwdse._errors import HwdseError
from hwdse._params import Number, count, quantity
from hwdse.hardware._base import Mode, Timing
from hwdse.hardware.accelerator import Accelerator
from hwdse.hardware.gpu.device import GPU
from hwdse.hardware.systems.fabric import Fabric
from hwdse.hardware.systems.interconnect import Interconnect, link_names
from hwdse.workload.ops import Op

# Single devices a multi-device system can be built from.
Member = Annotated[GPU | Accelerator, Field(discriminator="kind")]
_MEMBER = TypeAdapter(Member)

__all__ = ["MultiGPU", "with_parallelism", "shard_ops", "parallel_counts", "is_decode_table", "schedule_sharded",
           "is_routed_expert", "group_hit", "microbatch", "per_slot", "work_share",
           "COLUMN", "ROW", "KV_COLUMN"]

COLUMN = ("q_proj", "gate_proj", "up_proj", "fc1", "lm_head")
KV_COLUMN = ("k_proj", "v_proj")
ROW = ("o_proj", "down_proj", "fc2", "dense_down_proj", "dense_fc2", "shared_down_proj", "shared_fc2")
REPLICATED = ("router", "q_a_proj", "kv_a_proj")  # small or latent projections every TP rank computes (vLLM)
SPLIT_ELEMENTWISE = ("act", "softmax", "dense_act", "shared_act")
NOT_PER_LAYER = ("embedding", "final_norm", "lm_head")
_AFTER = {"o_proj": ("tp_allreduce_attn", "all_reduce"), "down_proj": ("tp_allreduce_mlp", "all_reduce"),
          "fc2": ("tp_allreduce_mlp", "all_reduce"), "dense_down_proj": ("tp_allreduce_dense_mlp", "all_reduce"),
          "dense_fc2": ("tp_allreduce_dense_mlp", "all_reduce"), "embedding": ("tp_allreduce_embed", "all_reduce"),
          "lm_head": ("tp_allgather_logits", "all_gather")}
_BATCHED = ("flops", "act_in_bytes", "act_out_bytes", "kv_read_bytes", "kv_write_bytes")
_WORK = ("flops", "weight_bytes", *_BATCHED[1:])


def _scaled(op: Op, div: dict[str, Number], shape: dict[str, Number]) -> Op:
    """A copy of ``op`` with byte/flop fields divided by ``div`` and shape entries divided."""
    fields = {k: getattr(op, k) / v for k, v in div.items()}
    new_shape = {k: (v / shape[k] if k in shape else v) for k, v in op.shape.items()}
    return replace(op, **fields, shape=new_shape)


def _tp_shard(op: Op, tp: Number, kvs: Number) -> Op:
    """The share of ``op`` one of ``tp`` tensor-parallel devices runs."""
    if op.name in KV_COLUMN:
        return _scaled(op, {"flops": kvs, "weight_bytes": kvs, "act_out_bytes": kvs, "kv_write_bytes": kvs},
                       {"n": kvs})
    if op.name in COLUMN or (op.kind == "gemm" and op.name not in ROW and op.name not in REPLICATED):
        return _scaled(op, {"flops": tp, "weight_bytes": tp, "act_out_bytes": tp, "kv_write_bytes": tp}, {"n": tp})
    if op.name in ROW:
        return _scaled(op, {"flops": tp, "weight_bytes": tp, "act_in_bytes": tp}, {"k": tp})
    if op.kind == "attention":
        return _scaled(op, {"flops": tp, "act_in_bytes": tp, "act_out_bytes": tp, "kv_read_bytes": kvs,
                            "kv_write_bytes": kvs}, {"heads": tp, "kv_heads": kvs})
    if op.name in SPLIT_ELEMENTWISE:
        return _scaled(op, {"flops": tp, "act_in_bytes": tp, "act_out_bytes": tp}, {"elements": tp})
    if op.kind == "embedding":
        return _scaled(op, {"weight_bytes": tp}, {})
    return op


def microbatch(op: Op, m: Number) -> Op:
    """One microbatch's share: batch-proportional terms / m (the embedding's row reads too)."""
    div = {k: m for k in _BATCHED}
    if op.kind == "embedding":
        div["weight_bytes"] = m
    return _scaled(op, div, {"m": m, "batch": m, "elements": m})


def is_decode_table(ops: Sequence[Op]) -> bool:
    """True for a decode step's table (every attention operator has one query position)."""
    q = [op.shape.get("q_len") for op in ops if op.kind == "attention"]
    return bool(q) and all(np.all(np.asarray(v) == 1) for v in q)


def parallel_counts(layers: int, pp: Number, m: Number, decode: bool) -> tuple[Number, Number]:
    """(layer-op count, pp_send count) on the critical path of one pass (see module docstring)."""
    per_stage = np.ceil(layers / pp)
    extra = np.maximum(m, pp) - pp if decode else m - 1
    slots_layers = layers + extra * per_stage
    return slots_layers, (pp - 1) / pp * (pp + extra)


def is_routed_expert(op: Op, moe: bool) -> bool:
    """A routed-expert op: a per-expert GEMM (``shape["experts"]``), or the routed activation of an MoE table."""
    return op.shape.get("experts", 1) > 1 or (moe and op.name == "act")


def _ep_shard(op: Op, ep: Number, imbalance: Number = 1.0) -> Op:
    """A routed-expert op on the busiest of ``ep`` expert groups: 1/ep of the experts (their weights) and
    ``imbalance``/ep of the routed rows (their work and activations; its experts' rows grow alike)."""
    busy = ep / imbalance
    return _scaled(op, {"flops": busy, "weight_bytes": ep, "act_in_bytes": busy, "act_out_bytes": busy},
                   {"groups": ep, "experts": ep, "elements": busy, "m": 1 / imbalance})


def group_hit(experts: int, top_k: int, ep: Number) -> Number:
    """Probability that a token routed to ``top_k`` of ``experts`` (uniformly, without repeats) sends a row
    to a given one of ``ep`` expert groups: 1 - C(E - E/ep, k) / C(E, k). DeepEP-style dispatch sends a
    token once per destination group, so this is each group's share of the tokens (k/ep at large ep)."""
    miss = 1.0
    for i in range(top_k):
        miss = miss * np.maximum(experts - experts / ep - i, 0.0) / (experts - i)
    return 1.0 - miss


def shard_ops(ops: Sequence[Op], tp: Number, pp: Number, m: Number, ep: Number = 1, imbalance: Number = 1.0,
              attention_dp: Number = 1) -> list[tuple[Op, tuple[tuple, ...]]]:
    """Per-device operators, each with the collectives that follow it: ``(name, kind, bytes, devices)``.

    A stage of ``tp`` devices runs everything but the routed experts on ``attention_dp`` data-parallel
    groups (each 1/attention_dp of the sequences, tensor-parallel over ``a = tp / attention_dp``
    devices: the Megatron rules and all-reduces over ``a``), and the routed experts on ``ep`` expert
    groups (1/ep of the experts each, tensor-parallel over ``tp / ep`` devices). Routed rows reach the
    experts as follows:

    * ``attention_dp`` = 1: every device already holds all tokens; the experts' partial outputs (and the
      shared experts', and the expert-TP partial sums) are summed by one all-reduce of the residual
      over ``tp`` (``tp_allreduce_mlp``; ``ep_combine`` when ``ep`` > 1);
    * ``attention_dp`` > 1: the router's rows go to their groups' devices (``ep_dispatch``) and come
      back after the last expert op (``ep_combine``), each an all-to-all over ``tp`` of one group's
      tokens (``group_hit`` of the system's tokens, x ``imbalance`` on the busiest), then an
      all-reduce of the residual over ``a`` where ``a`` > 1 (``tp_allreduce_moe``).

    ``imbalance`` (>= 1) is the busiest group's routed rows over the mean; that group sets the step.
    ``ep`` = ``attention_dp`` = 1 is Megatron tensor parallelism; degrees of exactly 1 insert no
    collectives (a swept ``attention_dp`` runs the all-to-alls over one device, 0 s, where it is 1).
    The ``pp_send`` point-to-point op (message = one microbatch's residual stream) ends the list.
    """
    layers = max(op.count for op in ops)
    layer_count, sends = parallel_counts(layers, pp, m, is_decode_table(ops))
    moe = any(op.shape.get("experts", 1) > 1 for op in ops)
    experts = [op.name for op in ops if is_routed_expert(op, moe)]
    attn = next((op for op in ops if op.kind == "attention"), None)
    a, moe_tp = tp / attention_dp, tp / ep
    kvs = np.minimum(a, attn.shape["kv_heads"] if attn is not None else np.inf)
    shards = []
    for op in ops:
        if op.name in experts:
            shard = _tp_shard(_ep_shard(op, ep, imbalance), moe_tp, kvs)
        else:
            shard = _tp_shard(microbatch(op, attention_dp), a, kvs)
        per_layer = layers > 1 and op.name not in NOT_PER_LAYER  # layer ops (of all or some layers) pass the stages
        shards.append(replace(microbatch(shard, m), count=op.count * layer_count / layers if per_layer
                              else op.count * m))
    by_name = {s.name: s for s in shards}
    residual = by_name["mlp_add"].act_out_bytes if "mlp_add" in by_name else 0.0  # one DP group's microbatch
    data_parallel = _parallel(attention_dp)
    if experts and data_parallel:
        first = next(op for op in ops if op.name == experts[0])
        hit = group_hit(first.shape["groups"], int(first.shape.get("input_copies", 1)), ep)
        routed = residual * attention_dp * hit * imbalance  # one expert group's tokens
        spread = where(np.asarray(attention_dp) > 1, tp, 1.0)  # a swept degree's points at 1 exchange nothing
    out: list[tuple[Op, tuple[tuple, ...]]] = []
    for shard in shards:
        after: tuple[tuple, ...] = ()
        if experts and shard.name == experts[-1] and data_parallel:
            after = (("ep_combine", "all_to_all", routed, spread),) + (
                (("tp_allreduce_moe", "all_reduce", residual, a),) if _parallel(a) else ())
        elif experts and shard.name == experts[-1] and _parallel(tp):
            after = (("ep_combine" if _parallel(ep) else "tp_allreduce_mlp", "all_reduce", residual, tp),)
        elif experts and shard.name == "router" and data_parallel:
            after = (("ep_dispatch", "all_to_all", routed, spread),)
        elif shard.name in _AFTER and shard.name not in experts and _parallel(a):
            name, kind = _AFTER[shard.name]
            after = ((name, kind, shard.act_out_bytes * (a if kind == "all_gather" else 1), a),)
        out.append((shard, after))
    if _parallel(pp):
        out.append((Op("pp_send", "collective", sends, 0.0, shape={"bytes": residual, "devices": pp}),
                    (("pp_send", "p2p", residual, pp),)))
    return out


def _summed(name: str) -> property:
    """A system property: the member device's ``name`` times the devices (NaN where the device has none)."""
    return property(lambda self: getattr(self.device, name, np.nan) * self.devices,
                    doc=f"The devices' {name} summed over the system.")


def _passed(name: str, doc: str) -> property:
    """A system property: the member device's ``name`` as it is (None where the device has none)."""
    return property(lambda self: getattr(self.device, name, None), doc=doc)


def _parallel(degree: Number) -> bool:
    """False only for a plain degree of 1 (a swept degree keeps its collectives, 0 s where it is 1)."""
    return not (np.ndim(degree) == 0 and float(degree) == 1)


class MultiGPU(Spec):
    """``tp x pp`` identical devices (``device``: an arch name or an inline gpu/accelerator spec) over links, in
    ``ceil(devices / host_devices)`` host servers whose power (``host_W`` each, default 0: the devices' power only)
    joins the static power and the power budget."""

    kind: Literal["multi-gpu"] = "multi-gpu"
    name: str
    description: str = ""
    device: Member
    tp: count() = Field(1, description="devices per pipeline stage: the tensor-parallel degree, over attention_dp "
                                       "data-parallel groups and ep expert groups")
    pp: count() = Field(1, description="pipeline stages")
    microbatches: count() = Field(1, description="microbatches per static batch (pipeline)")
    ep: count() = Field(1, description="expert groups per stage (a divisor of tp): each holds 1/ep of the routed "
                                       "experts, tensor-parallel over tp/ep devices")
    attention_dp: count() = Field(1, description="data-parallel groups per stage (a divisor of tp) for everything "
                                                 "but the routed experts, each tensor-parallel over tp/attention_dp")
    ep_imbalance: quantity(ge=1, unit="1") = Field(
        1.0, description="expert parallelism: the busiest device's routed tokens over the mean (1: balanced)")
    interconnect: Interconnect = Field(description="default: the device's scale_up link")
    node_devices: count() | None = Field(None, description="devices per node (one scale-up domain); None: all")
    scale_out: Interconnect | None = Field(None, description="link between nodes, per device (its NIC)")
    host_W: quantity(ge=0, unit="W per host") = Field(
        0.0, description="a host server's power outside its devices (CPUs, DRAM, NICs, fans, power supply); "
                         "0: the devices' power only, the basis of the GPU power measurements")
    host_devices: count() = Field(8, description="devices per host server (8: the DGX/HGX form factor)")
    sources: dict[str, str] = {}

    @model_validator(mode="after")
    def _nodes(self) -> "MultiGPU":
        if self.node_devices is not None and self.scale_out is None:
            raise ValueError("node_devices: needs scale_out (the link between nodes)")
        for field in ("ep", "attention_dp"):
            degree = getattr(self, field)
            if np.ndim(degree) == 0 and np.ndim(self.tp) == 0 and self.tp % degree:
                raise ValueError(f"{field}: must divide tp ({self.tp}): groups of whole devices; got {degree}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _load_device(cls, data: Any) -> Any:
        """A device name loads the arch entry; a missing interconnect comes from its scale_up link."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        device = data.get("device")
        if isinstance(device, str):
            device = data["device"] = load("arch", device, _MEMBER)
        if data.get("interconnect") is None and isinstance(device, (GPU, Accelerator, dict)):
            data["interconnect"] = _scale_up(device)
        return data

    @property
    def link(self) -> Interconnect:
        return self.interconnect

    @property
    def devices(self) -> Number:
        return self.tp * self.pp

    @property
    def capacity_bytes(self) -> Number:
        """Per-device capacity (compare with the per-device footprint)."""
        return self.device.capacity_bytes

    @property
    def onchip_bytes(self) -> float:
        return self.device.onchip_bytes

    area_mm2 = _summed("area_mm2")
    cost_usd = _summed("cost_usd")
    achieved_basis = _passed("achieved_basis", "Its devices' basis.")
    power_band = _passed("power_band", "Its devices' (:attr:`hwdse.hardware.gpu.GPU.power_band`).")
    throttle_curve = _passed("throttle_curve", "Its devices' (they throttle alike: each carries the same share of "
                                               "every operator).")

    def error_band(self, family: str) -> tuple[float, float] | None:
        """Its devices' kernel error band (see :meth:`hwdse.hardware.gpu.GPU.error_band`)."""
        band = getattr(self.device, "error_band", None)
        return band(family) if band is not None else None

    @property
    def hosts(self) -> Number:
        """Host servers: ``ceil(devices / host_devices)``."""
        return np.ceil(self.devices / self.host_devices)

    @property
    def hosts_W(self) -> Number:
        """The host servers' power, W (0 unless ``host_W`` is set)."""
        return self.hosts * self.host_W

    @property
    def power_W(self) -> Number:
        """The devices' power budgets summed plus the hosts' draw (NaN where the device has no budget): the
        hosts count in static power too, so the devices' headroom under the budget is the same either way."""
        return getattr(self.device, "power_W", np.nan) * self.devices + self.hosts_W

    @property
    def static_power_W(self) -> Number | None:
        """Every device's static power plus the hosts' (None where the device models none)."""
        static = getattr(self.device, "static_power_W", None)
        return None if static is None else static * self.devices + self.hosts_W

    def footprint_shares(self, model: Any) -> tuple[Number, Number, Number]:
        """Fractions of (weights, KV cache, activations) one device holds (activations: one microbatch's).
        The routed experts spread over all tp devices of a stage; every other weight over one data-parallel
        group's tp/attention_dp devices (replicated across groups), and the sequences (their KV cache) over
        the groups, each group's KV split over min(tp/attention_dp, KV heads)."""
        a = self.tp / self.attention_dp
        routed = model.moe_layers * model.num_experts * model._ffn_params(model.expert_size) if model.is_moe else 0
        weights = (routed / self.tp + (model.num_params - routed) / a) / model.num_params  # by parameters
        kvs = np.minimum(a, model.num_kv_heads)
        return weights / self.pp, 1 / (self.attention_dp * kvs * self.pp), 1 / (self.tp * self.microbatches)

    @property
    def fabric(self) -> Fabric:
        return Fabric(self.interconnect, self.scale_out, self.node_devices)

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        return schedule_sharded(self.device, self.fabric, ops, self.tp, self.pp, self.microbatches, mode, self.ep,
                                self.ep_imbalance, self.attention_dp)


def _scale_up(device: Any) -> dict[str, Any] | None:
    """The interconnect of a device's ``scale_up`` link: the catalog link of that name (at the
    device's own bandwidth), or an inline link when the catalog has no such entry."""
    link = device.get("scale_up") if isinstance(device, dict) else device.scale_up
    if link is None:
        return None
    link = link if isinstance(link, dict) else link.model_dump()
    if link["name"] in link_names():
        return {"link": link["name"], "bandwidth_GBps": link["bandwidth_GBps"]}
    return {"bandwidth_GBps": link["bandwidth_GBps"], "latency_us": link.get("latency_us", 0.0)}


def schedule_sharded(device: Any, link: Interconnect | Fabric, ops: Sequence[Op], tp: Number, pp: Number, m: Number,
                     mode: Mode, ep: Number = 1, imbalance: Number = 1.0, attention_dp: Number = 1) -> list[Timing]:
    """Shard ``ops``, time the shards on ``device`` and the collectives on ``link`` (an interconnect, or a
    :class:`Fabric` of nodes)."""
    fabric = link if isinstance(link, Fabric) else Fabric(link)
    plan = shard_ops(ops, tp, pp, m, ep, imbalance, attention_dp)
    compute = [op for op, _ in plan if op.name != "pp_send"]
    timed = iter(device.schedule(compute, mode))
    timings: list[Timing] = []
    for (op, after), full in zip(plan, [*ops, None]):
        if full is None:  # pp_send: each microbatch crosses pp - 1 stage boundaries
            t = fabric.p2p(op, op.shape["bytes"], tp, pp, device, mode)
            timings.append(replace(t, energy_J=t.energy_J * per_slot(m * (pp - 1), op.count)))
            continue
        t = next(timed)
        work = per_slot(full.count * m, op.count)  # instances done per critical-path slot
        timings.append(replace(t, op=work_share(t.op, work / pp), energy_J=t.energy_J * tp * work))
        for name, kind, nbytes, devices in after:
            coll = Op(name, "collective", op.count, 0.0, shape={"bytes": nbytes, "devices": devices})
            t = fabric.collective(coll, kind, nbytes, devices, device, mode)
            # every group of ``devices`` runs its own collective at once: all tp devices' energy
            timings.append(replace(t, energy_J=t.energy_J * work * tp / devices))
    return timings


def per_slot(work: Number, slots: Number) -> Number:
    """Work instances per critical-path slot (1 where there are no slots, e.g. no sends at pp = 1)."""
    return where(slots > 0, work / where(slots > 0, slots, 1.0), 1.0)


def work_share(op: Op, share: Number) -> Op:
    """``op`` with flops and bytes x ``share`` (e.g. one device's mean work per slot; 1: unchanged)."""
    if np.ndim(share) == 0 and float(share) == 1:
        return op
    return replace(op, **{k: getattr(op, k) * share for k in _WORK})


def with_parallelism(arch: Any, tp: Number | None = None, pp: Number | None = None,
                     microbatches: Number | None = None, ep: Number | None = None,
                     attention_dp: Number | None = None) -> MultiGPU:
    """A multi-GPU system: a single GPU spec gets wrapped (its scale_up link), a multi-GPU one re-degreed."""
    changes = {k: v for k, v in (("tp", tp), ("pp", pp), ("microbatches", microbatches), ("ep", ep),
                                 ("attention_dp", attention_dp)) if v is not None}
    if isinstance(arch, MultiGPU):
        data = {**arch.model_dump(mode="python", round_trip=True), **changes}
        return validate(MultiGPU, data, f"arch {arch.name}")
    if isinstance(arch, (GPU, Accelerator)):
        name = f"{arch.name}-tp{changes.get('tp', 1)}-pp{changes.get('pp', 1)}"
        return validate(MultiGPU, {"name": name, "device": arch, **changes}, f"arch {arch.name}")
    raise HwdseError(f"arch {getattr(arch, 'name', arch)}", "kind",
                     f"--tp/--pp need a gpu or multi-gpu arch, got {getattr(arch, 'kind', type(arch).__name__)!r}")
