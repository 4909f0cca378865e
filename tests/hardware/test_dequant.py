"""Operand dequantization: which class a matmul runs in, and exactly what converting costs."""

from __future__ import annotations

import pytest

from hwdse.formats import get
from hwdse.hardware import load_arch, with_overrides
from hwdse.hardware.dequant import CLASS_BYTES, Dequant, gpu_plan, needs, ops_per_element, plan
from hwdse.workload import Scenario, load_model, operator_table

MODEL = load_model("llama-2-7b")


def _gemm(weights: str, activations: str, phase: str = "decode", batch: int = 1):
    scen = Scenario(batch=batch, prompt=256, gen=8, weights=weights, activations=activations, kv=activations)
    return next(op for op in operator_table(MODEL, scen, phase) if op.name == "gate_proj")


def _attention(activations: str, kv: str):
    scen = Scenario(batch=4, prompt=1024, gen=8, activations=activations, kv=kv, flash_attention=True)
    return next(op for op in operator_table(MODEL, scen, "decode") if op.name == "flash_attention")


@pytest.mark.parametrize("fmt, ops", [
    ("fp8-e4m3", 1.0),            # cvt only; a per-tensor scale folds into the epilogue
    ("int8", 1.0),                # per-channel scale: epilogue
    ("int4", 2 + 1 / 128),        # cvt + group-128 scale multiply + scale conversion per group
    ("mxfp4", 2 + 1 / 32),        # cvt + E8M0 block scale (32)
    ("nvfp4", 2 + 1 / 16),        # cvt + UE4M3 block scale (16); tensor scale in the epilogue
    ("flint4", 3.0),              # leading-one detect, shift, sign
])
def test_ops_per_element(fmt: str, ops: float) -> None:
    assert ops_per_element(fmt) == pytest.approx(ops)


@pytest.mark.parametrize("arch, operands, cls", [
    ("a6000", ("fp16", "fp16"), "fp16"),
    ("h100-sxm", ("fp8-e4m3", "fp8-e4m3"), "fp8"),
    ("h100-sxm", ("int8", "int8"), "int8"),
    ("a100-sxm-80gb", ("bf16", "bf16"), "bf16"),
    ("b200", ("nvfp4", "nvfp4"), "fp4"),
    ("b200", ("mxfp4", "mxfp8-e4m3"), "fp8"),     # kind::mxf8f6f4 multiplies E2M1 x E4M3 natively
    ("b200", ("mxfp6-e2m3", "mxfp6-e2m3"), "fp6"),
])
def test_native_pairs_cost_nothing(arch: str, operands: tuple[str, str], cls: str) -> None:
    gpu = load_arch(arch)
    run, converted = needs(operands, gpu.native_class, gpu.compute.block_scaled)
    assert (run, converted) == (cls, ())
    dq = gpu_plan(_gemm(*operands), gpu)
    assert dq == Dequant(cls)
    assert dq.compute_s == 0 and dq.memory_s == 0


@pytest.mark.parametrize("arch, operands, cls, converted", [
    ("a6000", ("int4", "fp16"), "fp16", ("int4",)),                      # W4A16
    ("a100-sxm-80gb", ("fp8-e4m3", "fp8-e4m3"), "fp16", ("fp8-e4m3", "fp8-e4m3")),  # no FP8 on Ampere
    ("a100-sxm-80gb", ("int4", "int4"), "bf16", ("int4", "int4")),       # group scales need a scaled MMA
    ("h100-sxm", ("mxfp4", "fp8-e4m3"), "bf16", ("mxfp4", "fp8-e4m3")),  # Triton's dot_scaled upcast
    ("h100-sxm", ("mxfp8-e4m3", "fp16"), "fp16", ("mxfp8-e4m3",)),
    ("h100-sxm", ("fp16", "bf16"), "bf16", ("fp16",)),
    ("b200", ("mxint8", "mxint8"), "bf16", ("mxint8", "mxint8")),        # INT8 has no block-scaled MMA
    ("b200", ("mxfp4", "fp16"), "fp16", ("mxfp4",)),
    ("a100-sxm-80gb", ("flint4", "int8"), "int8", ("flint4",)),          # no flint decoder on a GPU
])
def test_non_native_pairs(arch: str, operands: tuple[str, str], cls: str, converted: tuple[str, ...]) -> None:
    gpu = load_arch(arch)
    assert needs(operands, gpu.native_class, gpu.compute.block_scaled) == (cls, converted)


def test_flint_decoder_on_the_datapath() -> None:
    """An ANT-like PE that decodes flint runs flint4 x flint4 in its INT4 class."""
    native = {"int4": "int4", "int8": "int8"}.get
    assert needs(("flint4", "flint4"), native, decodes=("flint",)) == ("int4", ())
    assert needs(("flint4", "flint4"), native) == ("int8", ("flint4", "flint4"))


def test_w4a16_cost_is_exactly_the_documented_one() -> None:
    gpu = load_arch("a6000")
    op = _gemm("int4", "fp16")
    dq = gpu_plan(op, gpu)
    elements = op.shape["n"] * op.shape["k"]                      # only the weights are converted
    assert op.weight_bytes == pytest.approx(elements * 4.125 / 8)
    assert dq.ops == pytest.approx(elements * (1 + 1 + 1 / 128))
    assert dq.compute_s == pytest.approx(dq.ops / (gpu.compute.vector_TFLOPS * 1e12))
    assert dq.extra_bytes == 0 and dq.memory_s == 0
    base, = gpu.schedule([_gemm("fp16", "fp16")])
    t, = gpu.schedule([op])
    assert t.compute_class == base.compute_class == "fp16"
    assert t.compute_s - base.compute_s == pytest.approx(dq.compute_s)
    assert t.memory_s == pytest.approx(op.bytes / gpu.bandwidth_Bps)


def test_both_operands_converted_on_a100_fp8() -> None:
    gpu = load_arch("a100-sxm-80gb")
    op = _gemm("fp8-e4m3", "fp8-e4m3", "prefill", batch=2)
    dq = gpu_plan(op, gpu)
    elements = op.shape["n"] * op.shape["k"] + op.shape["m"] * op.shape["k"]
    assert dq.ops == pytest.approx(elements * 1.0)
    t, = gpu.schedule([op])
    assert t.compute_s == pytest.approx(op.flops / 312e12 + elements / 19.5e12)


def test_unfused_writes_and_reads_back_the_dequantized_copy() -> None:
    gpu = with_overrides(load_arch("h100-sxm"), {"compute.dequant_fused": False})
    op = _gemm("mxfp4", "bf16")
    dq = gpu_plan(op, gpu)
    elements = op.shape["n"] * op.shape["k"]
    assert dq.compute_class == "bf16"
    assert dq.extra_bytes == pytest.approx(2 * elements * CLASS_BYTES["bf16"])
    assert dq.memory_s == pytest.approx(dq.extra_bytes / gpu.bandwidth_Bps)
    t, = gpu.schedule([op])
    assert t.memory_s == pytest.approx((op.bytes + dq.extra_bytes) / gpu.bandwidth_Bps)
    fused = gpu_plan(op, load_arch("h100-sxm"))
    assert fused.ops == pytest.approx(dq.ops) and fused.extra_bytes == 0


def test_kv_cache_conversion_in_attention() -> None:
    """FP16 queries x FP8 KV on an H100: the op runs in FP16 and converts the K/V it reads."""
    gpu = load_arch("h100-sxm")
    op = _attention("fp16", "fp8-e4m3")
    dq = gpu_plan(op, gpu)
    assert dq.compute_class == "fp16" and dq.converted == ("fp8-e4m3",)
    assert dq.ops == pytest.approx(op.kv_read_bytes / (get("fp8-e4m3").bits_per_element / 8))
    assert gpu_plan(_attention("fp8-e4m3", "fp8-e4m3"), gpu) == Dequant("fp8")


def test_vector_ops_have_no_operands_and_no_cost() -> None:
    scen = Scenario(batch=1, prompt=16, gen=1, weights="int4")
    norm = operator_table(MODEL, scen, "decode")[0]
    assert plan(norm, str, vector_ops_per_s=1.0, bandwidth_Bps=1.0) == Dequant("vector")


def test_sweep_of_vector_peak_scales_the_dequant_time() -> None:
    """One evaluator call over a DataArray of vector peaks: the W4A16 prefill penalty is ops / peak."""
    import xarray as xr

    from hwdse.perf import evaluate

    vec = xr.DataArray([10.0, 20.0, 40.0, 80.0], dims="vector_TFLOPS")
    kw = dict(batch=1, prompt=2048, gen=8, overrides={"compute.vector_TFLOPS": vec}, detail=True, mode="roofline")
    gate = dict(phase="prefill", op="gate_proj")                      # compute-bound at every peak
    penalty = (evaluate("llama-2-7b", "a6000", weights="int4", **kw).op_time_s.sel(**gate)
               - evaluate("llama-2-7b", "a6000", weights="fp16", **kw).op_time_s.sel(**gate))
    assert penalty.dims == ("vector_TFLOPS",)
    ops = penalty * vec * 1e12                       # the same convert ops at every peak
    assert float(ops.max() / ops.min()) == pytest.approx(1.0, rel=1e-9)
    assert float(ops[0]) == pytest.approx(4096 * 11008 * ops_per_element("int4"))
