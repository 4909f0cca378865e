"""flint value tables and ANT type selection (Guo et al., MICRO 2022; clevercool/ANT-Quantization @ bc84067)."""

import numpy as np
import pytest

from hwdse.formats import get
from hwdse.formats._flint import ant_select, flint_decode, grid, grid_quantize
from hwdse.formats._sources import gaussian, laplace, student_t, uniform

# formats.md 7.1: decoded from the reference's flint_value() grid (exact match for B = 3, 4, 7, 8).
FLINT3 = [0, 1, 2, 3, 4, 6, 8, 16]
FLINT4 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 24, 32, 64]


def test_unsigned_tables_3_and_4_bit():
    assert flint_decode(np.arange(8), 3).tolist() == FLINT3
    assert flint_decode(np.arange(16), 4).tolist() == FLINT4


def test_unsigned_8_bit_steps():
    v = flint_decode(np.arange(256), 8)
    assert np.all(np.diff(v) > 0) and v[-1] == 2.0**14
    steps = {(0, 128): 1, (128, 256): 2, (256, 512): 8, (512, 1024): 32, (1024, 2048): 128, (2048, 4096): 512}
    for (lo, hi), step in steps.items():
        inside = v[(v >= lo) & (v < hi)]
        assert inside[0] == lo and np.all(np.diff(inside) == step), (lo, hi)
    assert v[-4:].tolist() == [4096, 6144, 8192, 16384]


def test_signed_flint_is_sign_magnitude():
    fmt = get("flint4")
    assert fmt.decode(np.arange(16)).tolist() == FLINT3 + [-0.0] + [-v for v in FLINT3[1:]]
    assert fmt.values().tolist() == [-16, -8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8, 16]
    assert len(get("flint8").values()) == 255 and get("flint8").values().max() == 4096
    assert fmt.compute == "int4" and get("flint8").compute == "int8"


def test_flint_encode_round_trips_and_rounds_ties_up():
    fmt = get("flint4")
    vals = fmt.values()
    np.testing.assert_array_equal(fmt.decode(fmt.encode(vals)), vals)
    assert fmt.decode(fmt.encode(np.array([5.0, 7.0, 12.0, 100.0, -5.0, 0.4]))).tolist() == [6, 8, 16, 16, -4, 0]


def test_other_ant_grids():
    assert grid("pot", 4).tolist() == [-64, -32, -16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16, 32, 64]
    assert grid("int", 4).tolist() == list(range(-8, 8))          # ANT's int includes -2^(B-1)
    assert grid("int", 3, signed=False).tolist() == list(range(8))


def test_grid_quantize_scales_to_alpha_and_ties_to_larger():
    g = np.array([0.0, 1.0, 2.0, 4.0])
    q = grid_quantize(np.array([0.5, 1.5, 3.0, 9.0, -1.0]), g, 8.0)   # scale 2: grid {0, 2, 4, 8}
    assert q.tolist() == [0.0, 2.0, 4.0, 8.0, 0.0]


@pytest.mark.parametrize("source, kind", [(laplace, "flint"), (gaussian, "flint"), (uniform, "int"),
                                          (lambda n, seed: student_t(n, 3.0, seed), "pot")])
def test_ant_selection_follows_the_distribution(source, kind):
    # formats.md 7.2 (re-implementation of the reference procedure): Gaussian/Laplace -> flint,
    # uniform -> int, Student-t(3) -> pot.
    x = source(1 << 15, 3)
    choice = ant_select(x, 4)
    assert choice.kind == kind
    assert choice.quantized.shape == x.shape
    assert choice.mse == pytest.approx(np.mean((choice.quantized.astype(np.float64) - x) ** 2), rel=1e-6)


def test_ant_forces_int_above_6_bits_and_supports_channels():
    x = laplace(4096, 1).reshape(16, 256)
    assert ant_select(x, 8).kind == "int"
    per_channel = ant_select(x, 4, granularity="channel")
    per_tensor = ant_select(x, 4)
    assert per_channel.mse <= per_tensor.mse


def test_flint_quantize_is_on_the_scaled_grid():
    x = laplace(1 << 12, 5)
    levels = np.unique(np.abs(get("flint4").quantize(x)))
    scale = levels[1]                                # the smallest non-zero level is 1·scale here
    assert set(np.round(levels / scale, 4).tolist()) <= set(FLINT3)
    assert len(levels) >= 6
