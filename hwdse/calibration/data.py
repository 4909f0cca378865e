"""Measured kernel data sets (``shared/validation``) as vectorised operators for calibration.

Each :class:`KernelSet` holds operators whose fields are numpy arrays (one element per measured
row), the measured seconds, and a deterministic held-out mask (a hash of the row's shape, so the
split does not depend on file order). Data are located through ``HWDSE_VALIDATION_DIR``
(default ``<repo>/../shared/validation``). Units: ``aic_*`` latencies are milliseconds;
LLMCompass latencies are milliseconds or microseconds as their column names say.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hwdse._errors import HwdseError
from hwdse.workload.kernels import attention_op, collective_op, gemm_op, vector_op
from hwdse.workload.ops import Op

__all__ = ["KernelSet", "validation_dir", "kernel_sets", "load_rows", "HELD_OUT_EVERY", "FAMILIES"]

HELD_OUT_EVERY = 5          # one row in five (by shape hash) is held out of every fit
FAMILIES = ("gemm", "prefill_attention", "decode_attention", "vector", "all_reduce")
HEAD_DIM = 128              # every kept attention row has head_dim 128 (README)


def validation_dir() -> Path:
    """``$HWDSE_VALIDATION_DIR`` or ``<repo>/../shared/validation``."""
    env = os.environ.get("HWDSE_VALIDATION_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "validation"


@lru_cache(maxsize=None)
def load_rows(name: str) -> tuple[dict[str, str], ...]:
    """The rows of one CSV of the validation directory."""
    path = validation_dir() / name
    if not path.is_file():
        raise HwdseError(str(path), None, "validation data not found (set HWDSE_VALIDATION_DIR)")
    with path.open(newline="") as fh:
        return tuple(csv.DictReader(fh))


@dataclass(frozen=True)
class KernelSet:
    """Measured kernels of one family on one arch: ``ops`` (vectorised), ``measured_s`` in op order."""

    name: str
    arch: str
    family: str
    fit: bool                   # False: validation only (never used by the fit)
    ops: tuple[Op, ...]
    measured_s: np.ndarray
    held_out: np.ndarray        # bool per row
    source: str

    @property
    def train(self) -> np.ndarray:
        return ~self.held_out


def _held_out(keys: list[str]) -> np.ndarray:
    return np.array([int(hashlib.sha256(k.encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0 for k in keys])


def _col(rows: list[dict[str, str]], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])


def _groups(rows: tuple[dict[str, str], ...], key: Callable[[dict[str, str]], str]) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def _gemm(file: str, arch: str, fmt: str, fit: bool = True, device: str | None = None) -> KernelSet:
    """One ``Linear``: activations [m, k] x weights [k, n], bf16 output; latency in ms (or ms column)."""
    rows = [r for r in load_rows(file) if device is None or r["device"] == device]
    op = gemm_op(_col(rows, "m"), _col(rows, "n"), _col(rows, "k"), fmt)
    ms = _col(rows, "latency" if "latency" in rows[0] else "latency_ms")
    keys = [f"{r['m']},{r['n']},{r['k']}" for r in rows]
    return KernelSet(file.removesuffix(".csv") + ("" if device is None else f"_{device}"), arch, "gemm", fit, (op,),
                     ms * 1e-3, _held_out(keys), file)


_KV_FORMAT = {"bfloat16": "bf16", "fp8": "fp8-e4m3"}


def _attention(file: str, arch: str, decode: bool, fit: bool = True) -> KernelSet:
    """aiconfigurator attention tables: one layer's attention for the batch (latency in ms).

    Prefill rows with an FP8 KV cache behave like FP8 context FMHA (README): they run as class fp8.
    Decode: TensorRT-LLM caches ``step + 1`` positions, vLLM ``step``.
    """
    ops, measured, keys = [], [], []
    extra = 1.0 if decode and "trtllm" in file else 0.0
    for kv, rows in _groups(load_rows(file), lambda r: r["kv_cache_dtype"]).items():
        b, h, kvh = _col(rows, "batch_size"), _col(rows, "num_heads"), _col(rows, "num_key_value_heads")
        q = 1 if decode else _col(rows, "isl")
        length = _col(rows, "step") + extra if decode else q
        ops.append(attention_op(b, h, kvh, q, length, HEAD_DIM, _KV_FORMAT[kv], decode))
        measured.append(_col(rows, "latency") * 1e-3)
        keys += [f"{r['batch_size']},{r['isl']},{r['num_heads']},{r['num_key_value_heads']},{r['step']}" for r in rows]
    family = "decode_attention" if decode else "prefill_attention"
    return KernelSet(file.removesuffix(".csv"), arch, family, fit, tuple(ops), np.concatenate(measured),
                     _held_out(keys), file)


_VECTOR = {"llmcompass_softmax.csv": "softmax", "llmcompass_layernorm.csv": "layernorm",
           "llmcompass_gelu.csv": "gelu"}


# LLMCompass devices: catalog arch and the element format of its softmax / LayerNorm / GeLU runs. The MI210's
# is not recorded (README); LLMCompass's MI210 simulation of the same kernels uses fp32 (ae/figure5/cf/test_softmax.py).
_LLMCOMPASS = {"A100": ("a100-sxm-80gb", "fp16"), "MI210": ("mi210", "fp32")}


def _vector(file: str, device: str) -> KernelSet:
    """LLMCompass softmax / LayerNorm / GeLU on one ``device`` over an [M, N] tensor (host-timed)."""
    arch, fmt = _LLMCOMPASS[device]
    rows = [r for r in load_rows(file) if r["device"] == device]
    elements = _col(rows, "num_elements") if "num_elements" in rows[0] else _col(rows, "m") * _col(rows, "n")
    op = vector_op(_VECTOR[file], elements, fmt)
    keys = [",".join(str(r.get(k)) for k in ("m", "n", "num_elements", "sweep")) for r in rows]
    return KernelSet(f"{file.removesuffix('.csv')}_{device}", arch, "vector", True, (op,),
                     _col(rows, "latency_ms_derived") * 1e-3, _held_out(keys), file)


def _all_reduce(file: str, arch: str) -> KernelSet:
    """nccl-tests all_reduce inside one node (latency in ms; message_size in elements)."""
    rows = [r for r in load_rows(file) if r["op_name"] == "all_reduce"]
    size = np.array([2.0 if r["nccl_dtype"] == "half" else 1.0 for r in rows]) * _col(rows, "message_size")
    devices = _col(rows, "num_gpus")
    op = collective_op("all_reduce", size, devices)
    keys = [f"{r['nccl_dtype']},{r['num_gpus']},{r['message_size']}" for r in rows]
    return KernelSet(file.removesuffix(".csv"), arch, "all_reduce", True, (op,), _col(rows, "latency") * 1e-3,
                     _held_out(keys), file)


def _llmcompass_all_reduce() -> KernelSet:
    """LLMCompass's measured A100-node all-reduce (4 GPUs assumed; latency in us). Validation only."""
    rows = list(load_rows("llmcompass_allreduce_A100_node.csv"))
    nbytes, devices = _col(rows, "message_bytes"), _col(rows, "num_gpus_assumed")
    op = collective_op("all_reduce", nbytes, devices)
    return KernelSet("llmcompass_allreduce_A100_node", "a100-sxm-80gb", "all_reduce", False, (op,),
                     _col(rows, "latency_us") * 1e-6, _held_out([r["message_bytes"] for r in rows]),
                     "llmcompass_allreduce_A100_node.csv")


def kernel_sets() -> list[KernelSet]:
    """Every kernel data set hwdse calibrates on (``fit``) or checks against (validation only)."""
    g = "aic_gemm_{}_sxm_trtllm{}_{}.csv"
    sets = [_gemm(g.format("a100", "1.0.0", "bf16"), "a100-sxm-80gb", "bf16"),
            _gemm("llmcompass_matmul.csv", "a100-sxm-80gb", "fp16", fit=False, device="A100"),
            _gemm("llmcompass_matmul.csv", "mi210", "fp16", fit=False, device="MI210")]
    for gpu, arch in (("h100", "h100-sxm"), ("h200", "h200"), ("b200", "b200")):
        sets += [_gemm(g.format(gpu, "1.3.0rc20", "bf16"), arch, "bf16"),
                 _gemm(g.format(gpu, "1.3.0rc20", "fp8"), arch, "fp8-e4m3")]
    sets.append(_gemm(g.format("b200", "1.3.0rc20", "nvfp4"), "b200", "nvfp4"))
    for gpu, arch in (("gb200", "gb200"), ("l40s", "l40s"), ("rtx_pro_6000_server", "rtx-pro-6000")):
        formats = ("bf16", "fp8-e4m3") + (("nvfp4",) if arch != "l40s" else ())
        sets += [_gemm(f"aic_gemm_{gpu}_trtllm1.3.0rc20_{fmt.split('-')[0]}.csv", arch, fmt) for fmt in formats]
    a = "aic_{}_attention_{}_sxm_{}.csv"
    sets += [_attention(a.format("context", "a100", "trtllm1.0.0"), "a100-sxm-80gb", decode=False),
             _attention(a.format("context", "a100", "vllm0.14.0"), "a100-sxm-80gb", decode=False),
             _attention(a.format("context", "h100", "trtllm1.3.0rc20"), "h100-sxm", decode=False),
             _attention(a.format("generation", "a100", "vllm0.14.0"), "a100-sxm-80gb", decode=True),
             _attention(a.format("generation", "h100", "trtllm1.3.0rc20"), "h100-sxm", decode=True)]
    sets += [_vector(f, device) for device in _LLMCOMPASS for f in _VECTOR]
    sets += [_all_reduce("aic_nccl_a100_sxm_nccl2.27.3.csv", "a100-sxm-80gb"),
             _all_reduce("aic_nccl_h100_sxm_nccl2.29.2.csv", "h100-sxm"), _llmcompass_all_reduce()]
    return sets
