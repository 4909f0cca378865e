"""Catalog kind ``minifloat``: a scalar float, cast directly or under a shared scale."""

from __future__ import annotations

import numpy as np

from hwdse.formats import _minifloat as mf
from hwdse.formats._format import Format, Scales
from hwdse.formats._scaling import scaled_apply, scaled_fit, scaled_quantize
from hwdse.formats._spec import Compute, MinifloatSpec

__all__ = ["MinifloatFormat"]


class MinifloatFormat(Format):
    """fp32, bf16, fp16, OCP FP8/FP6/FP4 or any exponent/mantissa/bias.

    Without ``scaling`` quantize is a plain cast whose overflow follows ``overflow``
    (``nonfinite``: Inf where the format has it, else NaN, else saturate). With ``scaling``
    the scale maps clip_ratio*amax onto the largest normal and elements saturate.
    """

    spec: MinifloatSpec

    @property
    def bits_per_element(self) -> float:
        sc = self.spec.scaling
        return self.spec.bits + (sc.overhead_bits() if sc is not None else 0.0)

    @property
    def compute(self) -> Compute:
        return mf.float_compute(self.spec)

    @property
    def limits(self) -> mf.Limits:
        return mf.limits(self.spec)

    def quantize(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        if self.spec.scaling is None:
            return mf.cast(x, self.spec, saturate=self.spec.overflow == "saturate")
        return scaled_quantize(x, axis, self.spec.scaling, self.limits.max_normal,
                               lambda t: mf.cast(t, self.spec, saturate=True))

    @property
    def scale_block(self) -> int | None:
        return None if self.spec.scaling is None else self.spec.scaling.group_size

    def fit(self, x: np.ndarray, axis: int = -1, outer: Scales | None = None) -> Scales:
        if self.spec.scaling is None:
            return Scales(self, axis, {})
        return Scales(self, axis, {"scale": scaled_fit(x, axis, self.spec.scaling, self.limits.max_normal)})

    def _apply(self, x: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        if scale is None:
            return mf.cast(x, self.spec, saturate=self.spec.overflow == "saturate")
        return scaled_apply(x, scale, lambda t: mf.cast(t, self.spec, saturate=True))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Bit patterns (uint32) of the direct cast of ``x``."""
        return mf.encode(x, self.spec, saturate=self.spec.overflow == "saturate")

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Float32 values of bit patterns."""
        return mf.decode(codes, self.spec)

    def values(self) -> np.ndarray:
        """Sorted distinct finite values (formats up to 16 bits)."""
        return mf.values(self.spec)
