"""The format interface every kind implements, and the block view they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdse.formats._spec import Compute

__all__ = ["Format", "Scales", "to_blocks", "per_element"]


class Format(ABC):
    """A number format built from its validated catalog spec (stored, never mutated)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    @abstractmethod
    def bits_per_element(self) -> float:
        """Storage bits per element, block/group scales included; per-tensor and per-channel
        scales are left out (one scale over >= hundreds of elements adds < 0.1 bit)."""

    @property
    @abstractmethod
    def compute(self) -> Compute:
        """Arithmetic class a processing element needs to multiply the elements natively."""

    @abstractmethod
    def quantize(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """Quantize-dequantize ``x`` (float32 result, same shape); blocks and groups run along
        ``axis`` (the reduction axis of a matmul)."""

    @property
    @abstractmethod
    def scale_block(self) -> int | None:
        """Consecutive elements along the axis that share one scale (group or block size);
        None when a scale spans the whole axis or tensor, or there is no scale."""

    @abstractmethod
    def fit(self, x: np.ndarray, axis: int = -1, outer: Scales | None = None) -> Scales:
        """The scales (and zero points) ``quantize(x, axis)`` uses, one per element of ``x``.

        ``outer``: an earlier fit whose tensor-wide scale (NVFP4's FP32 scale) is kept, so that
        block scales refitted on a slice stay consistent with it (GPTQ); formats without a
        tensor-wide scale over block scales ignore it.
        """

    @abstractmethod
    def _apply(self, x: np.ndarray, **params: Any) -> np.ndarray:
        """Quantize ``x`` elementwise with per-element ``params`` from :meth:`fit` (float32)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.bits_per_element:g} bits, {self.compute}>"


@dataclass(frozen=True)
class Scales:
    """Quantization parameters a format fitted on a tensor, one per element (or one scalar).

    ``quantize(x)`` rounds ``x`` with them instead of refitting: for the fitted tensor ``t``,
    ``fmt.fit(t, axis).quantize(t)`` equals ``fmt.quantize(t, axis)`` bit for bit. This is the
    quantizer with frozen scales that error-compensating recipes (GPTQ) need.
    """

    fmt: Format
    axis: int
    params: Mapping[str, Any]

    def quantize(self, x: np.ndarray, index: slice | None = None) -> np.ndarray:
        """Quantize ``x`` (the fitted shape, or along ``axis`` only the positions ``index`` picks)."""
        params = dict(self.params)
        if index is not None:
            for k, v in params.items():
                if np.ndim(v):
                    sl = [slice(None)] * np.ndim(v)
                    sl[self.axis] = index
                    params[k] = v[tuple(sl)]
        with np.errstate(invalid="ignore", over="ignore"):
            return self.fmt._apply(np.asarray(x, dtype=np.float32), **params)


def per_element(p: np.ndarray, blocks_shape: tuple[int, ...], restore: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A per-block parameter ``(..., n, 1)`` repeated over its block and mapped back to the
    tensor's shape with the ``restore`` of :func:`to_blocks` (or of a scale-group view)."""
    return np.ascontiguousarray(restore(np.broadcast_to(p, blocks_shape)))


def to_blocks(x: np.ndarray, axis: int, size: int | None) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """View ``x`` as ``(..., n_blocks, size)`` along ``axis`` (``size=None``: the whole axis).

    A ragged last block is padded by repeating its last element, which leaves block max, min
    and amax unchanged. Returns the blocks and a function mapping blocked results back.
    """
    x = np.asarray(x)
    shape = x.shape
    moved = np.moveaxis(x.reshape(1) if x.ndim == 0 else x, axis, -1)
    n = moved.shape[-1]
    size = n if size is None else size
    pad = -n % size
    if pad:
        moved = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(0, pad)], mode="edge")
    padded = moved.shape

    def restore(y: np.ndarray) -> np.ndarray:
        out = np.moveaxis(y.reshape(padded)[..., :n], -1, axis if x.ndim else 0)
        return out.reshape(shape)

    return moved.reshape(*padded[:-1], -1, size), restore
