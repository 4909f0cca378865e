"""Dequantization: the arithmetic class a matmul runs in, and what converting its operands costs.

A datapath multiplies a pair of operands natively when it has a peak for their class; otherwise
the operands are converted (dequantized) to a class it has, as the survey (arXiv 2402.16363,
Sec. 3) describes for INT4 weights on an H100. The rules, per operand format:

* **class** -- ``fmt.compute``; a *flint* operand (ANT, arXiv 2208.14286) needs a flint decoder,
  which a GPU tensor core lacks: unless the datapath lists ``"flint"`` in ``decodes``, it is
  decoded into the next wider class (``DECODED_CLASS``), since flint4 magnitudes
  (<= 16) fit INT8 exactly and flint8 ones an FP16;
* **scales inside the dot product** (MX and NVFP4 blocks, ``group`` scaling of INT/minifloat
  along the reduction axis) need a block-scaled MMA (Blackwell ``tcgen05.mma
  kind::mxf8f6f4 / kind::mxf4nvf4``, PTX ISA 8.7). Where the class is not in ``block_scaled``
  the operand is upcast to a 16-bit float and scaled there, as Triton lowers ``tt.dot_scaled``
  on GPUs without that MMA (``DecomposeScaledBlocked``: FP16 if an operand is FP16, else BF16;
  ``cvt`` then ``mul`` by the broadcast scale). Per-tensor and per-channel scales commute with
  the reduction and fold into the GEMM epilogue: they cost nothing per element;
* the op runs in ``native_class(widest class)``; every operand whose own class differs from it
  (or that needs a decoder or its block scales applied) is converted. Classes listed in
  ``block_scaled`` form one mixed-input family (``kind::mxf8f6f4`` multiplies E2M1 x E4M3
  natively), so they need no conversion among themselves.

Conversion cost, vector ops per element (``ops_per_element``), counted like the elementwise
operators of ``hwdse.workload.ops`` (one op per arithmetic instruction and element, at the
device's ``vector_TFLOPS``; packed half2 conversions doing two elements per instruction are
taken to offset the FMA = 2 FLOP convention of that peak):

* element decode: 1 (``cvt``/``I2F``, or the FP6-LLM bit-placement trick) -- flint: 3
  (leading-one detect, shift, sign restore: ANT's decoder as software);
* scale multiply: 1 when the scale is inside the dot product, plus 1/block for converting the
  block's scale once (E8M0 to a float is a shift, E4M3 a ``cvt``); 0 otherwise.

The convert ops run on the vector units and add to the op's compute time (a fused kernel
dequantizes in registers between the load and the MMA, so the time overlaps memory traffic
but not the MMA: the vector units and tensor cores share issue slots). When the dequantization
is not fused (``fused=False``: a separate dequantize kernel, then a dense GEMM), the converted
copy is written and read back in the compute class: ``2 x elements x class bytes`` of extra DRAM
traffic. Fused is the default because serving kernels fuse it (Marlin, AWQ/GPTQ GEMV,
TensorRT-LLM's mixed-input CUTLASS GEMMs, Triton's ``dot_scaled``). Not modelled: re-dequantizing
a weight tile once per CTA row of a large-M GEMM, quantizing outputs, dequantization energy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from hwdse._errors import HwdseError
from hwdse._params import Number
from hwdse.formats import get
from hwdse.hardware._base import join_classes
from hwdse.workload.ops import Op

__all__ = ["Dequant", "BlockScaled", "CLASS_BYTES", "needs", "ops_per_element", "plan", "gpu_plan"]

BlockScaled = tuple[Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4", "int2"], ...]
"""Classes whose matrix datapath applies per-block scales itself (a catalog field type)."""

# Bytes per element of a dequantized copy in each class (TF32 is stored as 32 bits).
CLASS_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp6": 0.75,
               "fp4": 0.5, "int4": 0.5, "int2": 0.25}
DECODE_OPS = 1.0        # cvt / I2F per element
FLINT_DECODE_OPS = 3.0  # leading-one detect + shift + sign, per element
SCALE_OPS = 1.0         # multiply by a group/block scale, per element
# Format kinds whose elements a plain cast decodes; others (flint) need a decoder, and decode
# into the next wider class: flint4 magnitudes (<= 16) fit INT8, flint8 ones need FP16.
_DECODED_BY_CAST = ("minifloat", "integer", "mx", "nvfp4")
DECODED_CLASS = {"int2": "int4", "int4": "int8", "int8": "fp16"}

# Which tensors of an op feed the matrix datapath, in the order of ``Op.operands``.
_OPERAND_BYTES = {"gemm": ("weight_bytes", "act_in_bytes"), "attention": ("act_in_bytes", "kv_read_bytes")}


@dataclass(frozen=True)
class Dequant:
    """How one op instance runs: its class, the operands converted and their cost.

    ``ops`` in vector ops, ``extra_bytes`` in bytes (non-zero only when not fused),
    ``compute_s``/``memory_s`` in seconds (added to the op's compute and memory time).
    """

    compute_class: str
    converted: tuple[str, ...] = ()
    ops: Number = 0.0
    extra_bytes: Number = 0.0
    compute_s: Number = 0.0
    memory_s: Number = 0.0


def _in_dot_block(fmt: Any) -> int | None:
    """Elements per scale when the format's scales lie inside the dot product, else None."""
    spec = fmt.spec
    if spec.kind in ("mx", "nvfp4"):
        return spec.block_size
    scaling = getattr(spec, "scaling", None)
    if scaling is not None and scaling.granularity == "group":
        return scaling.group_size
    return None


def needs(formats: tuple[str, ...], native_class: Callable[[str], str], block_scaled: Collection[str] = (),
          decodes: Collection[str] = ()) -> tuple[str, tuple[str, ...]]:
    """The class an operand pair runs in and the operands (format names) that must be converted.

    ``native_class(cls)`` maps a wanted class to the one the datapath has (upcast chain);
    ``block_scaled`` lists classes with block-scaled MMAs; ``decodes`` format kinds the
    datapath decodes itself (e.g. ``"flint"`` for an ANT PE).
    """
    fmts = [get(f) for f in formats]
    wide16 = "fp16" if any(f.compute == "fp16" for f in fmts) else "bf16"
    wanted, as_stored = [], []
    for f in fmts:
        cls = f.compute
        decoded = f.spec.kind in _DECODED_BY_CAST or f.spec.kind in decodes
        if not decoded:
            cls = DECODED_CLASS.get(cls, "fp16")
        scaled = _in_dot_block(f) is None or cls in block_scaled
        if not scaled:
            cls = join_classes((cls, wide16))
        wanted.append(cls)
        as_stored.append(decoded and scaled)
    run = native_class(join_classes(wanted))
    family = run in block_scaled
    converted = tuple(f.name for f, ok in zip(fmts, as_stored)
                      if not (ok and (f.compute == run or (family and f.compute in block_scaled))))
    return run, converted


def ops_per_element(fmt_name: str, decoded_here: bool = False) -> float:
    """Vector ops to convert one element of ``fmt_name`` to a wider class, its group/block
    scale applied (see module doc); ``decoded_here``: the datapath decodes the format itself."""
    fmt = get(fmt_name)
    decode = FLINT_DECODE_OPS if fmt.spec.kind not in _DECODED_BY_CAST and not decoded_here else DECODE_OPS
    block = _in_dot_block(fmt)
    return decode + (0.0 if block is None else SCALE_OPS + 1.0 / block)


def plan(op: Op, native_class: Callable[[str], str], *, vector_ops_per_s: Number, bandwidth_Bps: Number,
         block_scaled: Collection[str] = (), decodes: Collection[str] = (), fused: bool = True) -> Dequant:
    """Class and dequantization cost of one op instance (vector ops: no operands, no cost)."""
    if not op.operands:
        return Dequant("vector")
    run, converted = needs(op.operands, native_class, block_scaled, decodes)
    if not converted:
        return Dequant(run)
    if op.kind not in _OPERAND_BYTES:
        raise HwdseError(f"op {op.name}", "operands", f"no operand tensors known for kind {op.kind!r}")
    ops: Number = 0.0
    elements: Number = 0.0
    for name, field in zip(op.operands, _OPERAND_BYTES[op.kind]):
        if name not in converted:
            continue
        n = getattr(op, field) / (get(name).bits_per_element / 8)
        ops = ops + n * ops_per_element(name, get(name).spec.kind in decodes)
        elements = elements + n
    extra = 0.0 if fused else 2 * elements * CLASS_BYTES[run]
    return Dequant(run, converted, ops, extra, ops / vector_ops_per_s, extra / bandwidth_Bps)


def gpu_plan(op: Op, gpu: Any) -> Dequant:
    """:func:`plan` for a GPU spec (``compute.block_scaled``, ``compute.dequant_fused``)."""
    c = gpu.compute
    return plan(op, gpu.native_class, vector_ops_per_s=c.vector_TFLOPS * 1e12, bandwidth_Bps=gpu.bandwidth_Bps,
                block_scaled=getattr(c, "block_scaled", ()), fused=getattr(c, "dequant_fused", True))
