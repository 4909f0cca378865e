"""Quantization quality metrics (all reductions in float64)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from hwdse.formats._registry import get

__all__ = ["mse", "qsnr_db", "max_error", "matmul_rel_error", "quality_table"]


def _pair(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, q = np.asarray(x, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if x.shape != q.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {q.shape}")
    return x, q


def mse(x: np.ndarray, q: np.ndarray) -> float:
    """Mean squared error of ``q`` against ``x`` (units of x squared)."""
    x, q = _pair(x, q)
    return float(np.mean((q - x) ** 2))


def qsnr_db(x: np.ndarray, q: np.ndarray) -> float:
    """Quantization SNR in dB: 10*log10(sum x^2 / sum (q - x)^2); +inf when exact."""
    x, q = _pair(x, q)
    noise = float(np.sum((q - x) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(x**2) / noise))


def max_error(x: np.ndarray, q: np.ndarray) -> float:
    """Largest absolute error (units of x)."""
    x, q = _pair(x, q)
    return float(np.max(np.abs(q - x)))


def matmul_rel_error(a: np.ndarray, b: np.ndarray, fmt_a: Any, fmt_b: Any | None = None) -> float:
    """Relative Frobenius error ||Q(a)Q(b) - ab|| / ||ab|| of a (m, k) @ (k, n) product.

    Both operands are quantized along the reduction axis k (blocks of a along its rows,
    blocks of b along its columns); ``fmt_b`` defaults to ``fmt_a``. Formats may be objects
    or catalog names.
    """
    fa = get(fmt_a)
    fb = fa if fmt_b is None else get(fmt_b)
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    exact = a64 @ b64
    approx = fa.quantize(a, axis=-1).astype(np.float64) @ fb.quantize(b, axis=0).astype(np.float64)
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def quality_table(formats: Sequence[Any], tensors: Mapping[str, np.ndarray], axis: int = -1) -> xr.Dataset:
    """QSNR (dB), MSE and max error of every format on every tensor, quantized along ``axis``.

    Dims ``format`` x ``tensor``; ``bits_per_element`` and ``compute`` are coordinates of ``format``.
    """
    fmts = [get(f) for f in formats]
    shape = (len(fmts), len(tensors))
    out = {k: np.empty(shape) for k in ("qsnr_db", "mse", "max_error")}
    for i, fmt in enumerate(fmts):
        for j, x in enumerate(tensors.values()):
            q = fmt.quantize(x, axis=axis)
            out["qsnr_db"][i, j], out["mse"][i, j], out["max_error"][i, j] = qsnr_db(x, q), mse(x, q), max_error(x, q)
    units = {"qsnr_db": "dB", "mse": "x^2", "max_error": "x"}
    return xr.Dataset(
        {k: (("format", "tensor"), v, {"units": units[k]}) for k, v in out.items()},
        coords={"format": [f.name for f in fmts], "tensor": list(tensors),
                "bits_per_element": ("format", [f.bits_per_element for f in fmts]),
                "compute": ("format", [f.compute for f in fmts])})
