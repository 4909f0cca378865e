"""``hwdse kernel``: the predicted time of one operator on any arch, with the basis it rests on."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from hwdse._errors import HwdseError
from hwdse.cli.support import (
    MODE_HELP,
    check_formats,
    check_mode,
    duration,
    loaded,
    one_line_errors,
)
from hwdse.hardware import load_arch
from hwdse.hardware._base import DEFAULT_MODE, basis_of, resolve_mode
from hwdse.hardware.systems import with_parallelism
from hwdse.workload.kernels import (
    COLLECTIVES,
    attention_op,
    collective_op,
    gemm_op,
    vector_op,
)
from hwdse.workload.ops import OPS_PER_ELEMENT, Op

__all__ = ["kernel"]

COLLECTIVE_OPS = tuple(c.replace("_", "-") for c in COLLECTIVES)
OPS = ("gemm", "prefill-attention", "decode-attention", "vector", *COLLECTIVE_OPS)


def _band(system: object, op: str, basis: str, seconds: float) -> dict[str, object]:
    """Where the measured time should fall: a roofline time is a lower bound; an achieved time carries the
    held-out |relative error| (median, p90) of its kernel family, named as the op with underscores
    (``error = predicted / measured - 1``); a derived one (PIM) the spread to its optimistic bound."""
    family = op.replace("-", "_")
    if basis == "roofline":
        return {"band_s": [seconds, None], "band": "lower bound (roofline)"}
    found = getattr(system, "error_band", lambda family: None)(family)
    if found is None:
        return {"band_s": [None, None], "band": f"no held-out {family} data"}
    median, p90 = found
    label = (f"spread {p90:.1%} to the optimistic bound (DRAM row overhead hidden, no refresh)" if basis == "derived"
             else f"held-out |error| median {median:.1%}, p90 {p90:.1%}")
    return {"band_s": [seconds / (1 + p90), seconds / (1 - p90) if p90 < 1 else None], "band_median_rel": median,
            "band_p90_rel": p90, "band": label}


def _positive(option: str, value: Optional[int]) -> int:
    if value is None or value < 1:
        raise HwdseError(option, None, f"must be >= 1, got {value}")
    return value


def _op(op: str, m: Optional[int], n: Optional[int], k: Optional[int], dtype: str, batch: int, heads: int,
        kv_heads: Optional[int], seq: Optional[int], head_dim: int, name: str, elements: Optional[int]) -> Op:
    """The operator the options describe; every size it needs is checked."""
    if op == "gemm":
        return gemm_op(_positive("--m", m), _positive("--n", n), _positive("--k", k), dtype)
    if op in ("prefill-attention", "decode-attention"):
        decode = op == "decode-attention"
        length = _positive("--seq", seq)
        return attention_op(_positive("--batch", batch), _positive("--heads", heads),
                            _positive("--kv-heads", kv_heads or heads), 1 if decode else length, length,
                            _positive("--head-dim", head_dim), dtype, decode)
    if name not in OPS_PER_ELEMENT:
        raise HwdseError("--name", None, f"unknown elementwise operator {name!r}; known: {', '.join(OPS_PER_ELEMENT)}")
    return vector_op(name, _positive("--elements", elements), dtype)


def _collective(system: object, op: str, nbytes: Optional[int], devices: Optional[int], mode: str) -> tuple:
    """A collective over ``devices`` of a GPU (or of a multi-GPU system's GPUs) on its scale-up fabric."""
    if system.kind not in ("gpu", "multi-gpu"):
        raise HwdseError("--op", None, f"{op} needs a gpu or multi-gpu arch, got {system.name!r} ({system.kind})")
    count, size = _positive("--devices", devices), _positive("--bytes", nbytes)
    group = with_parallelism(system if system.kind == "gpu" else system.device, count)
    kind = op.replace("-", "_")
    timing = group.fabric.collective(collective_op(kind, size, count), kind, size, count, group.device,
                                     resolve_mode(mode, group))
    return group, timing


@one_line_errors
def kernel(arch: Annotated[str, typer.Option("--arch", help="arch catalog name or YAML path")] = "h100-sxm",
           op: Annotated[str, typer.Option("--op", help=f"one of {', '.join(OPS)}")] = "gemm",
           m: Annotated[Optional[int], typer.Option("--m", help="GEMM rows (tokens)")] = None,
           n: Annotated[Optional[int], typer.Option("--n", help="GEMM output columns")] = None,
           k: Annotated[Optional[int], typer.Option("--k", help="GEMM reduction length")] = None,
           dtype: Annotated[str, typer.Option("--dtype", help="operand format (GEMM operands; attention: KV cache; "
                                                          "vector: elements)")] = "bf16",
           batch: Annotated[int, typer.Option(help="attention: sequences")] = 1,
           heads: Annotated[int, typer.Option(help="attention: query heads")] = 32,
           kv_heads: Annotated[Optional[int], typer.Option("--kv-heads", help="attention: KV heads (default: heads)")]
           = None,
           seq: Annotated[Optional[int], typer.Option(help="attention: prompt length (prefill) or cached positions "
                                                       "(decode)")] = None,
           head_dim: Annotated[int, typer.Option("--head-dim", help="attention: head size")] = 128,
           name: Annotated[str, typer.Option(help="vector: elementwise operator")] = "softmax",
           elements: Annotated[Optional[int], typer.Option(help="vector: elements read and written")] = None,
           nbytes: Annotated[Optional[int], typer.Option("--bytes", help="collective: bytes per device")] = None,
           devices: Annotated[Optional[int], typer.Option("--devices", help="collective: devices taking part (a "
                                                          "GPU arch is wrapped in a tensor-parallel system of them)")]
           = None,
           mode: Annotated[str, typer.Option(help=MODE_HELP)] = DEFAULT_MODE,
           as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Time one operator on one device of ``--arch``: seconds, the bound, and the basis (calibrated, transferred,
    derived or roofline)."""
    check_mode(mode)
    if op not in OPS:
        raise HwdseError("--op", None, f"must be one of {', '.join(OPS)}, got {op!r}")
    check_formats("--dtype", [dtype])
    system = loaded("--arch", load_arch, arch)
    if op in COLLECTIVE_OPS:
        system, timing = _collective(system, op, nbytes, devices, mode)
        mode = resolve_mode(mode, system)
    else:
        mode = resolve_mode(mode, system)
        timing = system.schedule([_op(op, m, n, k, dtype, batch, heads, kv_heads, seq, head_dim, name, elements)],
                                 mode)[0]
    bound = max((("compute", timing.compute_s), ("memory", timing.memory_s), *timing.serial_s.items()),
                key=lambda kv: float(kv[1]))[0]
    out = {"arch": system.name, "op": op, "mode": mode, "basis": basis_of(system, mode), "time_s": float(timing.seconds),
           "bound": bound, "compute_class": timing.compute_class, "compute_s": float(timing.compute_s),
           "memory_s": float(timing.memory_s), "serial_s": {k: float(v) for k, v in timing.serial_s.items()}}
    out.update(_band(system, op, out["basis"], out["time_s"]))
    if as_json:
        print(json.dumps(out, indent=1))
        return
    low, high = out["band_s"]
    span = f"{duration(low, 3)} - {duration(high, 3) if high else '?'}" if low is not None else ""
    where = (out["band"] if out["basis"] == "roofline" or low is None
             else f"within {span} ({out['band']})" if out["basis"] == "derived"
             else f"90 % of measured kernels within {span}")
    print(f"{op} on {system.name} ({mode}, basis {out['basis']}): {duration(out['time_s'], 4)}, {bound}-bound "
          f"({timing.compute_class}); {where}")
