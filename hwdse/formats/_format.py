"""The format interface every kind implements, and the block view they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from hwdse.formats._spec import Compute

__all__ = ["Format", "to_blocks"]


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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.bits_per_element:g} bits, {self.compute}>"


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
