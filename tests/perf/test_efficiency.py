"""Achieved (calibrated) GPU mode: the model's structure, independent of the measured data.

Checks that can fail for the right reason: every decode term stays affine in the KV length (the
exact TPOT average relies on it), the achieved TPOT equals a brute-force mean over decode steps,
achieved time never beats the roofline with efficiencies <= 1, tile/wave quantisation shows up
where it must, and uncalibrated GPUs refuse achieved mode in one line.
"""

import numpy as np
import pytest
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.hardware import load_arch, with_overrides
from hwdse.hardware.gpu.efficiency import TILES, class_value, gpu_collective_s, gemm_s
from hwdse.perf import evaluate, op_time
from hwdse.workload import Scenario, load_model, operator_table
from hwdse.workload.ops import Op

CALIBRATED = ["a100-sxm-80gb", "h100-sxm", "h200", "b200"]


def _terms(t):
    return {"compute": t.compute_s, "memory": t.memory_s, **{k: v for k, v in t.serial_s.items()}}


@pytest.mark.parametrize("arch", CALIBRATED)
@pytest.mark.parametrize("flash", [True, False])
def test_decode_terms_are_affine_in_kv_length(arch, flash):
    gpu, model = load_arch(arch), load_model("llama-2-7b")
    scen = Scenario(batch=12, prompt=300, gen=64, flash_attention=flash)
    tables = [gpu.schedule(operator_table(model, scen, "decode", kv), "achieved") for kv in (300, 301, 557)]
    for a, b, c in zip(*tables):
        for key, v0 in _terms(a).items():
            v1, v2 = _terms(b)[key], _terms(c)[key]
            assert np.isclose(v2, v0 + (v1 - v0) * 257, rtol=1e-9, atol=1e-15), (a.op.name, key)


@pytest.mark.parametrize("arch, name, prompt", [("a100-sxm-80gb", "llama-2-7b", 100), ("h100-sxm", "llama-2-7b", 100),
                                                ("h100-sxm", "mistral-7b", 4090)])
def test_achieved_tpot_is_exact_mean_over_steps(arch, name, prompt):
    """Includes a sliding window (mistral-7b: 4096) that the decode steps cross."""
    gpu, model = load_arch(arch), load_model(name)
    scen = Scenario(batch=4, prompt=prompt, gen=9, flash_attention=True)
    ds = evaluate(model, gpu, scen, mode="achieved")
    steps = []
    for j in range(int(scen.gen)):
        timings = gpu.schedule(operator_table(model, scen, "decode", scen.prompt + j), "achieved")
        steps.append(sum(t.op.count * op_time(t) for t in timings))
    assert float(ds.tpot_s) == pytest.approx(np.mean(steps), rel=1e-9)
    assert ds.attrs["mode"] == "achieved"


@pytest.mark.parametrize("arch", CALIBRATED)
def test_achieved_is_slower_than_roofline(arch):
    gpu = load_arch(arch)
    eff = gpu.efficiency
    fractions = [*eff.gemm.compute_fraction.values(), eff.gemm.bandwidth_fraction,
                 *eff.attention.prefill_compute_fraction.values(), eff.attention.decode_bandwidth_fraction,
                 eff.vector.bandwidth_fraction]
    assert all(0 < f <= 1 for f in fractions)
    model = load_model("llama-2-7b")
    for phase in ("prefill", "decode"):
        for flash in (True, False):
            ops = operator_table(model, Scenario(batch=8, prompt=512, flash_attention=flash), phase)
            for r, a in zip(gpu.schedule(ops, "roofline"), gpu.schedule(ops, "achieved")):
                assert op_time(a) >= op_time(r) * (1 - 1e-12), (phase, r.op.name)


def test_large_gemm_runs_at_its_compute_fraction():
    gpu = load_arch("h100-sxm")
    g = gpu.efficiency.gemm
    m = n = k = 16384.0
    peak = gpu.compute.peak_TOPS["bf16"] * 1e12
    t = gemm_s(m, n, k, 1, peak, gpu.compute.units, g.compute_fraction["bf16"])
    ideal = 2 * m * n * k / (peak * g.compute_fraction["bf16"])
    assert ideal <= t <= ideal * 1.05


def test_wave_quantisation_steps_up_past_a_full_wave():
    """One output tile more than the SMs can hold costs a second wave (no split-K: k is small)."""
    units, peak = 100, 100e12
    tm, tn = max(TILES, key=lambda t: t[0] * t[1])
    full = gemm_s(tm * 10.0, tn * 10.0, 128.0, 1, peak, units, 1.0)
    over = gemm_s(tm * 10.0 + 1, tn * 10.0, 128.0, 1, peak, units, 1.0)
    assert over > full * 1.05


def test_a_kind_without_an_achieved_basis_refuses_achieved_mode():
    with pytest.raises(HwdseError, match="achieved mode needs calibrated, transferred or derived") as err:
        evaluate("llama-2-7b", "decode-accel", mode="achieved")
    assert "\n" not in str(err.value)
    assert evaluate("llama-2-7b", "a6000", mode="achieved").attrs["basis"] == "transferred"


def test_efficiency_is_sweepable_by_dotted_override():
    fractions = xr.DataArray([0.5, 0.9], dims="bw")
    gpu = with_overrides(load_arch("a100-sxm-80gb"), {"attention.decode_bandwidth_fraction".join(["efficiency.", ""]):
                                                      fractions})
    ds = evaluate("llama-2-7b", gpu, mode="achieved", batch=8, prompt=2048, gen=64, flash_attention=True)
    assert ds.tpot_s.dims == ("bw",)
    assert float(ds.tpot_s[0]) > float(ds.tpot_s[1])


def test_collective_time():
    gpu = load_arch("h100-sxm")
    assert gpu_collective_s(gpu, "all_reduce", 1e6, 1) == 0.0
    t1, t2, t3 = (gpu_collective_s(gpu, "all_reduce", b, 8) for b in (1e6, 2e6, 3e6))
    assert t2 - t1 == pytest.approx(t3 - t2) and t2 > t1 > 0
    assert gpu_collective_s(gpu, "all_gather", 1e9, 8) < gpu_collective_s(gpu, "all_reduce", 1e9, 8)


def test_class_value_falls_back_to_nearest_class():
    table = {"bf16": 0.8, "fp8": 0.6}
    assert class_value(table, "fp16", "x") == 0.8
    assert class_value(table, "int8", "x") == 0.6
    with pytest.raises(HwdseError):
        class_value({}, "fp8", "x")


def test_cli_and_api_default_to_achieved_where_calibrated():
    import json

    from typer.testing import CliRunner

    from hwdse.cli.main import app

    runner = CliRunner()
    modes = {}
    for arch in ("h100-sxm", "a6000"):
        result = runner.invoke(app, ["evaluate", "--arch", arch, "--json"])
        assert result.exit_code == 0, result.output
        modes[arch] = json.loads(result.output)["mode"]
    assert modes == {"h100-sxm": "achieved", "a6000": "achieved"}  # the A6000 on transferred efficiencies
    assert evaluate("llama-2-7b", "h100-sxm").attrs["mode"] == "achieved"  # the library's default is the CLI's
    assert evaluate("llama-2-7b", "h100-sxm", mode="roofline").attrs["basis"] == "roofline"


def test_multi_gpu_achieved_mode_times_collectives_with_nccl_fit():
    from hwdse.hardware.systems.multi import with_parallelism

    system = with_parallelism(load_arch("h100-sxm"), tp=4)
    ds = evaluate("llama-2-70b", system, mode="achieved", batch=8, prompt=512, gen=16, flash_attention=True,
                  detail=True)
    comm = float(ds.op_time_s.sel(phase="decode", op="tp_allreduce_attn"))
    nbytes = 8 * 8192 * 2  # one decode token per sequence, hidden 8192, fp16
    expected = float(gpu_collective_s(load_arch("h100-sxm"), "all_reduce", nbytes, 4))
    assert comm == pytest.approx(expected, rel=1e-9)


def test_achieved_mode_keeps_the_dequantisation_cost():
    """INT4 weights on an A100 run as fp16 after a conversion on the vector units (hwdse.hardware.dequant):
    achieved mode must keep that extra compute on top of the GEMM's own."""
    gpu, model = load_arch("a100-sxm-80gb"), load_model("llama-2-7b")
    ops = operator_table(model, Scenario(batch=16, prompt=512, weights="int4"), "prefill")
    gemm = next(i for i, op in enumerate(ops) if op.name == "up_proj")
    r, a = gpu.schedule(ops, "roofline")[gemm], gpu.schedule(ops, "achieved")[gemm]
    extra = r.compute_s - r.op.flops / r.peak_ops_per_s
    assert extra > 0
    plain = gpu.schedule(operator_table(model, Scenario(batch=16, prompt=512, weights="fp16"), "prefill"),
                         "achieved")[gemm]
    assert a.compute_s - plain.compute_s == pytest.approx(extra, rel=0.05)


def _decode_attention(heads: float, kv_heads: float, kv_len: float, batch: float = 8.0) -> Op:
    """One decode-attention op (bf16 KV, head_dim 128) as the workload builds it."""
    d = 128
    return Op("flash_attention", "attention", 1, batch * heads * kv_len * 4 * d, act_in_bytes=batch * heads * d * 2,
              act_out_bytes=batch * heads * d * 2, kv_read_bytes=2 * batch * kv_len * kv_heads * d * 2,
              operands=("bf16", "bf16"), shape={"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": 1,
                                                "kv_len": kv_len, "head_dim": d})


def test_large_gqa_groups_run_the_cuda_core_decode_kernel():
    """H100 (TensorRT-LLM fit): groups > decode_max_group are compute-bound on the vector units with one
    block per query head; at the limit the kernel streams KV. Terms stay affine in the KV length."""
    gpu = load_arch("h100-sxm")
    a = gpu.efficiency.attention
    assert a.decode_max_group == 32 and 0 < a.decode_vector_fraction < 1
    big = gpu.schedule([_decode_attention(128, 1, 8192)], "achieved")[0]
    assert big.compute_s == pytest.approx(big.op.flops / (a.decode_vector_fraction * gpu.compute.vector_TFLOPS * 1e12))
    assert big.compute_s > big.memory_s
    at_limit = gpu.schedule([_decode_attention(32, 1, 8192)], "achieved")[0]
    assert at_limit.memory_s > at_limit.compute_s
    # per-block cost counts query heads above the limit, kv heads at it
    assert big.serial_s["overhead"] - at_limit.serial_s["overhead"] == pytest.approx(
        a.decode_cta_us * 1e-6 * 8 * (128 - 1) / gpu.compute.units)
    times = [_terms(gpu.schedule([_decode_attention(128, 1, kv)], "achieved")[0]) for kv in (300, 301, 557)]
    for key in times[0]:
        assert np.isclose(times[2][key], times[0][key] + (times[1][key] - times[0][key]) * 257, rtol=1e-9), key
    # the A100 was fit on vLLM (no group limit): no fallback
    assert load_arch("a100-sxm-80gb").efficiency.attention.decode_max_group is None


def test_unsplit_gemm_walks_all_of_k():
    """B200 NVFP4 (no split-K, k_step_ns): within one wave a skinny GEMM's time is independent of N and grows
    by k_step_ns per k; with split-K the same shape is far faster."""
    gpu = load_arch("b200")
    g = gpu.efficiency.gemm
    assert "fp4" in g.no_split_k and g.k_step_ns["fp4"] > 0
    peak, units = gpu.compute.peak_TOPS["fp4"] * 1e12, gpu.compute.units
    args = (peak, units, g.compute_fraction["fp4"], 0.0, g.k_step_ns["fp4"] * 1e-9)
    t = {(n, k): gemm_s(1.0, n, k, 1, *args, split_k=False) for n in (512.0, 4096.0) for k in (8192.0, 65536.0)}
    assert t[512.0, 65536.0] == pytest.approx(t[4096.0, 65536.0])
    assert t[512.0, 65536.0] - t[512.0, 8192.0] == pytest.approx((65536 - 8192) * g.k_step_ns["fp4"] * 1e-9)
    assert gemm_s(1.0, 512.0, 65536.0, 1, *args, split_k=True) < t[512.0, 65536.0] / 10


def test_decode_fallback_parameters_come_in_pairs():
    with pytest.raises(HwdseError, match="decode_max_group and decode_vector_fraction"):
        with_overrides(load_arch("a100-sxm-80gb"), {"efficiency.attention.decode_max_group": 32.0})
    sweep = xr.DataArray([16.0, 64.0], dims="limit")  # a 32-head group: fallback at the low limit only
    gpu = with_overrides(load_arch("h100-sxm"), {"efficiency.attention.decode_max_group": sweep})
    t = gpu.schedule([_decode_attention(32, 1, 4096)], "achieved")[0]
    assert float(op_time(t)[0]) > 2 * float(op_time(t)[1])
