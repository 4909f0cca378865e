"""GPU + PIM systems (arch kind ``gpu-pim``): an xPU for prefill and FC layers, PIM for decode GEMVs.

Placement policy (decode; prefill always runs on the xPU, PIM has little compute):

* ``attention: pim`` puts the decode attention (``qk_matmul``, ``softmax`` if the units run
  elementwise work, ``sv_matmul``, or the fused ``flash_attention``) in PIM: the AttAcc split;
* ``fc`` places the FC GEMMs: ``xpu`` (never), ``pim`` (always), ``threshold`` (when the GEMM has
  at most ``fc_batch_threshold`` rows, i.e. sequences), ``faster`` (per op, the unit with the
  shorter time, link transfers included). Placement may differ per point of a swept batch;
* ``experts: pim`` puts an MoE model's routed-expert GEMMs (and their activation, where the units
  run elementwise work) in PIM whatever ``fc`` says: each expert sees ``batch x k / E`` rows at
  decode, so a GEMV engine re-streaming its weights per row competes with the xPU reading the
  touched experts once (Duplex, MICRO 2024, and MoNDE put MoE experts near memory for this reason).

``attach: separate`` (AttAcc): the PIM devices are extra memory next to the xPU; an operator runs
where its tensors live, so each memory must hold what is placed in it (``capacity_rule: placed``,
:meth:`GpuPim.fits`). PIM holds the KV cache with ``attention: pim``, the routed-expert weights with
``experts: pim``, and with ``fc: pim`` every FC layer's weights (routed experts, dense FFNs with the
shared experts, attention projections, routers, lm_head: ``fc`` places every GEMM). With ``fc:
threshold`` or ``faster`` either unit may run an FC GEMM (the choice follows the batch, which a serving
engine changes step to step), so those weights are in both memories. With ``fc: split`` every FFN GEMM
(the routed experts' too, unless ``experts: pim``) is divided between the units in proportion to their
speeds, which move with the batch; a deployment divides the weights once, so they count against the
room both memories leave together (the pooled remainder): a necessary condition, which does not check
that the speed-optimal division itself fits. The xPU holds the other weights, the activations and,
with ``attention: xpu``, the KV cache. Prefill runs on the xPU whatever the placement: weights kept in
PIM alone reach it over the link, a transfer its prefill time does not charge. ``capacity_rule:
pooled`` checks weights + KV + activations against GPU + PIM memory together instead, as the AttAcc
simulator does. The K/V rows the xPU computes (prefill and decode) cross
the link into PIM. ``attach: shared`` (HBM-PIM in place of the GPU's own stacks): capacity is
the GPU's times ``capacity_fraction`` (one pooled check), the PIM stacks are the GPU's stacks
(``pim.memory`` must equal ``xpu.memory``), and in blocked mode every host<->PIM switch pays
``mode_switch_us``.
``fc: split`` runs every FFN GEMM on both at once, split in proportion to their speeds, and
``overlap: heads`` lets the decode attention in PIM overlap the xPU's QKV/O projections head by head
(AttAcc's --ffopt and --pipeopt); both need separate memories (no blocked mode). Otherwise
PIM and xPU operators never overlap; transfer rules: see :mod:`hwdse.hardware.pim.device`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
import xarray as xr
from pydantic import Field, TypeAdapter, field_validator, model_validator

from hwdse._array import to_dataarray, where
from hwdse._catalog import Spec, load, locate, read
from hwdse._params import Number, quantity
from hwdse.hardware._base import Basis, Mode, Timing, weakest
from hwdse.hardware.energy import dram_energy_J
from hwdse.hardware.gpu.device import GPU
from hwdse.hardware.pim.device import PIM, boundaries, merge, pim_work
from hwdse.hardware.systems.multi import MultiGPU, is_routed_expert
from hwdse.workload.footprint import Footprint
from hwdse.workload.ops import Op

__all__ = ["GpuPim", "XPU_KINDS"]

XPU = Annotated[GPU | MultiGPU, Field(discriminator="kind")]
XPU_KINDS = ("gpu", "multi-gpu")
_MEMBER = TypeAdapter(Annotated[GPU | MultiGPU | PIM, Field(discriminator="kind")])  # what a name may load

_ATTENTION = ("qk_matmul", "softmax", "sv_matmul", "flash_attention", "swa_attention", "chunked_attention")
_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
_FFN = ("gate_proj", "up_proj", "down_proj", "fc1", "fc2")
_FC_PLACES = {"xpu": "xpu", "pim": "pim", "threshold": "both", "faster": "both", "split": "split"}
GB = 1e9

_Check = tuple[str, dict[str, Any], Any]  # a memory, the bytes it must hold by tensor class, its capacity in bytes


def _from_catalog(value: Any, kinds: tuple[str, ...]) -> Any:
    """A catalog name becomes the loaded spec (so dotted overrides reach inside it); a mapping with
    ``base: <name>`` is that entry with the mapping's other keys replaced (``{base: hbm3-pim, devices: 8}``)."""
    base = value if isinstance(value, str) else value.get("base") if isinstance(value, dict) else None
    if base is None:
        return value
    kind = read(locate("arch", base)).get("kind")
    if kind not in kinds:
        raise ValueError(f"{base!r} is a {kind} arch; expected kind {' or '.join(kinds)}")
    spec = load("arch", base, _MEMBER)
    if isinstance(value, str):
        return spec
    return _deep_merge(spec.model_dump(mode="python", round_trip=True), {k: v for k, v in value.items() if k != "base"})


def _deep_merge(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key, value in changes.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class GpuPim(Spec):
    """An xPU (GPU or multi-GPU) plus PIM devices, with a placement policy."""

    kind: Literal["gpu-pim"] = "gpu-pim"
    name: str
    description: str = ""
    xpu: XPU = Field(description="arch name or inline GPU / multi-GPU spec")
    pim: PIM = Field(description="arch name or inline PIM spec (its devices x memory)")
    attach: Literal["separate", "shared"] = "separate"
    attention: Literal["pim", "xpu"] = "pim"
    fc: Literal["xpu", "pim", "threshold", "faster", "split"] = "xpu"
    experts: Literal["xpu", "pim"] = Field("xpu", description="where an MoE model's routed-expert GEMMs run at "
                                                               "decode (pim: their weights live in PIM)")
    fc_batch_threshold: quantity(ge=0, unit="sequences") = Field(
        0.0, description="fc=threshold: FC GEMMs of at most this many rows run in PIM")
    overlap: Literal["none", "heads"] = Field(
        "none", description="heads: decode attention in PIM overlaps the xPU's QKV/O projections head by head")
    capacity_rule: Literal["placed", "pooled"] = Field(
        "placed", description="placed: each memory holds the tensors placed in it (KV cache, weights: see the "
        "module docstring); pooled: weights + KV + activations against GPU + PIM memory together (the AttAcc "
        "simulator's convention)")
    sources: dict[str, str]

    @field_validator("xpu", mode="before")
    @classmethod
    def _xpu(cls, value: Any) -> Any:
        return _from_catalog(value, XPU_KINDS)

    @field_validator("pim", mode="before")
    @classmethod
    def _pim(cls, value: Any) -> Any:
        return _from_catalog(value, ("pim",))

    @model_validator(mode="after")
    def _shared(self) -> "GpuPim":
        if self.attach == "shared":
            if self.xpu.kind != "gpu":
                raise ValueError("attach: shared needs a single GPU as xpu (its stacks become PIM stacks)")
            same = (self.pim.memory.technology == self.xpu.memory.technology
                    and np.all(self.pim.memory.count == self.xpu.memory.count) and np.all(self.pim.devices == 1))
            if not same:
                raise ValueError("attach: shared needs pim.memory = xpu.memory (technology and count) and "
                                 "pim.devices = 1")
        if np.any(np.asarray(self.pim.replicas) != 1) or np.any(np.asarray(self.pim.stages) != 1):
            raise ValueError("pim.replicas and pim.stages map a standalone PIM system; a GPU + PIM system places "
                             "operators by attention/fc/experts (set them to 1)")
        if self.attention == "pim" and "attention" not in self.pim.units.runs:
            raise ValueError(f"attention: pim, but the PIM units do not run attention (units.runs: "
                             f"{', '.join(self.pim.units.runs)})")
        concurrent = self.attach == "separate" and not self.pim.blocked_mode
        if self.fc == "split" and not concurrent:
            raise ValueError("fc: split runs xPU and PIM at once: needs attach: separate and pim.blocked_mode: false")
        if self.overlap == "heads" and not (concurrent and self.attention == "pim"):
            raise ValueError("overlap: heads needs attention: pim, attach: separate and pim.blocked_mode: false")
        for field, value in (("fc", self.fc), ("experts", self.experts)):
            if value in ("pim", "threshold", "faster", "split") and "gemv" not in self.pim.units.runs:
                raise ValueError(f"{field}: {value}, but the PIM units do not run GEMVs (units.runs: "
                                 f"{', '.join(self.pim.units.runs)})")
        return self

    @property
    def capacity_bytes(self) -> Number:
        if self.attach == "shared":
            return self.xpu.capacity_bytes * self.pim.capacity_fraction
        return self._xpu_bytes + self.pim.capacity_bytes  # whole-system capacity (weights + KV pooled)

    @property
    def _xpu_bytes(self) -> Number:
        """The xPU's memory: a multi-GPU reports one device's capacity, so times its devices."""
        return self.xpu.capacity_bytes * getattr(self.xpu, "devices", 1)

    @property
    def devices(self) -> Number:
        """Devices of the system: the xPU's GPUs, plus the PIM devices when they are boards of their own
        (``attach: separate``); shared PIM stacks are the GPU's memory, no extra device."""
        return getattr(self.xpu, "devices", 1) + (self.pim.devices if self.attach == "separate" else 0)

    @property
    def fit_rule(self) -> str:
        """How :meth:`fits` checks the footprint (reported with results)."""
        if self.attach == "shared" or self.capacity_rule == "pooled":
            return "footprint <= pooled capacity"
        place = self._placement()
        pim = (["KV cache"] if self.attention == "pim" else []) + [k for k, v in place.items() if v in ("pim", "both")]
        xpu = "other weights" + ("" if self.attention == "pim" else " + KV cache") + " + activations"
        rule = f"PIM holds {' + '.join(pim) or 'nothing'} <= PIM capacity; xPU holds {xpu} <= xPU capacity"
        both = [k for k, v in place.items() if v == "both"]
        if both:
            rule += f"; {' + '.join(both)} in both memories (either unit may run their GEMMs)"
        split = [k for k, v in place.items() if v == "split"]
        if split:
            rule += f"; {' + '.join(split)} split between them: footprint <= pooled capacity"
        return rule

    def _placement(self) -> dict[str, str]:
        """Where each weight class a placement moves lives under the placed rule: ``pim``, ``xpu``, ``both``
        (either unit may run its GEMMs) or ``split`` (divided between the memories)."""
        fc = _FC_PLACES[self.fc]
        return {"routed experts": "pim" if self.experts == "pim" else fc, "FFN weights": fc,
                "projection weights": "xpu" if fc == "split" else fc}

    def _checks(self, mem: Footprint) -> list[_Check]:
        """The capacity checks of ``mem`` (bytes; see the module docstring): one pooled check, or PIM's, the
        xPU's and, where weights are split between them, both memories' together."""
        kv = {"KV cache": mem.kv_cache_bytes}
        if self.attach == "shared" or self.capacity_rule == "pooled":
            memory = "shared GPU/PIM memory" if self.attach == "shared" else "GPU + PIM memory"
            return [(memory, {"weights": mem.weights_bytes, **kv, "activations": mem.activation_bytes},
                     self.capacity_bytes)]
        classes = {"routed experts": mem.routed_weights_bytes, "FFN weights": mem.ffn_weights_bytes,
                   "projection weights": mem.projection_weights_bytes}
        place = self._placement()
        pim = {k: v for k, v in classes.items() if place[k] in ("pim", "both")}
        split = {k: v for k, v in classes.items() if place[k] == "split"}
        away = sum(v for k, v in classes.items() if place[k] in ("pim", "split"))
        xpu = {"weights": mem.weights_bytes - away, "activations": mem.activation_bytes}
        pim, xpu = ({**kv, **pim}, xpu) if self.attention == "pim" else (pim, {**xpu, **kv})
        checks = [("PIM", pim, self.pim.capacity_bytes), ("xPU", xpu, self._xpu_bytes)]
        if split:
            checks.append(("PIM + xPU", {**pim, **xpu, **split}, self.pim.capacity_bytes + self._xpu_bytes))
        return checks

    def fits(self, mem: Footprint) -> Number:
        """Whether every memory holds what is placed in it (a bool, or a boolean array over a sweep)."""
        ok = True
        for _, items, capacity in self._checks(mem):
            ok = ok & (sum(items.values()) <= capacity)
        return ok

    def kv_room(self, step: Footprint, fraction: Number = 1.0) -> Number:
        """Bytes the KV cache may take next to ``step``'s weights and activations (its KV cache is ignored),
        with ``fraction`` of each memory in use: the least room the checks holding the KV cache leave, 0
        where a check without it fails (e.g. the xPU cannot hold its weights and activations)."""
        room, ok = np.inf, True
        for _, items, capacity in self._checks(replace(step, kv_cache_bytes=0.0)):
            free = capacity * fraction - sum(items.values())
            if "KV cache" in items:
                room = np.minimum(room, free)
            else:
                ok = ok & (free >= 0)
        return where(ok, np.maximum(room, 0.0), 0.0)

    def fit_reason(self, mem: Footprint) -> str:
        """Why ``mem`` does not fit, in GB: the check over its capacity by the largest share, at its worst
        point (over a sweep, with how many points do not fit); "" where every point fits."""
        worst = None
        for memory, items, capacity in self._checks(mem):
            cap, *parts = _broadcast(capacity, *items.values())
            share = sum(parts) / cap
            at = np.unravel_index(np.argmax(share), share.shape)
            if share[at] > 1 and (worst is None or share[at] > worst[0]):
                worst = (share[at], memory, {k: p[at] for k, p in zip(items, parts)}, cap[at])
        if worst is None:
            return ""
        _, memory, items, cap = worst
        terms = " + ".join(f"{k} {v / GB:.1f} GB" for k, v in items.items() if v)
        reason = f"{memory} holds {terms} = {sum(items.values()) / GB:.1f} GB > {memory} capacity {cap / GB:.1f} GB"
        fits = np.asarray(self.fits(mem))
        if fits.size > 1:
            reason += f" (worst of the {int(fits.size - fits.sum())} of {fits.size} points that do not fit)"
        return reason

    @property
    def onchip_bytes(self) -> float:
        return self.xpu.onchip_bytes

    @property
    def area_mm2(self) -> Number:
        return getattr(self.xpu, "area_mm2", float("nan"))

    @property
    def achieved_basis(self) -> Basis | None:
        """The weaker of its parts' bases (the xPU's own, the PIM units' ``derived``); None if either lacks one."""
        return weakest(self.xpu.achieved_basis, self.pim.achieved_basis)

    def error_band(self, family: str) -> tuple[float, float] | None:
        """The wider of the xPU's and the PIM units' bands of ``family`` (an operator may run on either;
        None where the xPU has no held-out data for it)."""
        host = self.xpu.error_band(family)
        if host is None:
            return None
        pim = self.pim.error_band(family)
        return max(host[0], pim[0]), max(host[1], pim[1])

    @property
    def power_band(self) -> float | None:
        """The wider of the xPU's and the PIM devices' power bands (None where the xPU has none)."""
        host = getattr(self.xpu, "power_band", None)
        return None if host is None else max(host, self.pim.power_band)

    @property
    def power_W(self) -> Number:
        return getattr(self.xpu, "power_W", float("nan"))

    @property
    def cost_usd(self) -> Number:
        """Cost to build, US$: the xPU's (a multi-GPU sums its devices) plus the PIM devices' when they are
        boards of their own (``attach: separate``); shared PIM stacks are the GPU's own, priced with it (a PIM
        die costs what the plain die does, :attr:`hwdse.hardware.pim.PIM.cost_usd`)."""
        pim = self.pim.cost_usd if self.attach == "separate" else 0.0
        return getattr(self.xpu, "cost_usd", float("nan")) + pim

    @property
    def static_power_W(self) -> Number:
        """The xPU's static power and the PIM devices' (DRAM background and refresh)."""
        return self.xpu.static_power_W + self.pim.static_power_W

    def schedule(self, ops: Sequence[Op], mode: Mode = "roofline") -> list[Timing]:
        """xPU timings with the PIM-placed ops swapped in (names and order of the xPU's schedule)."""
        host = self.xpu.schedule(ops, mode)
        whole = {op.name: op for op in ops}
        if self.attach == "separate" and self.attention == "pim":
            host = [self._kv_to_pim(t, whole[t.op.name]) if t.op.name in ("k_proj", "v_proj") else t for t in host]
        decode = not any(op.kind == "attention" and np.any(np.asarray(op.shape.get("q_len", 1)) != 1)
                         for op in ops)
        by_name = {t.op.name: t for t in host}
        moe = any(op.shape.get("experts", 1) > 1 for op in ops)
        on_pim = [self._place(op, by_name.get(op.name), mode, moe) if decode else False for op in ops]
        inbound, outbound = boundaries(ops, on_pim)
        swapped = {}
        for op, p, i, o in zip(ops, on_pim, inbound, outbound):
            if op.name in by_name and not (isinstance(p, (bool, np.bool_)) and not p):
                swapped[op.name] = merge(p, self.pim.timing(op, i, o, mode), by_name[op.name])
            elif decode and self.fc == "split" and _is_ffn(op) and op.name in by_name:
                pim_work(self.pim, op, required=True)
                swapped[op.name] = _split(by_name[op.name], self.pim.timing(op, True, True, mode))
        out = [swapped.get(t.op.name, t) for t in host]
        return self._overlap(out, decode) if self.overlap == "heads" else out

    def _overlap(self, timings: list[Timing], decode: bool) -> list[Timing]:
        """Insert ``pim_overlap`` after o_proj: a credit of ``-(1 - r) min(A, F)`` per layer, where A is
        the PIM attention time, F the xPU's q/k/v/o projections and r = 1 / (heads per xPU device):
        AttAcc's head-level pipeline hides all but one head's worth of the shorter side
        (attacc_simulator src/system.py ``_pipeline``, --pipeopt). Both arguments of the min are
        affine in the KV length, so the decode mean stays exact (a max of two affine terms)."""
        attn = [t for t in timings if t.op.name in _ATTENTION]
        proj = [t for t in timings if t.op.name in _PROJECTIONS]
        if not decode or not attn or not proj:
            credit_a = credit_f = 0.0
        else:
            r = 1.0 / attn[0].op.shape.get("heads", 1)
            credit_a = -(1 - r) * sum(t.seconds for t in attn)
            credit_f = -(1 - r) * sum(t.seconds for t in proj)
        count = proj[-1].op.count if proj else 1
        credit = Timing(Op("pim_overlap", "collective", count, 0.0), "gpu+pim" if decode else "gpu", "overlap",
                        credit_a, credit_f,
                        energy_J=0.0)
        at = max(i for i, t in enumerate(timings) if t.op.name in _PROJECTIONS) + 1 if proj else len(timings)
        return timings[:at] + [credit] + timings[at:]

    def _place(self, op: Op, gpu: Timing | None, mode: Mode, moe: bool = False) -> Any:
        """Whether ``op`` runs in PIM (a bool, or a boolean array over a swept batch); ``gpu``: its xPU timing
        in ``mode``; ``moe``: ``op`` is from an MoE model's table."""
        if gpu is None:
            return False
        if op.name in _ATTENTION:
            if self.attention != "pim":
                return False
            return pim_work(self.pim, op, required=op.kind == "attention")
        if self.experts == "pim" and is_routed_expert(op, moe):
            return pim_work(self.pim, op, required=op.kind == "gemm")
        if op.kind != "gemm" or self.fc in ("xpu", "split"):
            return False
        if self.fc in ("pim", "threshold"):
            pim_work(self.pim, op, required=True)
            if self.fc == "pim":
                return True
            rows = op.shape.get("m", 1) * op.shape.get("groups", 1)
            return rows <= self.fc_batch_threshold
        if not self.pim.runnable(op):
            return False
        return self.pim.timing(op, True, True, mode).seconds < gpu.seconds

    def _kv_to_pim(self, t: Timing, op: Op) -> Timing:
        """The K/V rows an xPU op writes also cross the link into the PIM devices (parallel links)."""
        nbytes = op.kv_write_bytes
        serial = dict(t.serial_s)
        serial["communication"] = serial.get("communication", 0.0) + nbytes / (self.pim.link_Bps * self.pim.devices)
        energy = t.energy_J + dram_energy_J(nbytes, self.pim.link.energy_pJ_per_bit)
        return Timing(t.op, t.unit, t.compute_class, t.compute_s, t.memory_s, serial, t.peak_ops_per_s,
                      t.bandwidth_Bps, energy)



def _is_ffn(op: Op) -> bool:
    """An FFN GEMM: a dense FFN's or an expert's, routed or shared (``shared_*``, ``dense_*`` in MoE tables)."""
    return op.name.removeprefix("shared_").removeprefix("dense_") in _FFN


def _broadcast(*values: Any) -> list[np.ndarray]:
    """``values`` as float arrays of one shape (DataArrays matched by dim name)."""
    if any(isinstance(v, xr.DataArray) for v in values):
        values = xr.broadcast(*(to_dataarray(v) for v in values))
    return [np.asarray(v, dtype=float) for v in np.broadcast_arrays(*(np.asarray(v) for v in values))]


def _split(xpu: Timing, pim: Timing) -> Timing:
    """An FFN GEMM split between xPU and PIM running at once, in proportion to their speeds
    (AttAcc --ffopt, attacc_simulator src/system.py ``_ff_parallel``): the xPU keeps the share
    ``t_pim / (t_xpu + t_pim)`` of the work, so both finish after ``t_xpu t_pim / (t_xpu + t_pim)``."""
    t_x, t_p = xpu.seconds, pim.seconds
    share = t_p / (t_x + t_p)
    return Timing(xpu.op, "gpu+pim", xpu.compute_class, xpu.compute_s * share, xpu.memory_s * share,
                  {k: v * share for k, v in xpu.serial_s.items()}, xpu.peak_ops_per_s, xpu.bandwidth_Bps,
                  xpu.energy_J * share + pim.energy_J * (1 - share))
