"""NVFP4 against torchao 0.18.0 (torch 2.13.0+cpu) ``nvfp4_quantize`` + ``per_tensor_amax_to_scale``.

Expected values were produced in a scratch venv (not part of the repo); hwdse matched them bit for bit.
"""

import numpy as np
import pytest

from hwdse.formats import get
from tests.formats._vectors import digest, mix_floats

# formats.md 5.3 worked example: block 0 and the start of block 1 (rest zero).
EXAMPLE = np.zeros((1, 32), np.float32)
EXAMPLE[0, :9] = [12, 5, -3.1, 0.7, 1.5, 9, 0.2, -11, 2.9]
EXAMPLE[0, 16:20] = [0.03, -0.011, 0.002, 0.0004]

RAND = mix_floats(8192, 11, lo=-20, hi=20, block=16).reshape(-1, 64)
RAND[3, :16] = 0                   # an all-zero block: scale clamps at the E4M3 smallest normal 2^-6
RAND[5, 16:32] *= 2.0**-40         # a tiny block under the per-tensor scale


def one_level():
    return get({**get("nvfp4").spec.model_dump(), "tensor_scale": False})


def test_worked_example_one_level():
    fmt = one_level()
    tensor_scale, scales, codes = fmt.encode(EXAMPLE)
    assert tensor_scale == 1.0 and scales[0].tolist() == [0x40, 0x08]        # 2.0 and 2^-6 (clamped)
    assert codes[0, 0, :9].tolist() == [0x7, 0x4, 0xB, 0x1, 0x2, 0x6, 0x0, 0xF, 0x3]
    q = fmt.quantize(EXAMPLE)
    assert q[0, :9].tolist() == [12, 4, -3, 1, 2, 8, 0, -12, 3]             # 1.5/2 = 0.75 ties to 1
    assert q[0, 16:20].tolist() == [0.03125, -0.0078125, 0, 0]


def test_worked_example_two_level_tie_depends_on_float32_order():
    fmt = get("nvfp4")
    tensor_scale, scales, _ = fmt.encode(EXAMPLE)
    assert tensor_scale == np.float32(12) / np.float32(2688) and scales[0].tolist() == [0x7E, 0x39]  # 448, 1.125
    q = fmt.quantize(EXAMPLE)
    assert q[0, :9].tolist() == [12, 4, -3, 1, 1, 8, 0, -12, 3]              # 1.5 -> 1: scale 2.0000000894
    np.testing.assert_array_equal(q[0, 16:20], np.float32([6, -2, 0.5, 0]) * (np.float32(1.125) * tensor_scale))


@pytest.mark.parametrize("two_level, values, scale_bytes", [
    (False, "1a619d9a9b5f1ce3", "2c553963d4bbfc60"),
    (True, "754980780f51ea73", "36b9145e48298593"),
])
def test_matches_torchao_bit_for_bit(two_level, values, scale_bytes):
    fmt = get("nvfp4") if two_level else one_level()
    _, scales, _ = fmt.encode(RAND)
    assert digest(fmt.quantize(RAND)) == values
    assert digest(scales.reshape(-1)) == scale_bytes


def test_encode_decode_round_trip_and_bits():
    fmt = get("nvfp4")
    np.testing.assert_array_equal(fmt.decode(*fmt.encode(RAND)).reshape(RAND.shape), fmt.quantize(RAND))
    assert fmt.bits_per_element == 4.5 and fmt.compute == "fp4"
    assert fmt.values().max() == 6


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("two_level", [False, True])
def test_nan_or_inf_makes_only_its_block_nan(bad, two_level):
    fmt = get("nvfp4") if two_level else one_level()
    x = np.concatenate([EXAMPLE, np.full((1, 16), 100, np.float32)], axis=1)   # block 2 sets the tensor amax
    y = x.copy()
    y[0, 3] = bad
    q = fmt.quantize(y)
    assert np.isnan(q[0, :16]).all()
    np.testing.assert_array_equal(q[0, 16:], fmt.quantize(x)[0, 16:])
    tensor_scale, scales, codes = fmt.encode(y)
    assert scales[0, 0] == 0x7F and not codes[0, 0].any()
    assert np.isnan(fmt.decode(tensor_scale, scales, codes)[0, 0]).all()
