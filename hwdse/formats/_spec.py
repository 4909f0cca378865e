"""Catalog schema of number formats: one pydantic model per ``kind``, strict and frozen.

A catalog file (``formats/<name>.yaml``) is one of these specs. The element description
(:class:`FloatElement`) is shared by plain minifloats, MX elements and NVFP4 elements and
scales, so a user defines a new format by composing fields, not by writing code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from hwdse._catalog import Spec

__all__ = ["Compute", "FloatElement", "IntElement", "Scaling", "MinifloatSpec", "IntegerSpec",
           "FlintSpec", "MXSpec", "NVFP4Spec", "FormatSpec"]

Compute = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4", "int2"]
"""Arithmetic class a processing element needs to multiply a format's elements natively."""

_F32_MIN_EXP, _F32_MAX_EXP = -149, 127  # float32: smallest subnormal 2^-149, largest binade 2^127


class FloatElement(Spec):
    """A sign + ``exp_bits`` + ``man_bits`` float with the given bias and special encodings.

    ``specials``: ``ieee`` = top exponent holds Inf (mantissa 0) and NaN; ``fn`` = no Inf, only
    the all-ones code is NaN (OCP E4M3); ``none`` = every code is a finite number (OCP FP6/FP4).
    """

    exp_bits: int = Field(ge=1, le=8)
    man_bits: int = Field(ge=0, le=23)
    bias: int | None = Field(default=None, description="default 2^(exp_bits-1) - 1")
    specials: Literal["ieee", "fn", "none"] = "ieee"

    @model_validator(mode="after")
    def _check(self) -> FloatElement:
        if self.specials == "ieee" and self.exp_bits < 2:
            raise ValueError("specials 'ieee' needs exp_bits >= 2")
        if self.specials == "fn" and self.man_bits < 1:
            raise ValueError("specials 'fn' needs man_bits >= 1")
        bias = self.exponent_bias
        top = (1 << self.exp_bits) - (2 if self.specials == "ieee" else 1) - bias
        if top > _F32_MAX_EXP or 1 - bias - self.man_bits < _F32_MIN_EXP:
            raise ValueError(f"bias {bias} puts the range outside float32 (2^-149 .. 2^127)")
        return self

    @property
    def exponent_bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1 if self.bias is None else self.bias

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits + self.man_bits


class IntElement(Spec):
    """A two's-complement integer element ``k / 2^frac_bits`` (MXINT8: 8 bits, 6 fraction bits).

    ``asymmetric`` allows the most negative code (-2^(bits-1)); the default keeps the range
    symmetric, as microxcaling does for MXINT8.
    """

    bits: int = Field(ge=2, le=8)
    frac_bits: int = Field(ge=0, le=7)
    asymmetric: bool = False

    @property
    def k_max(self) -> int:
        """Largest integer code value (127 for 8 bits)."""
        return (1 << (self.bits - 1)) - 1

    @property
    def k_min(self) -> int:
        """Smallest integer code value (-127, or -128 when asymmetric)."""
        return -self.k_max - (1 if self.asymmetric else 0)


class Scaling(Spec):
    """How a scale is shared: per tensor, per channel (slice along the reduction axis) or per
    group of ``group_size`` consecutive elements along the reduction axis."""

    granularity: Literal["tensor", "channel", "group"]
    group_size: int | None = Field(default=None, ge=1)
    scale_format: Literal["fp32", "fp16", "bf16", "e8m0"] = "fp32"
    clip_ratio: float = Field(default=1.0, gt=0, le=1, description="scale maps clip_ratio*amax to the max")

    @model_validator(mode="after")
    def _check(self) -> Scaling:
        if (self.granularity == "group") != (self.group_size is not None):
            raise ValueError("group_size is required for granularity 'group' and only there")
        return self

    @property
    def scale_bits(self) -> int:
        return {"fp32": 32, "fp16": 16, "bf16": 16, "e8m0": 8}[self.scale_format]

    def overhead_bits(self, zero_point_bits: int = 0) -> float:
        """Scale (and zero-point) bits per element: group scales only; per-tensor and per-channel
        scales are amortised over the whole tensor or row and left out."""
        if self.group_size is None:
            return 0.0
        return (self.scale_bits + zero_point_bits) / self.group_size


class _Base(Spec):
    name: str
    source: str = Field(min_length=3, description="spec, paper or table the numbers come from")
    description: str = ""


class MinifloatSpec(_Base, FloatElement):
    """A scalar float format. With no ``scaling`` it is a direct cast (no scale)."""

    kind: Literal["minifloat"]
    overflow: Literal["saturate", "nonfinite"] = "nonfinite"
    scaling: Scaling | None = None


class IntegerSpec(_Base):
    """A B-bit integer with a shared scale (and a zero point when not symmetric)."""

    kind: Literal["integer"]
    bits: int = Field(ge=2, le=8)
    symmetric: bool = True
    scaling: Scaling


class FlintSpec(_Base):
    """ANT flint (Guo et al., MICRO 2022): sign-magnitude when ``signed``, per-tensor or
    per-channel scale ``alpha / max(grid)`` with ``alpha`` searched over ``clip_search_pct``."""

    kind: Literal["flint"]
    bits: int = Field(ge=3, le=8)
    signed: bool = True
    granularity: Literal["tensor", "channel"] = "tensor"
    clip_search_pct: tuple[int, int] = Field(default=(75, 150), description="alpha = amax*i/100, i in [lo, hi)")

    @model_validator(mode="after")
    def _check(self) -> FlintSpec:
        lo, hi = self.clip_search_pct
        if not 0 < lo < hi:
            raise ValueError(f"clip_search_pct must satisfy 0 < lo < hi, got {self.clip_search_pct}")
        return self


def _element_kind(value: Any) -> str:
    """``int`` for an integer element (it has ``bits``), else ``float``."""
    if isinstance(value, dict):
        return "int" if "bits" in value else "float"
    return "int" if isinstance(value, IntElement) else "float"


Element = Annotated[Annotated[FloatElement, Tag("float")] | Annotated[IntElement, Tag("int")],
                    Discriminator(_element_kind)]


class MXSpec(_Base):
    """OCP Microscaling v1.0 block format: ``block_size`` elements share one E8M0 scale."""

    kind: Literal["mx"]
    element: Element
    block_size: int = Field(default=32, ge=1)
    scale_rule: Literal["floor", "ceil", "even", "rceil"] = "floor"


class NVFP4Spec(_Base):
    """Two-level block format (NVIDIA NVFP4): float elements, a float block scale ~ amax/elem_max
    per ``block_size`` elements and an optional FP32 per-tensor scale."""

    kind: Literal["nvfp4"]
    element: FloatElement = FloatElement(exp_bits=2, man_bits=1, specials="none")
    block_size: int = Field(default=16, ge=1)
    scale: FloatElement = FloatElement(exp_bits=4, man_bits=3, specials="fn")
    tensor_scale: bool = True


FormatSpec = Annotated[MinifloatSpec | IntegerSpec | FlintSpec | MXSpec | NVFP4Spec, Field(discriminator="kind")]
