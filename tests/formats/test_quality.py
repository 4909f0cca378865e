"""Quality metrics, and the QSNR oracle table of formats.md 9.2 (N = 2^22, seed 12345).

The oracle numbers were computed independently (numpy + ml_dtypes reference of the OCP rules,
torchao 0.18 for NVFP4) and agree with gfloat/torchao/microxcaling; we require 0.1 dB.
"""

import numpy as np
import pytest

from hwdse.formats import get
from hwdse.formats._quality import matmul_rel_error, max_error, mse, qsnr_db

N = 1 << 22


@pytest.fixture(scope="module")
def data():
    return {"gauss": np.random.default_rng(12345).standard_normal(N).astype(np.float32),
            "laplace": np.random.default_rng(12345).laplace(0.0, 1.0, N).astype(np.float32)}


def variant(name, **fields):
    return get({**get(name).spec.model_dump(), **fields})


PER_TENSOR = {"granularity": "tensor"}
# name -> (format, N(0,1) QSNR dB, Laplace(0,1) QSNR dB), formats.md 9.2
ORACLE = {
    "mxfp8-e4m3": (lambda: get("mxfp8-e4m3"), 30.65, 30.00),
    "mxfp8-e5m2": (lambda: get("mxfp8-e5m2"), 25.36, 25.21),
    "mxfp6-e2m3": (lambda: get("mxfp6-e2m3"), 30.95, 30.28),
    "mxfp6-e3m2": (lambda: get("mxfp6-e3m2"), 25.36, 25.21),
    "mxfp4": (lambda: get("mxfp4"), 18.79, 17.94),
    "mxfp4 block 16": (lambda: variant("mxfp4", block_size=16), 18.58, 18.05),
    "mxint8": (lambda: get("mxint8"), 41.67, 39.99),
    "nvfp4": (lambda: get("nvfp4"), 20.44, 20.66),
    "nvfp4 one-level": (lambda: variant("nvfp4", tensor_scale=False), 20.44, 20.66),
    "int8 per-tensor": (lambda: variant("int8", scaling=PER_TENSOR), 38.64, 31.55),
    "int4 per-tensor": (lambda: variant("int4", scaling=PER_TENSOR), 13.46, 7.03),
    "int8 block-32": (lambda: variant("int8", scaling={"granularity": "group", "group_size": 32}), 45.45, 43.44),
    "int4 block-32": (lambda: variant("int4", scaling={"granularity": "group", "group_size": 32}), 20.27, 18.34),
    "int4 block-128": (lambda: variant("int4", scaling={"granularity": "group", "group_size": 128}), 18.63, 15.90),
    "fp8-e4m3 per-tensor": (lambda: variant("fp8-e4m3", scaling=PER_TENSOR), 31.55, 31.53),
    "fp8-e5m2 per-tensor": (lambda: variant("fp8-e5m2", scaling=PER_TENSOR), 25.57, 25.56),
    "fp6-e2m3 per-tensor": (lambda: variant("fp6-e2m3", scaling=PER_TENSOR), 30.14, 24.88),
    "fp6-e3m2 per-tensor": (lambda: variant("fp6-e3m2", scaling=PER_TENSOR), 25.57, 25.55),
    "fp4-e2m1 per-tensor": (lambda: variant("fp4-e2m1", scaling=PER_TENSOR), 17.23, 11.25),
}


@pytest.mark.parametrize("case", ORACLE)
def test_qsnr_oracle_table(data, case):
    make, gauss_db, laplace_db = ORACLE[case]
    fmt = make()
    assert qsnr_db(data["gauss"], fmt.quantize(data["gauss"])) == pytest.approx(gauss_db, abs=0.1)
    assert qsnr_db(data["laplace"], fmt.quantize(data["laplace"])) == pytest.approx(laplace_db, abs=0.1)


def test_metrics_on_known_values():
    x = np.array([1.0, -2.0, 3.0, 0.0])
    q = np.array([1.0, -2.5, 3.0, 0.5])
    assert mse(x, q) == pytest.approx(0.125)
    assert max_error(x, q) == 0.5
    assert qsnr_db(x, q) == pytest.approx(10 * np.log10(14 / 0.5))
    assert qsnr_db(x, x) == np.inf
    with pytest.raises(ValueError, match="shapes differ"):
        mse(x, q[:3])


def test_matmul_rel_error_orders_formats():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 256)).astype(np.float32)
    b = rng.standard_normal((256, 32)).astype(np.float32)
    errs = {n: matmul_rel_error(a, b, n) for n in ("fp32", "bf16", "mxint8", "mxfp8-e4m3", "nvfp4", "mxfp4")}
    assert errs["fp32"] < 1e-6
    assert errs["bf16"] < errs["mxint8"] < errs["mxfp8-e4m3"] < errs["nvfp4"] < errs["mxfp4"] < 0.2
    # quantizing only one operand (b in bf16) lowers the error
    assert matmul_rel_error(a, b, "mxfp4", "bf16") < errs["mxfp4"]


def test_matmul_blocks_run_along_k():
    # b quantized along axis 0 (K): a per-column scale change must not leak into other columns
    b = np.random.default_rng(1).standard_normal((64, 4)).astype(np.float32)
    b2 = b.copy()
    b2[:, 0] *= 1000
    fmt = get("mxfp4")
    np.testing.assert_array_equal(fmt.quantize(b, axis=0)[:, 1:], fmt.quantize(b2, axis=0)[:, 1:])


def test_quality_table_is_a_dataset_over_formats_and_tensors(data):
    from hwdse.formats import quality_table, sources

    tensors = {"gauss": data["gauss"][: 1 << 16], "outliers": sources.llm_activations(64, 512, seed=1)}
    ds = quality_table(["mxfp4", "mxint8", "int8"], tensors)
    assert ds["qsnr_db"].dims == ("format", "tensor") and ds["qsnr_db"].attrs["units"] == "dB"
    assert ds["bits_per_element"].sel(format="mxfp4") == 4.25 and ds["compute"].sel(format="mxint8") == "int8"
    assert ds["qsnr_db"].sel(format="mxfp4", tensor="gauss") == pytest.approx(
        qsnr_db(tensors["gauss"], get("mxfp4").quantize(tensors["gauss"])))
    assert float(ds["mse"].sel(format="mxint8", tensor="gauss")) < float(ds["mse"].sel(format="mxfp4", tensor="gauss"))
