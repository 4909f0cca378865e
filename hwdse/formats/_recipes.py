"""Quantization recipes as deployed: weights W (out, in) and activations X (tokens, in) quantized
as a pair for Y = X @ W.T, both along the reduction axis ``in``, with the formats' own quantizers.

* ``rtn``: round to nearest under each format's own scaling.
* ``smoothquant`` (Xiao et al. 2023, arXiv 2211.10438, mit-han-lab/smoothquant ``smooth.py``):
  s_j = max|X_j|^alpha / max|W_j|^(1-alpha) per input channel (both maxima clamped to >= 1e-5 as
  the reference does), X/s (folded into the preceding LayerNorm) and W*s, then RTN.
* ``hadamard`` (QuaRot, Ashkboos et al. 2024, arXiv 2404.00456): X R and W R with R an orthonormal
  Hadamard matrix (block-diagonal over the largest power-of-two block dividing ``in``), optionally
  with random +-1 signs, then RTN; (X R)(W R)^T = X W^T.
* ``gptq`` (Frantar et al. 2023, arXiv 2210.17323, IST-DASLab/gptq ``gptq.py`` fasterquant):
  columns quantized in order with the error spread over the columns not yet quantized through the
  upper Cholesky factor of H^-1, H = 2/N X^T X + damp*mean(diag H)*I, lazy batches of 128
  columns; activations RTN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import scipy.linalg
from pydantic import Field, TypeAdapter

from hwdse import _catalog
from hwdse.formats._format import Format, Scales
from hwdse.formats._registry import get

__all__ = ["Recipe", "RTN", "SmoothQuant", "Hadamard", "GPTQ", "RecipeSpec", "PairResult", "recipe",
           "quantize_pair", "smoothquant_scales", "hadamard_matrix", "gptq_quantize"]


class Recipe(_catalog.Spec):
    """A named quantization recipe and its parameters (strict and frozen)."""

    name: str


class RTN(Recipe):
    """Round to nearest, each tensor under its format's own scaling."""

    name: Literal["rtn"] = "rtn"


class SmoothQuant(Recipe):
    """Per-input-channel smoothing s_j = max|X_j|^alpha / max|W_j|^(1-alpha) before RTN."""

    name: Literal["smoothquant"] = "smoothquant"
    alpha: float = Field(default=0.5, ge=0, le=1, description="migration strength (paper default 0.5)")


class Hadamard(Recipe):
    """Orthonormal Hadamard rotation of the reduction axis before RTN (QuaRot)."""

    name: Literal["hadamard"] = "hadamard"
    seed: int | None = Field(default=None, description="random +-1 signs D (rotation D H) from this seed; "
                                                       "None: plain Hadamard")


class GPTQ(Recipe):
    """GPTQ weights (error compensation with the calibration Hessian), RTN activations."""

    name: Literal["gptq"] = "gptq"
    damp: float = Field(default=0.01, ge=0, description="percdamp: fraction of mean(diag H) added to diag H")
    block_size: int = Field(default=128, ge=1, description="lazy-batch columns (rounded to whole scale groups)")


RecipeSpec = Annotated[RTN | SmoothQuant | Hadamard | GPTQ, Field(discriminator="name")]
_ADAPTER: TypeAdapter = TypeAdapter(RecipeSpec)


def recipe(spec: str | dict[str, Any] | Recipe) -> Recipe:
    """A recipe from its name (``"gptq"``), a mapping (``{"name": "smoothquant", "alpha": 0.8}``)
    or an instance; unknown names and bad parameters raise :class:`hwdse._errors.HwdseError`."""
    if isinstance(spec, Recipe):
        return spec
    return _catalog.validate(_ADAPTER, {"name": spec} if isinstance(spec, str) else dict(spec), "recipe")


_parse_recipe = recipe   # quantize_pair's ``recipe`` argument shadows the function


@dataclass(frozen=True)
class PairResult:
    """The pair as the kernel multiplies it and its output error: ``x_q @ w_q.T`` approximates
    ``x @ w.T``. For smoothquant and hadamard both are in the smoothed or rotated basis; ``x_q`` is
    quantized only when an activation format was given (float32, like ``w_q``)."""

    recipe: Recipe
    weights: str
    activations: str | None
    x_q: np.ndarray
    w_q: np.ndarray
    rel_error: float
    """||x_q w_q^T - x w^T||_F / ||x w^T||_F."""
    qsnr_db: float
    """Output QSNR, 10 log10(||x w^T||^2 / ||x_q w_q^T - x w^T||^2) = -20 log10(rel_error)."""


def smoothquant_scales(x: np.ndarray, w: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """SmoothQuant's per-input-channel scales (float64, length ``in``): x (tokens, in), w (out, in)."""
    act = np.maximum(np.max(np.abs(np.asarray(x, dtype=np.float64)), axis=0), 1e-5)
    wgt = np.maximum(np.max(np.abs(np.asarray(w, dtype=np.float64)), axis=0), 1e-5)
    return np.maximum(act**alpha / wgt ** (1 - alpha), 1e-5)


def hadamard_matrix(n: int, seed: int | None = None) -> np.ndarray:
    """Orthonormal rotation (float64, n x n) for a reduction axis of size ``n``: the Sylvester
    Hadamard matrix / sqrt(n) when n is a power of two, else block-diagonal with blocks of the
    largest power of two dividing n; ``seed``: left-multiplied by a random +-1 diagonal."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    b = n & -n                                          # largest power of two dividing n
    h = np.ones((1, 1))
    while h.shape[0] < b:
        h = np.block([[h, h], [h, -h]])
    r = np.kron(np.eye(n // b), h / np.sqrt(b))
    if seed is not None:
        r = np.random.default_rng(seed).choice([-1.0, 1.0], n)[:, None] * r
    return r


def gptq_quantize(w: np.ndarray, hessian: np.ndarray, fmt: Any, damp: float = 0.01,
                  block_size: int = 128) -> tuple[np.ndarray, Scales]:
    """GPTQ-quantized copy of ``w`` (out, in) (float32) under ``fmt``, groups along ``in``, and
    the scales it is stored with (``scales.quantize(q)`` is ``q``).

    Scales are frozen as deployed: a format with group or block scales refits them on the
    error-updated weights when quantization reaches a group's first column (with NVFP4's tensor
    scale kept from the starting weights); per-channel, per-tensor and unscaled formats fit once on
    the starting weights. Refitting ``q`` from scratch need not give the same scales (the group
    extremes moved). Columns of ``hessian`` with a zero diagonal (dead inputs) get weight 0.
    """
    fmt = get(fmt)
    W = np.array(w, dtype=np.float64)
    H = np.array(hessian, dtype=np.float64)
    n = W.shape[1]
    if H.shape != (n, n):
        raise ValueError(f"hessian must be ({n}, {n}) for w of shape {W.shape}, got {H.shape}")
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H[np.diag_indices(n)] += damp * np.mean(np.diag(H))
    h_inv = scipy.linalg.cho_solve(scipy.linalg.cho_factor(H, lower=True), np.eye(n))
    U = np.linalg.cholesky(h_inv).T                     # upper: H^-1 = U^T U
    whole = fmt.fit(W.astype(np.float32), axis=-1)
    g = fmt.scale_block
    step = block_size if g is None else g * max(1, block_size // g)
    Q, fitted = np.empty_like(W), []
    for i1 in range(0, n, step):
        i2 = min(i1 + step, n)
        W1, Err1, U1 = W[:, i1:i2].copy(), np.empty((W.shape[0], i2 - i1)), U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if g is None:
                q = whole.quantize(W1[:, i:i + 1], index=slice(i1 + i, i1 + i + 1))[:, 0]
            else:
                if i % g == 0:
                    scales, start = fmt.fit(W1[:, i:i + g].astype(np.float32), axis=-1, outer=whole), i
                    fitted.append(scales)
                q = scales.quantize(W1[:, i:i + 1], index=slice(i - start, i - start + 1))[:, 0]
            err = (W1[:, i] - q) / U1[i, i]
            W1[:, i:] -= np.outer(err, U1[i, i:])
            Err1[:, i], Q[:, i1 + i] = err, q
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    if fitted:
        whole = Scales(fmt, -1, {k: np.concatenate([f.params[k] for f in fitted], axis=-1) if np.ndim(v) else v
                                 for k, v in fitted[0].params.items()})
    return Q.astype(np.float32), whole


def _rtn(t: np.ndarray, fmt: Format | None) -> np.ndarray:
    t = np.asarray(t, dtype=np.float32)
    return t if fmt is None else fmt.quantize(t, axis=-1)


def quantize_pair(x: np.ndarray, w: np.ndarray, *, weights: Any, activations: Any | None = None,
                  recipe: str | dict[str, Any] | Recipe = "rtn", calibration: np.ndarray | None = None) -> PairResult:
    """Quantize activations ``x`` (tokens, in) and weights ``w`` (out, in) for ``x @ w.T`` with a recipe.

    ``weights``/``activations`` are formats (names, paths, mappings or objects); ``activations=None``
    keeps x at full precision (weight-only, e.g. W4A16). ``calibration`` (rows, in) supplies the
    statistics a recipe fits (SmoothQuant's max|X_j|, GPTQ's Hessian); default ``x`` itself.
    """
    rec = _parse_recipe(recipe)
    x64, w64 = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if x64.ndim != 2 or w64.ndim != 2 or x64.shape[1] != w64.shape[1]:
        raise ValueError(f"need x (tokens, in) and w (out, in) with the same in, got {x64.shape} and {w64.shape}")
    cal = x64 if calibration is None else np.asarray(calibration, dtype=np.float64)
    fw, fx = get(weights), None if activations is None else get(activations)
    if isinstance(rec, SmoothQuant):
        s = smoothquant_scales(cal, w64, rec.alpha)
        x_t, w_t = x64 / s, w64 * s
    elif isinstance(rec, Hadamard):
        r = hadamard_matrix(x64.shape[1], rec.seed)
        x_t, w_t = x64 @ r, w64 @ r
    else:
        x_t, w_t = x64, w64
    if isinstance(rec, GPTQ):
        w_q, _ = gptq_quantize(w_t, 2.0 / len(cal) * cal.T @ cal, fw, rec.damp, rec.block_size)
    else:
        w_q = _rtn(w_t, fw)
    x_q = _rtn(x_t, fx)
    exact = x64 @ w64.T
    err = np.linalg.norm(x_q.astype(np.float64) @ w_q.astype(np.float64).T - exact)
    rel = float(err / np.linalg.norm(exact))
    return PairResult(rec, fw.name, None if fx is None else fx.name, x_q, w_q, rel,
                      float("inf") if rel == 0 else float(-20 * np.log10(rel)))
