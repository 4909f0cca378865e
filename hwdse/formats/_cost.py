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
static mux vs 28-transistor mirror full adder); float products align into a fixed-point window of
at most 28 bits (FP32 significand 24 + 3 guard + sign); a flint operand decoder (leading-one
detect + shift) costs one B-bit adder.

Checks (tests/formats/test_cost.py): MAC energy FP8/BF16 = 0.54 and FP4/FP8 = 0.47, against the
vendor throughput doubling per halving (H100 FP8 = 2x BF16, B200 FP4 = 2x FP8, at equal power);
FP8/INT8 = 2.3x, inside van Baalen et al. 2023's "50-180% less efficient" (arXiv 2303.17951).
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

__all__ = ["Part", "MacCost", "mac_cost", "NODE_NM", "VENDOR_THROUGHPUT_VS_BF16"]

NODE_NM = 45
_ALIGN_WINDOW_BITS = 28
_MUX_PER_ADDER_BIT = 0.4


@dataclass(frozen=True)
class Part:
    """Area (um^2) and energy (pJ) of one piece of a MAC."""

    area_um2: float
    energy_pJ: float

    def __add__(self, other: Part) -> Part:
        return Part(self.area_um2 + other.area_um2, self.energy_pJ + other.energy_pJ)

    def __sub__(self, other: Part) -> Part:
        return self + other * -1.0

    def __mul__(self, k: float) -> Part:
        return Part(self.area_um2 * k, self.energy_pJ * k)

    __rmul__ = __mul__


_ZERO = Part(0.0, 0.0)
_FP32_ADD = Part(4184.0, 0.9)                                      # Horowitz 2014


@dataclass(frozen=True)
class _Fit:
    """y = a·f + b·g for area and energy, exact at two anchors ``(f, g, Part)``."""

    a: Part
    b: Part

    @classmethod
    def through(cls, p1: tuple[float, float, Part], p2: tuple[float, float, Part]) -> _Fit:
        (f1, g1, y1), (f2, g2, y2) = p1, p2
        det = f1 * g2 - f2 * g1
        return cls((y1 * g2 - y2 * g1) * (1 / det), (y2 * f1 - y1 * f2) * (1 / det))

    def __call__(self, f: float, g: float) -> Part:
        return self.a * f + self.b * g


_INT_MUL = _Fit.through((8 * 8, 8, Part(282, 0.2)), (32 * 32, 32, Part(3495, 3.1)))
_INT_ADD = _Fit.through((8, 1, Part(36, 0.03)), (32, 1, Part(137, 0.1)))
_FP_MUL = _Fit.through((11 * 11, 11, Part(1640, 1.1) - _INT_ADD(6, 1)),       # minus the exponent adders
                       (24 * 24, 24, Part(7700, 3.7) - _INT_ADD(9, 1)))

# Dense tensor throughput per compute class relative to BF16 (shared/research/hardware-specs.md 1.1):
# H100 SXM datasheet: BF16 989.4, FP16 989.4, TF32 494.7, FP8 1978.9 TFLOPS, INT8 1978.9 TOPS,
# FP32 (CUDA cores) 66.9; B200: FP6 = FP8 = 4500, FP4 9000 (FP4 = 2x FP8); A100: INT4 1248 = 2x INT8 624.
VENDOR_THROUGHPUT_VS_BF16: dict[str, float | None] = {
    "fp32": 66.9 / 989.4, "tf32": 0.5, "bf16": 1.0, "fp16": 1.0, "fp8": 2.0, "fp6": 2.0, "fp4": 4.0,
    "int8": 2.0, "int4": 4.0, "int2": None,
}


def int_add(width: float) -> Part:
    """A ``width``-bit integer adder."""
    return _INT_ADD(width, 1)


def int_mul(bits: int) -> Part:
    """A ``bits`` x ``bits`` integer multiplier."""
    return _INT_MUL(bits * bits, bits)


def fp_mul(el: FloatElement) -> Part:
    """A float multiplier: significand array, normalise/round and exponent adder."""
    sig = el.man_bits + 1
    return _FP_MUL(sig * sig, sig) + int_add(el.exp_bits + 1)


def shifter(width: float, stages: int) -> Part:
    """A logarithmic shifter: ``stages`` rows of ``width`` 2:1 muxes."""
    return int_add(width) * (_MUX_PER_ADDER_BIT * stages)


@dataclass(frozen=True)
class MacCost:
    """One MAC at ``node_nm`` (um^2, pJ), with its parts."""

    area_um2: float
    energy_pJ: float
    multiplier: Part
    align: Part                        # float products: exponent compare + alignment shifter
    add: Part                          # one adder-tree node
    per_dot: Part                      # FP32 accumulate + block-scale work, divided by the dot length
    decoder: Part                      # flint operand decoders and product shifter
    compute: str
    relative_throughput: float | None  # vendor dense throughput of the compute class vs BF16
    node_nm: int = NODE_NM


def _float_parts(el: FloatElement, n: int) -> tuple[Part, Part, Part]:
    """Multiplier, alignment and adder-tree node for float elements in a length-n dot product."""
    lim = limits(el)
    span = 2 * (lim.emax - lim.emin + el.man_bits + 1)           # product exponent range, in bits
    width = min(2 * (el.man_bits + 1) + span, _ALIGN_WINDOW_BITS) + math.log2(n)
    align = shifter(width, math.ceil(math.log2(span + 1))) + int_add(el.exp_bits + 1)
    return fp_mul(el), align, int_add(width)


def _int_parts(bits: int, n: int) -> tuple[Part, Part, Part]:
    return int_mul(bits), _ZERO, int_add(2 * bits + math.log2(n))


def mac_cost(fmt_or_name: Format | str, dot_length: int = 32) -> MacCost:
    """MAC cost of a format (object or catalog name) at 45 nm; ``dot_length`` is the dot-product
    length over which scalar formats share their FP32 accumulation (block formats use their block)."""
    fmt = get(fmt_or_name)
    spec = fmt.spec
    decoder = scale_work = _ZERO
    n = getattr(spec, "block_size", dot_length)
    if isinstance(fmt, MinifloatFormat):
        mul, align, add = _float_parts(spec, n)
    elif isinstance(fmt, IntegerFormat):
        mul, align, add = _int_parts(spec.bits, n)
    elif isinstance(fmt, FlintFormat):
        mul, align, add = _int_parts(spec.bits, n)
        decoder = int_add(spec.bits) * 2 + shifter(2 * spec.bits, math.ceil(math.log2(spec.bits)))
    elif isinstance(fmt, MXFormat):
        el = spec.element
        mul, align, add = _float_parts(el, n) if isinstance(el, FloatElement) else _int_parts(el.bits, n)
        scale_work = int_add(8)                                   # X_A·X_B = 8-bit exponent add
    elif isinstance(fmt, NVFP4Format):
        mul, align, add = _float_parts(spec.element, n)
        scale_work = fp_mul(spec.scale)                           # E4M3 x E4M3 block-scale product
    else:
        raise TypeError(f"no cost model for {type(fmt).__name__}")
    per_dot = (_FP32_ADD + scale_work) * (1 / n)
    total = mul + align + add + per_dot + decoder
    return MacCost(total.area_um2, total.energy_pJ, mul, align, add, per_dot, decoder,
                   fmt.compute, VENDOR_THROUGHPUT_VS_BF16[fmt.compute])
