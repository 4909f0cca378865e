"""Deterministic test data shared by the reference-vector tests (no numpy RNG streams)."""

import hashlib

import numpy as np


def mix_floats(n: int, seed: int, lo: int = -12, hi: int = 12, block: int = 32) -> np.ndarray:
    """float32 sign * [0.5, 1.5) * 2^(per-block exponent in [lo, hi] minus 0..3), from splitmix64."""
    k = np.arange(n, dtype=np.uint64)
    z = (k + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    u = (z >> np.uint64(40)).astype(np.float64) / 2.0**24
    block_exp = (k // np.uint64(block) * np.uint64(7919)).astype(np.int64) % (hi - lo + 1) + lo
    e = block_exp - (z & np.uint64(3)).astype(np.int64)
    s = np.where((z >> np.uint64(8)) & np.uint64(1), -1.0, 1.0)
    return (s * (0.5 + u) * np.ldexp(1.0, e)).astype(np.float32)


def digest(a: np.ndarray) -> str:
    """First 16 hex digits of the SHA-256 of float32 (or uint8) bytes."""
    a = np.ascontiguousarray(a)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]
