"""End-to-end checks of the GPU model against published runs (never used by the fit).

* TensorRT-LLM v0.9 static-batch runs (``trtllm_v09_dev.csv``): one static batch = prefill of the
  batch, then ``output_len`` decode steps, so hwdse's ``e2e_s = TTFT + gen x TPOT``; measured
  ``e2e = batch x output_len / (output_tok_s_per_gpu x tp)``. H100 rows are FP8 (weights,
  activations, KV: ``fp8-e4m3``, static scales: the GEMMs' dynamic-quantisation passes are set to 0),
  A100 rows FP16; fused attention (TensorRT-LLM's FMHA/XQA).
  Rows with ``tp > 1`` run on a multi-GPU system of the same GPU over its NVLink.
* LLMCompass GPT-3 175B layer, TP = 4 shard on one A100 (``llmcompass_gpt3_layer_A100.csv``):
  the per-GPU operators of one layer (shapes from the file), each timed host-side like the
  LLMCompass kernel sets (so each gets the host-timing floor of :func:`host_floors`), plus the two
  all-reduces; compared as a prefill and a decode layer total.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwdse.calibration.data import load_rows
from hwdse.calibration.kernels import host_floors
from hwdse.hardware import load_arch, with_overrides
from hwdse.hardware.gpu.efficiency import gpu_collective_s
from hwdse.hardware.systems.multi import with_parallelism
from hwdse.perf.evaluate import evaluate
from hwdse.perf.roofline import op_time
from hwdse.workload.ops import OPS_PER_ELEMENT, Op

__all__ = ["trtllm_table", "gpt3_layer_table", "MODELS", "ARCHS", "FORMATS"]

MODELS = {"LLaMA 7B": "llama-2-7b", "LLaMA 70B": "llama-2-70b"}
ARCHS = {"A100": "a100-sxm-80gb", "H100": "h100-sxm"}
FORMATS = {"FP16": "fp16", "FP8": "fp8-e4m3"}


def _system(gpu: str, tp: int, fmt: str) -> Any:
    arch = load_arch(ARCHS[gpu])
    if fmt != "fp16":  # TensorRT-LLM v0.9 FP8 uses static (calibrated) activation scales: no dynamic quantisation
        arch = with_overrides(arch, {"efficiency.gemm.quantize_passes.fp8": 0.0})
    if tp == 1:
        return arch
    return with_parallelism(arch, tp=tp)  # evaluate() times its collectives with the calibrated NCCL model


def trtllm_table() -> list[dict[str, Any]]:
    """Per TensorRT-LLM v0.9 row: measured and predicted (roofline, achieved) static-batch seconds."""
    rows = []
    for r in load_rows("trtllm_v09_dev.csv"):
        batch, tp, prompt, gen = (int(r[k]) for k in ("batch", "tp", "input_len", "output_len"))
        fmt = FORMATS[r["precision"]]
        measured = batch * gen / (float(r["output_tok_s_per_gpu"]) * tp)
        row = {"model": r["model"], "gpu": r["gpu"], "precision": r["precision"], "batch": batch, "tp": tp,
               "input_len": prompt, "output_len": gen, "measured_s": measured}
        system = _system(r["gpu"], tp, fmt)
        for mode in ("roofline", "achieved"):
            ds = evaluate(MODELS[r["model"]], system, mode=mode, batch=batch, prompt=prompt, gen=gen, weights=fmt,
                          activations=fmt, kv=fmt, flash_attention=True)
            row[f"{mode}_s"] = float(ds.e2e_s)
            row[f"{mode}_fits"] = bool(ds.fits)
        rows.append(row)
    return rows


def _layer_ops(rows: list[dict[str, str]]) -> list[tuple[Op, str, float]]:
    """(op, host-floor key, measured seconds) for the non-all-reduce rows of one phase."""
    out = []
    for r in rows:
        kind, measured = r["op_kind"], float(r["latency_s"])
        if kind in ("gemm", "batched_gemm"):
            count, b, m, k, n = (float(r[c]) for c in ("gemm_count", "gemm_batch", "gemm_m", "gemm_k", "gemm_n"))
            op = Op(r["op"], "gemm", int(count), 2 * b * m * k * n, weight_bytes=b * k * n * 2,
                    act_in_bytes=b * m * k * 2, act_out_bytes=b * m * n * 2, operands=("fp16", "fp16"),
                    shape={"m": m, "n": n, "k": k, "groups": b})
            out.append((op, "torch", measured))
        elif kind in ("softmax", "layernorm", "gelu"):
            elements = float(np.prod([float(x) for x in r["tensor_shape"].strip("[]").split(",")]))
            op = Op(r["op"], "elementwise", 1, OPS_PER_ELEMENT[kind] * elements, act_in_bytes=2 * elements,
                    act_out_bytes=2 * elements, shape={"elements": elements})
            out.append((op, kind, measured))
    return out


def gpt3_layer_table(arch: str = "a100-sxm-80gb") -> list[dict[str, Any]]:
    """Prefill and decode layer totals (s): measured, and predicted in roofline and achieved mode."""
    gpu = load_arch(arch)
    floors = host_floors(gpu)
    link = gpu.scale_up.bandwidth_GBps * 1e9
    data = load_rows("llmcompass_gpt3_layer_A100.csv")
    table = []
    for phase in ("prefill", "decode"):
        rows = [r for r in data if r["phase"] == phase]
        ops = _layer_ops(rows)
        reduce_rows = [r for r in rows if r["op_kind"] == "allreduce"]
        measured = sum(float(r["latency_s"]) for r in rows)
        predicted = {}
        for mode in ("roofline", "achieved"):
            timings = gpu.schedule([op for op, _, _ in ops], mode)
            total = sum(op.count * float(op_time(t)) for (op, _, _), t in zip(ops, timings))
            if mode == "achieved":
                total += sum(floors[key] for _, key, _ in ops)
            for r in reduce_rows:
                nbytes, p = float(r["allreduce_bytes_fp16"]), float(r["tp_degree"])
                total += float(gpu_collective_s(gpu, "all_reduce", nbytes, p)) if mode == "achieved" else \
                    2 * (p - 1) / p * nbytes / link
            predicted[mode] = total
        table.append({"phase": phase, "measured_s": measured, "roofline_s": predicted["roofline"],
                      "achieved_s": predicted["achieved"], "ops": len(rows)})
    return table
