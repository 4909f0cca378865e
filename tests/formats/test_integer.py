"""Integer formats: scale granularity, symmetric/asymmetric ranges, scale formats, clipping."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwdse.formats import get
from hwdse.formats._quality import qsnr_db


def integer(bits, granularity="tensor", group_size=None, symmetric=True, scale_format="fp32", clip_ratio=1.0):
    scaling = {"granularity": granularity, "scale_format": scale_format, "clip_ratio": clip_ratio}
    if group_size:
        scaling["group_size"] = group_size
    return get({"name": f"int{bits}", "kind": "integer", "source": "test", "bits": bits,
                "symmetric": symmetric, "scaling": scaling})


ROW_SCALES = np.linspace(0.1, 10, 16, dtype=np.float32)[:, None]
X = np.random.default_rng(0).standard_normal((16, 256)).astype(np.float32) * ROW_SCALES


def test_per_channel_int8_levels_and_error_bound():
    q = get("int8").quantize(X)                          # catalog: per-channel, symmetric, fp32 scale
    scale = np.abs(X).max(axis=1, keepdims=True) / 127
    k = q / scale
    assert np.allclose(k, np.rint(k), atol=1e-3) and np.abs(np.rint(k)).max() == 127
    assert np.all(np.abs(q - X) <= scale / 2 * (1 + 1e-6))


def test_granularity_ordering():
    fmts = {"tensor": integer(4), "channel": integer(4, "channel"), "group": integer(4, "group", 32)}
    db = {g: qsnr_db(X, fmt.quantize(X)) for g, fmt in fmts.items()}
    assert db["tensor"] < db["channel"] < db["group"]


def test_groups_run_along_the_axis():
    fmt = integer(4, "group", 32)
    np.testing.assert_array_equal(fmt.quantize(X, axis=0), fmt.quantize(X.T, axis=-1).T)
    np.testing.assert_array_equal(fmt.quantize(X[:, :40]), np.concatenate(
        [fmt.quantize(X[:, :32]), fmt.quantize(X[:, 32:40])], axis=1))   # ragged last group


def test_asymmetric_uses_zero_point_and_wins_on_one_sided_data():
    relu = np.maximum(X, 0)
    sym, asym = integer(4, "channel"), integer(4, "channel", symmetric=False)
    assert qsnr_db(relu, asym.quantize(relu)) > qsnr_db(relu, sym.quantize(relu)) + 3
    q = asym.quantize(relu)
    assert (q >= 0).all() and (q == 0).any()             # zero is exact
    assert len(np.unique(q[0])) <= 16
    assert asym.values().tolist() == list(range(16)) and sym.values().tolist() == list(range(-7, 8))


def test_e8m0_scale_is_a_power_of_two_and_never_clips():
    fmt = integer(8, "group", 32, scale_format="e8m0")
    q = fmt.quantize(X)
    blocks_q, blocks_x = q.reshape(16, 8, 32), X.reshape(16, 8, 32)
    amax = np.abs(blocks_x).max(-1, keepdims=True)
    scale = 2.0 ** np.ceil(np.log2(amax / 127))
    k = blocks_q / scale
    assert np.array_equal(k, np.rint(k)) and np.abs(k).max() <= 127
    assert np.all(np.abs(blocks_q - blocks_x) <= scale / 2)


@pytest.mark.parametrize("scale_format", ["fp16", "bf16"])
def test_low_precision_scales_cost_a_little(scale_format):
    exact = qsnr_db(X, integer(8, "group", 32).quantize(X))
    rounded = qsnr_db(X, integer(8, "group", 32, scale_format=scale_format).quantize(X))
    assert exact - 1.0 < rounded <= exact + 0.05


def test_clip_ratio_clips_the_max():
    q = integer(8, "channel", clip_ratio=0.5).quantize(X)
    assert np.allclose(np.abs(q).max(axis=1), 0.5 * np.abs(X).max(axis=1), rtol=1e-6)


def test_bits_per_element_and_compute():
    assert get("int4").bits_per_element == 4 + 16 / 128
    assert integer(4, "group", 32, symmetric=False).bits_per_element == 4 + (32 + 4) / 32
    assert integer(8, "channel").bits_per_element == 8
    assert [integer(b).compute for b in (2, 3, 4, 6, 8)] == ["int2", "int4", "int4", "int8", "int8"]


def test_zero_and_nan_groups():
    x = np.zeros((2, 32), np.float32)
    x[1, 3] = np.nan
    q = integer(8, "group", 32).quantize(x)
    assert not q[0].any() and np.isnan(q[1]).all()
    q = integer(4, "group", 32, symmetric=False).quantize(np.zeros(32, np.float32))
    assert not q.any()


def test_int2():
    q = integer(2, "tensor").quantize(np.array([-1.0, -0.2, 0.6, 1.0], np.float32))
    assert q.tolist() == [-1.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("fmt", [integer(4, "group", 32), integer(8, "channel"), integer(4, "tensor"),
                                 integer(4, "group", 32, symmetric=False, scale_format="bf16"), integer(2, "channel")])
def test_encode_decode_round_trip(fmt):
    codes, scales, zeros = fmt.encode(X)
    assert codes.dtype == zeros.dtype == np.uint8 and codes.max() < 1 << fmt.spec.bits
    np.testing.assert_array_equal(fmt.decode(codes, scales, zeros).reshape(X.shape), fmt.quantize(X))


def test_symmetric_codes_are_twos_complement():
    fmt = integer(4, "tensor")
    codes, scales, _ = fmt.encode(np.array([-1.0, -1 / 7, 0.0, 1.0], np.float32))
    assert codes[0].tolist() == [0b1001, 0b1111, 0, 0b0111] and scales[0] == np.float32(1 / 7)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 8), st.sampled_from([None, 8, 32]), st.booleans(),
       st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=100))
def test_error_is_at_most_half_a_step(bits, group, symmetric, values):
    x = np.array(values, np.float32)
    fmt = integer(bits, "group" if group else "tensor", group, symmetric=symmetric)
    codes, scales, zeros = fmt.encode(x)
    q = fmt.quantize(x)
    step = np.repeat(scales, codes.shape[-1], axis=-1).reshape(-1)[: x.size]
    assert np.all(np.abs(q - x) <= step / 2 * (1 + 1e-5) + 1e-30)
