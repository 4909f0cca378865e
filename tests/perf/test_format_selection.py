"""Kernel paths in format selection: kernel_of per (weights, activations) pair, the Dataset's
kernel_path/kv_path, and the recommendation skipping upcast pairs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hwdse.hardware import load_arch
from hwdse.perf.format_selection import (
    format_selection,
    kernel_of,
    kv_kernel_of,
    recommend,
)


@pytest.mark.parametrize("arch, weights, activations, cites", [
    ("h100-sxm", "int8", "fp8-e4m3", "wgmma"),   # no INT8 x FP8 MMA: both to BF16
    ("h100-sxm", "bf16", "fp8-e4m3", "wgmma"),   # FP8 activations back to BF16
    ("b200", "bf16", "nvfp4", "tcgen05"),        # NVFP4 activations back to BF16
])
def test_pairs_that_run_a_bf16_gemm_are_upcast_with_a_source(arch: str, weights: str, activations: str,
                                                             cites: str) -> None:
    path, reason = kernel_of(load_arch(arch), weights, activations)
    assert path == "upcast" and cites in reason and "[arch/kernels/" in reason


@pytest.mark.parametrize("arch, weights, activations, path, cites", [
    ("h100-sxm", "int4", "bf16", "weight-only", "W4A16 AWQ/GPTQ"),
    ("h100-sxm", "fp8-e4m3", "fp8-e4m3", "native", "FP8 W8A8"),
    ("b200", "nvfp4", "nvfp4", "native", "W4A4 NVFP4"),
    ("b200", "nvfp4", "bf16", "weight-only", "FP4 Marlin"),
    ("a100-sxm-80gb", "fp8-e4m3", "bf16", "weight-only", "weight-only FP8"),
    ("a100-sxm-80gb", "int8", "int8", "native", "INT8 (W8A8)"),
    ("mi300x", "fp8-e4m3", "fp8-e4m3", "native", "e4m3fnuz"),
    ("mi300x", "mxfp4", "bf16", "upcast", "Simulated weight dequantization"),
])
def test_recorded_paths(arch: str, weights: str, activations: str, path: str, cites: str) -> None:
    assert kernel_of(load_arch(arch), weights, activations)[0] == path
    assert cites in kernel_of(load_arch(arch), weights, activations)[1]


def test_a_pair_not_in_the_table_says_what_runs() -> None:
    path, reason = kernel_of(load_arch("h100-sxm"), "mxfp6-e2m3", "fp8-e4m3")
    assert path == "upcast" and "mxfp6-e2m3, fp8-e4m3 converted to bf16, a bf16 matmul" in reason
    path, reason = kernel_of(load_arch("graphcore-bow"), "int8", "int8")
    assert path == "unrecorded" and "keeps no kernel table" in reason
    assert kv_kernel_of(load_arch("b200"), "fp8-e4m3", "bf16")[0] == "native"


def _fake(paths: list[str], quality: list[float], kernel_table: str = "arch/kernels/hopper.yaml") -> xr.Dataset:
    n = len(paths)
    return xr.Dataset({
        "quality_weights_db": ("candidate", quality), "quality_activations_db": ("candidate", quality),
        "quality_kv_db": ("candidate", quality), "tpot_s": ("candidate", np.arange(1.0, n + 1)),
        "memory_bytes": ("candidate", np.ones(n)), "fits": ("candidate", np.ones(n, bool)),
        "mac_area_um2": ("candidate", np.ones(n)), "kernel_path": ("candidate", paths),
        "kv_path": ("candidate", ["native"] * n),
    }, coords={"candidate": [f"c{i}" for i in range(n)]}, attrs={"kernel_table": kernel_table})


def test_recommend_skips_upcast_pairs_while_another_candidate_meets_the_floor() -> None:
    ds = _fake(["upcast", "unrecorded", "weight-only", "native"], [40.0, 40.0, 40.0, 40.0])
    r = recommend(ds, 30.0)
    assert r.attrs["recommendation"] == "c2" and r.attrs["recommendation_kernel"] == ""
    assert r.on_kernel.values.tolist() == [False, False, True, True]
    only_upcast = recommend(_fake(["upcast", "weight-only"], [40.0, 20.0]), 30.0)
    assert only_upcast.attrs["recommendation"] == "c0"
    assert "GEMMs run upcast" in only_upcast.attrs["recommendation_kernel"]
    assert recommend(_fake(["upcast", "native"], [20.0, 20.0]), 30.0).attrs["recommendation"] == ""
    # an arch without a kernel table: every candidate is unrecorded and eligible
    assert recommend(_fake(["unrecorded"] * 2, [40.0, 40.0], kernel_table=""), 30.0).attrs["recommendation"] == "c0"
    kv = _fake(["native", "native"], [40.0, 40.0]).assign(kv_path=("candidate", ["upcast", "native"]))
    assert recommend(kv, 30.0).attrs["recommendation"] == "c1"


def test_dataset_carries_the_path_and_the_gemm_class_follows_it() -> None:
    """H100, llama-3-8b decode at batch 1: INT8 x FP8 (an upcast) decodes as fast as the weight-only FP8
    pair, yet is not recommended; its GEMMs run in BF16 while FP8 x FP8 runs in FP8."""
    triples = [("int8", "fp8-e4m3", "fp8-e4m3"), ("fp8-e4m3", "bf16", "fp8-e4m3"), ("fp8-e4m3", "fp8-e4m3", "fp8-e4m3"),
               ("bf16", "fp8-e4m3", "bf16")]
    ds = format_selection("llama-3-8b", "h100-sxm", triples, batch=1, prompt=256, gen=32)
    assert ds.kernel_path.values.tolist() == ["upcast", "weight-only", "native", "upcast"]
    assert ds.kv_path.values.tolist() == ["native"] * 4
    assert ds.gemm_class_prefill.values.tolist() == ["bf16", "bf16", "fp8", "bf16"]
    assert all("[arch/kernels/hopper.yaml]" in str(r) for r in ds.kernel_reason.values)
    assert ds.meets_floor.values[0] and ds.tpot_s.values[0] <= ds.tpot_s.values[1]
    assert ds.attrs["recommendation"] == "fp8-e4m3/bf16/fp8-e4m3" and ds.attrs["kernel_table"] == "arch/kernels/hopper.yaml"
