"""First-order MAC cost of a format at 45 nm, built from Horowitz's ISSCC 2014 primitives.

A MAC is modelled inside a dot-product unit of length n (the block size of a block format,
``dot_length`` otherwise): one multiplier, for float products an alignment shifter and an
exponent comparison, one fixed-point adder-tree node, and per dot product one FP32
accumulation plus the block-scale work (E8M0 exponent add for MX, an E4M3 multiply for NVFP4),
shared by its n MACs. flint adds ANT's operand decoders and a product shifter.

Primitive fits (45 nm, 0.9 V; Horowitz, "Computing's energy problem", ISSCC 2014, as tabulated
in shared/research/formats.md 9.3), each exact at its two anchors:

* integer B-bit multiplier: a·B^2 + b·B through 8b (282 um^2, 0.2 pJ) and 32b (3495 um^2, 3.1 pJ);
* float multiplier: a·(M+1)^2 + b·(M+1) (significand array + normalise/round) plus an (E+1)-bit
  exponent adder, through FP16 (M=10, E=5: 1640 um^2, 1.1 pJ) and FP32 (M=23, E=8: 7700 um^2, 3.7 pJ);
* W-bit integer adder: linear through 8b (36 um^2, 0.03 pJ) and 32b (137 um^2, 0.1 pJ);
* FP32 adder: 4184 um^2, 0.9 pJ.

Assumptions (named, not measured): a 2:1 mux bit of a shifter costs 0.4 adder bit (12-transistor
static mux vs 28-transistor mirror full adder); float
products align into a fixed-point window of at most 28 bits (FP32 significand 24 + 3 guard + sign);
a flint operand decoder (leading-one detect + shift) costs one B-bit adder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwdse.formats._flint import FlintFormat
from hwdse.formats._float import MinifloatFormat
from hwdse.formats._format import Format
from hwdse.formats._integer import IntegerFormat
from hwdse.formats._minifloat import limits
from hwdse.formats._mx import MXFormat
from hwdse.formats._nvfp4 import NVFP4Format
from hwdse.formats._registry import get
from hwdse.formats._spec import FloatElement

__all__ = ["MacCost", "mac_cost", "NODE_NM", "VENDOR_THROUGHPUT_VS_BF16"]

NODE_NM = 45
_ALIGN_WINDOW_BITS = 28
_FP32_ADD = (4184.0, 0.9)                    # (um^2, pJ) Horowitz 2014


def _fit(p1: tuple[float, float, float], p2: tuple[float, float, float]) -> tuple[float, float]:
    """(a, b) of y = a·f + b·g through two anchors given as (f, g, y)."""
    (f1, g1, y1), (f2, g2, y2) = p1, p2
    det = f1 * g2 - f2 * g1
    return (y1 * g2 - y2 * g1) / det, (f1 * y2 - f2 * y1) / det


# One (a, b) pair for area (um^2) and one for energy (pJ) each.
_INT_MUL = [_fit((8 * 8, 8, c8), (32 * 32, 32, c32)) for c8, c32 in ((282, 3495), (0.2, 3.1))]
_INT_ADD = [_fit((8, 1, c8), (32, 1, c32)) for c8, c32 in ((36, 137), (0.03, 0.1))]
_FP_MUL = [_fit((11 * 11, 11, c16 - (a * 6 + b)), (24 * 24, 24, c32 - (a * 9 + b)))   # minus exponent adders
           for (c16, c32), (a, b) in zip(((1640, 7700), (1.1, 3.7)), _INT_ADD)]
_MUX_PER_ADDER_BIT = 0.4

# Dense tensor throughput per compute class relative to BF16 (shared/research/hardware-specs.md 1.1):
# H100 SXM datasheet: BF16 989.4, FP16 989.4, TF32 494.7, FP8 1978.9 TFLOPS, INT8 1978.9 TOPS,
# FP32 (CUDA cores) 66.9; B200: FP6 = FP8 = 4500, FP4 9000 (FP4 = 2x FP8); A100: INT4 1248 = 2x INT8 624.
VENDOR_THROUGHPUT_VS_BF16: dict[str, float | None] = {
    "fp32": 66.9 / 989.4, "tf32": 0.5, "bf16": 1.0, "fp16": 1.0, "fp8": 2.0, "fp6": 2.0, "fp4": 4.0,
    "int8": 2.0, "int4": 4.0, "int2": None,
}


def _int_mul(bits: int) -> tuple[float, float]:
    return tuple(a * bits * bits + b * bits for a, b in _INT_MUL)


def _fp_mul(el: FloatElement) -> tuple[float, float]:
    sig = el.man_bits + 1
    return tuple(a * sig * sig + b * sig + e for (a, b), e in zip(_FP_MUL, _int_add(el.exp_bits + 1)))


def _int_add(width: float) -> tuple[float, float]:
    return tuple(a * width + b for a, b in _INT_ADD)


@dataclass(frozen=True)
class MacCost:
    """Area and energy of one MAC at ``node_nm``, with its parts (um^2, pJ per MAC)."""

    area_um2: float
    energy_pJ: float
    multiplier: tuple[float, float]
    align: tuple[float, float]
    add: tuple[float, float]
    per_dot: tuple[float, float]       # FP32 accumulate + block-scale work, already divided by n
    decoder: tuple[float, float]
    compute: str
    relative_throughput: float | None  # vendor dense throughput of the compute class vs BF16
    node_nm: int = NODE_NM


def _float_parts(el: FloatElement, n: int) -> tuple[tuple[float, float], ...]:
    """Multiplier, alignment and adder-tree node for float elements in a length-n dot product."""
    lim = limits(el)
    span = 2 * (lim.emax - lim.emin + el.man_bits + 1)           # product exponent range, in bits
    width = min(2 * (el.man_bits + 1) + span, _ALIGN_WINDOW_BITS) + math.log2(n)
    stages = math.ceil(math.log2(span + 1))
    shifter = tuple(_MUX_PER_ADDER_BIT * stages * c for c in _int_add(width))
    compare = _int_add(el.exp_bits + 1)
    align = tuple(s + c for s, c in zip(shifter, compare))
    return _fp_mul(el), align, _int_add(width)


def _int_parts(bits: int, n: int) -> tuple[tuple[float, float], ...]:
    return _int_mul(bits), (0.0, 0.0), _int_add(2 * bits + math.log2(n))


def mac_cost(fmt_or_name: Format | str, dot_length: int = 32) -> MacCost:
    """MAC cost of a format (object or catalog name) at 45 nm; ``dot_length`` is the dot-product
    length over which scalar formats share their FP32 accumulation (block formats use their block)."""
    fmt = get(fmt_or_name)
    spec = fmt.spec
    zero = (0.0, 0.0)
    decoder = zero
    scale_work = zero
    n = getattr(spec, "block_size", dot_length)
    if isinstance(fmt, MinifloatFormat):
        mul, align, add = _float_parts(spec, n)
    elif isinstance(fmt, IntegerFormat):
        mul, align, add = _int_parts(spec.bits, n)
    elif isinstance(fmt, FlintFormat):
        mul, align, add = _int_parts(spec.bits, n)
        dec, shift = _int_add(spec.bits), _int_add(2 * spec.bits)
        stages = math.ceil(math.log2(spec.bits))
        decoder = tuple(2 * d + stages * s for d, s in zip(dec, shift))
    elif isinstance(fmt, MXFormat):
        el = spec.element
        mul, align, add = _float_parts(el, n) if isinstance(el, FloatElement) else _int_parts(el.bits, n)
        scale_work = _int_add(8)                                  # X_A·X_B = 8-bit exponent add
    elif isinstance(fmt, NVFP4Format):
        mul, align, add = _float_parts(spec.element, n)
        scale_work = _fp_mul(spec.scale)                          # E4M3 x E4M3 block-scale product
    else:
        raise TypeError(f"no cost model for {type(fmt).__name__}")
    per_dot = tuple((f + s) / n for f, s in zip(_FP32_ADD, scale_work))
    parts = (mul, align, add, per_dot, decoder)
    return MacCost(sum(p[0] for p in parts), sum(p[1] for p in parts), mul, align, add, per_dot, decoder,
                   fmt.compute, VENDOR_THROUGHPUT_VS_BF16[fmt.compute])
