"""Catalog conformance: every entry loads, carries a source, and honours the format contract."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import hwdse.formats
from hwdse._errors import HwdseError
from hwdse.formats import get, names

REQUIRED = ["fp32", "bf16", "fp16", "fp8-e4m3", "fp8-e5m2", "fp6-e2m3", "fp6-e3m2", "fp4-e2m1", "int8", "int4",
            "flint4", "flint8", "mxfp8-e4m3", "mxfp8-e5m2", "mxfp6-e2m3", "mxfp6-e3m2", "mxfp4", "mxint8", "nvfp4"]

# (bits_per_element, compute) per catalog entry: OCP MX v1.0 Table 1 (k=32, 8-bit scale),
# NVFP4 = 4 + 8/16, int4 catalog default = group 128 with an FP16 scale; int4-g128-asym adds a 4-bit
# zero point per group as GPTQ/AWQ checkpoints store it (qzeros: eight 4-bit zeros per int32).
EXPECTED = {
    "fp32": (32, "fp32"), "bf16": (16, "bf16"), "fp16": (16, "fp16"), "fp8-e4m3": (8, "fp8"),
    "fp8-e5m2": (8, "fp8"), "fp6-e2m3": (6, "fp6"), "fp6-e3m2": (6, "fp6"), "fp4-e2m1": (4, "fp4"),
    "int8": (8, "int8"), "int4": (4.125, "int4"), "flint4": (4, "int4"), "flint8": (8, "int8"),
    "mxfp8-e4m3": (8.25, "fp8"), "mxfp8-e5m2": (8.25, "fp8"), "mxfp6-e2m3": (6.25, "fp6"),
    "mxfp6-e3m2": (6.25, "fp6"), "mxfp4": (4.25, "fp4"), "mxint8": (8.25, "int8"), "nvfp4": (4.5, "fp4"),
    "int4-g128-asym": (4 + (16 + 4) / 128, "int4"),
}


def test_public_api_is_pinned():
    assert sorted(hwdse.formats.__all__) == ["AntChoice", "Compute", "Format", "MacCost", "PairResult", "Recipe",
                                             "Scales", "ant_select", "get", "mac_cost", "matmul_rel_error",
                                             "max_error", "mse", "names", "qsnr_db", "quality_table", "quantize_pair",
                                             "recipe", "recipes", "sources"]
    assert all(hasattr(hwdse.formats, n) for n in hwdse.formats.__all__)


def test_catalog_has_every_required_name():
    assert set(REQUIRED) <= set(names())


@pytest.mark.parametrize("name", names())
def test_contract(name):
    fmt = get(name)
    assert fmt.name == name
    bits, compute = EXPECTED.get(name, (fmt.bits_per_element, fmt.compute))
    assert fmt.bits_per_element == pytest.approx(bits)
    assert fmt.compute == compute
    assert fmt.spec.source
    x = np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32)
    q = fmt.quantize(x)
    assert q.shape == x.shape and q.dtype == np.float32
    assert np.all(np.isfinite(q))
    rel = np.sqrt(np.mean((q - x) ** 2) / np.mean(x**2))
    assert rel < 0.3, "quantize must approximate its input"
    if fmt.spec.kind == "minifloat":  # a direct cast is idempotent
        np.testing.assert_array_equal(fmt.quantize(q), q)


def test_get_accepts_path_and_mapping(tmp_path):
    path = tmp_path / "fp5.yaml"
    path.write_text("kind: minifloat\nsource: test\nexp_bits: 2\nman_bits: 2\nspecials: none\n")
    assert get(path).name == "fp5" and get(path).compute == "fp6"
    assert get({"name": "m", "kind": "mx", "source": "test", "element": {"bits": 8, "frac_bits": 6}}).compute == "int8"


def test_unknown_name_is_one_line():
    with pytest.raises(HwdseError, match="unknown formats entry 'fp7'") as err:
        get("fp7")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, field, reason", [
    ("kind: minifloat\nsource: x\nexp_bits: 9\nman_bits: 2\n", "exp_bits", "less than or equal to 8"),
    ("kind: mx\nsource: abc\nelement: {exp_bits: 2, man_bits: 1}\nblock_size: 0\n", "block_size", "greater than"),
    ("kind: mx\nsource: abc\nelement: {exp_bits: 9, man_bits: 1}\n", "element.float.exp_bits", "less than or equal"),
    ("kind: mx\nsource: abc\nelement: {bits: 8}\n", "element.int.frac_bits", "Field required"),
    ("kind: integer\nsource: abc\nbits: 4\nscaling: {granularity: group}\n", "scaling", "group_size is required"),
    ("kind: minifloat\nsource: abc\nexp_bits: 4\nman_bits: 3\ncolour: red\n", "colour", "Extra inputs"),
    ("kind: posit\nsource: abc\n", "kind", "does not match any of the expected tags"),
    ("kind: minifloat\nexp_bits: 4\nman_bits: 3\n", "source", "Field required"),
    ("kind: [minifloat\n", "line 2", "malformed YAML"),
])
def test_bad_files_name_file_field_reason(tmp_path, text, field, reason):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(HwdseError) as err:
        get(path)
    msg = str(err.value)
    assert "bad.yaml" in msg and field in msg and reason in msg and "\n" not in msg


def test_readme_examples_load():
    text = (Path(__file__).resolve().parents[2] / "formats" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    x = np.random.default_rng(0).standard_normal((4, 128)).astype(np.float32)
    for i, block in enumerate(blocks):
        fmt = get({"name": f"example{i}", **yaml.safe_load(block)})
        assert fmt.quantize(x).shape == x.shape
    assert [get({"name": "e", **yaml.safe_load(b)}).bits_per_element for b in blocks] == [5, 4 + 20 / 64, 6.5]
