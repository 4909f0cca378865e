"""Single operators as measured kernel tables record them: one GEMM, one layer's attention, one
elementwise pass, one collective. ``hwdse kernel`` times them on any arch and ``hwdse calibrate``
builds its kernel sets from them. Shapes may be numbers or arrays (one row per kernel).
"""

from __future__ import annotations

import numpy as np

from hwdse._params import Number
from hwdse.formats import get
from hwdse.workload.ops import OPS_PER_ELEMENT, Op

__all__ = ["gemm_op", "attention_op", "vector_op", "collective_op", "COLLECTIVES"]

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")


def _bytes(fmt: str) -> float:
    return get(fmt).bits_per_element / 8


def gemm_op(m: Number, n: Number, k: Number, fmt: str = "bf16", out_fmt: str = "bf16") -> Op:
    """Activations ``[m, k]`` x weights ``[k, n]`` (both in ``fmt``), output ``[m, n]`` in ``out_fmt``."""
    b = _bytes(fmt)
    return Op("gemm", "gemm", 1, 2 * m * n * k, weight_bytes=n * k * b, act_in_bytes=m * k * b,
              act_out_bytes=m * n * _bytes(out_fmt), operands=(fmt, fmt), shape={"m": m, "n": n, "k": k, "groups": np.ones_like(m, dtype=float)})


def attention_op(batch: Number, heads: Number, kv_heads: Number, q_len: Number, kv_len: Number, head_dim: int = 128,
                 kv_fmt: str = "bf16", decode: bool = False) -> Op:
    """One layer's fused attention: ``batch`` sequences of ``q_len`` queries over ``kv_len`` cached
    positions (prefill: causal, ``q_len == kv_len``; decode: ``q_len`` = 1). Queries and outputs in BF16;
    the KV cache in ``kv_fmt``; prefill runs in the KV format's class, decode reads it beside BF16 queries."""
    pairs = kv_len * q_len if decode else q_len * (q_len + 1) / 2
    q_bytes = batch * q_len * heads * head_dim * 2
    return Op("flash_attention", "attention", 1, batch * heads * pairs * (4 * head_dim + OPS_PER_ELEMENT["softmax"]),
              act_in_bytes=q_bytes, act_out_bytes=q_bytes,
              kv_read_bytes=2 * batch * kv_len * kv_heads * head_dim * _bytes(kv_fmt),
              operands=("bf16", kv_fmt) if decode else (kv_fmt, kv_fmt),
              shape={"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": q_len, "kv_len": kv_len,
                     "head_dim": head_dim})


def vector_op(name: str, elements: Number, fmt: str = "bf16") -> Op:
    """One elementwise pass (``name`` in OPS_PER_ELEMENT: softmax, layernorm, gelu, ...) reading and
    writing ``elements`` values of ``fmt``."""
    b = _bytes(fmt)
    return Op(name, "elementwise", 1, OPS_PER_ELEMENT[name] * elements, act_in_bytes=b * elements,
              act_out_bytes=b * elements, shape={"elements": elements})


def collective_op(kind: str, nbytes: Number, devices: Number) -> Op:
    """One collective (``kind`` in COLLECTIVES) of ``nbytes`` per device among ``devices`` devices."""
    return Op(kind, "collective", 1, 0.0, shape={"bytes": nbytes, "devices": devices})
