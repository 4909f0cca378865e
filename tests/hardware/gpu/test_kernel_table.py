"""Kernel tables (arch/kernels): schema errors, and every entry's path agrees with how the hardware
model times the pair (native: nothing converted; upcast: a 16-bit GEMM after converting; weight-only:
the weights converted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwdse._catalog import names
from hwdse._errors import HwdseError
from hwdse.formats import get
from hwdse.hardware import load_arch
from hwdse.hardware._base import join_classes
from hwdse.hardware.dequant import needs, ops_per_element
from hwdse.hardware.gpu.kernel_table import (
    gemm_path,
    kernel_table_file,
    kv_path,
    load_kernel_table,
)
from hwdse.workload import Scenario, load_model, operator_table

ROOT = Path(__file__).resolve().parents[3]
TABLES = sorted(p.stem for p in (ROOT / "arch" / "kernels").glob("*.yaml"))
GPUS = [n for n in names("arch") if getattr(load_arch(n), "kernels", None)]
# The issue asked for these devices; each must name a table.
COVERED = ("h100-sxm", "h200", "b200", "gb200", "l40s", "rtx-pro-6000", "a100-sxm-80gb", "a100-hbm3", "mi300x",
           "mi210")


def test_the_gpus_named_in_the_issue_keep_a_table() -> None:
    assert set(COVERED) <= set(GPUS)
    assert {load_arch(n).kernels for n in GPUS} == set(TABLES)  # no orphan table


@pytest.mark.parametrize("table", TABLES)
def test_every_table_loads_with_a_source_per_entry(table: str) -> None:
    t = load_kernel_table(table)
    assert t.gemm and t.kv and len(t.source) > 10
    for entry in [*t.gemm.values(), *t.kv.values()]:
        assert len(entry.source) > 10


def _entries() -> list[tuple[str, str, str]]:
    return [(gpu, pair, entry.path) for gpu in GPUS for pair, entry in load_kernel_table(load_arch(gpu).kernels).gemm.items()]


@pytest.mark.parametrize("gpu, pair, path", _entries())
def test_each_entry_agrees_with_the_modelled_datapath(gpu: str, pair: str, path: str) -> None:
    """native: both operands multiply as stored; upcast: an operand is converted and a 16-bit GEMM runs;
    weight-only: the weights are converted and the GEMM runs in the activations' class or a 16-bit one
    (W4A8 AWQ, INT4 x FP8, is timed at the BF16 rate: the dequant rule applies INT4 group scales in a
    16-bit type without a block-scaled MMA, where TensorRT-LLM's kernel multiplies in FP8)."""
    device = load_arch(gpu)
    weights, activations = pair.split("/")
    run, converted = needs((weights, activations), device.native_class, device.compute.block_scaled)
    assert gemm_path(device, weights, activations)[0] == path
    if path == "native":
        assert converted == () and device.compute.peak_TOPS[run] > 0
    elif path == "upcast":
        assert converted and run in ("bf16", "fp16")
    else:
        assert weights in converted
        assert run in (join_classes([get(activations).compute]), "bf16", "fp16")


@pytest.mark.parametrize("gpu", GPUS)
def test_kv_upcast_entries_convert_the_cache(gpu: str) -> None:
    device = load_arch(gpu)
    for kv, entry in load_kernel_table(device.kernels).kv.items():
        if entry.path == "upcast":
            assert kv in needs(("bf16", kv), device.native_class, device.compute.block_scaled)[1]


def _gemm(weights: str, activations: str):
    """A compute-bound prefill GEMM (llama-3-8b gate_proj, 4 x 2048 tokens)."""
    scen = Scenario(batch=4, prompt=2048, gen=1, weights=weights, activations=activations, kv="bf16")
    return next(op for op in operator_table(load_model("llama-3-8b"), scen, "prefill") if op.name == "gate_proj")


@pytest.mark.parametrize("arch, weights, activations, path, cls, converted", [
    ("h100-sxm", "int8", "fp8-e4m3", "upcast", "bf16", ("int8", "fp8-e4m3")),
    ("h100-sxm", "bf16", "fp8-e4m3", "upcast", "bf16", ("fp8-e4m3",)),
    ("b200", "bf16", "nvfp4", "upcast", "bf16", ("nvfp4",)),
    ("a100-sxm-80gb", "fp8-e4m3", "fp8-e4m3", "upcast", "fp16", ("fp8-e4m3", "fp8-e4m3")),
    ("h100-sxm", "int4", "bf16", "weight-only", "bf16", ("int4",)),
    ("h100-sxm", "fp8-e4m3", "fp8-e4m3", "native", "fp8", ()),
    ("h100-sxm", "int8", "int8", "native", "int8", ()),
    ("b200", "nvfp4", "nvfp4", "native", "fp4", ()),
    ("b200", "mxfp4", "mxfp8-e4m3", "native", "fp8", ()),
    ("mi300x", "fp8-e4m3", "fp8-e4m3", "native", "fp8", ()),
])
def test_the_evaluator_times_the_path(arch: str, weights: str, activations: str, path: str, cls: str,
                                      converted: tuple[str, ...]) -> None:
    """An upcast pair runs at the 16-bit peak plus the conversion of its narrow operands (no faster than
    the BF16 GEMM); a native pair at its own peak with no conversion."""
    device = load_arch(arch)
    op = _gemm(weights, activations)
    (t,) = device.schedule([op], "roofline")
    assert gemm_path(device, weights, activations)[0] == path
    assert t.compute_class == cls and t.peak_ops_per_s == device.compute.peak_TOPS[cls] * 1e12
    roles = {"weights": (weights, op.weight_bytes), "activations": (activations, op.act_in_bytes)}
    ops = sum(n / (get(f).bits_per_element / 8) * ops_per_element(f) for f, n in roles.values() if f in converted)
    assert t.compute_s == pytest.approx(op.flops / t.peak_ops_per_s + ops / (device.compute.vector_TFLOPS * 1e12))
    assert (ops > 0) == (path != "native")
    if path == "upcast":
        (bf16,) = device.schedule([_gemm("bf16", "bf16")], "roofline")
        assert t.compute_s > bf16.compute_s


def test_unlisted_pairs_and_devices_without_a_table() -> None:
    h100 = load_arch("h100-sxm")
    path, reason = gemm_path(h100, "mxfp6-e2m3", "bf16")
    assert path == "upcast" and "mxfp6-e2m3 converted to bf16" in reason and "hopper.yaml" in reason
    path, reason = gemm_path(load_arch("b200"), "nvfp4", "fp8-e4m3")
    assert path == "unrecorded" and "as stored (fp8)" in reason
    assert gemm_path(load_arch("groq-lpu"), "int8", "int8")[0] == "unrecorded"
    assert kernel_table_file(load_arch("groq-lpu")) is None
    assert gemm_path(load_arch("dgx-h100"), "int8", "fp8-e4m3") == gemm_path(h100, "int8", "fp8-e4m3")
    assert kernel_table_file(load_arch("a100-hbm3-pim")) == "arch/kernels/ampere.yaml"
    assert kv_path(h100, "fp8-e4m3", "bf16")[0] == "native"
    assert kv_path(load_arch("mi210"), "fp8-e4m3", "bf16")[0] == "upcast"  # no FP8 KV entry for gfx90a


@pytest.mark.parametrize("body, field, reason", [
    ("gemm:\n  fp9/bf16: {path: native, source: 'a source of some length'}\n", "gemm",
     "unknown formats entry 'fp9'"),
    ("gemm:\n  int8-bf16: {path: native, source: 'a source of some length'}\n", "gemm",
     "expected 'weights/activations'"),
    ("gemm:\n  int8/bf16: {path: fast, source: 'a source of some length'}\n", "gemm.int8/bf16.path",
     "Input should be 'native', 'weight-only' or 'upcast', got 'fast'"),
    ("gemm:\n  int8/bf16: {path: native}\n", "gemm.int8/bf16.source", "Field required"),
    ("gemm: {}\nkv:\n  fp8-e4m3: {path: weight-only, source: 'a source of some length'}\n", "kv",
     "a KV-cache path is 'native' or 'upcast'"),
])
def test_bad_entries_give_one_line_errors(tmp_path: Path, body: str, field: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("source: 'a table written by a test'\n" + body)
    with pytest.raises(HwdseError) as err:
        load_kernel_table(str(path))
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"arch/kernels/bad.yaml: {field}: ") and reason in text


def test_a_gpu_naming_an_unknown_table_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h100-typo.yaml"
    path.write_text((ROOT / "arch" / "h100-sxm.yaml").read_text().replace("kernels: hopper", "kernels: hoper"))
    with pytest.raises(HwdseError, match=r"h100-typo.yaml: gpu.kernels: unknown kernel table 'hoper'; known: ada, "):
        load_arch(str(path))
