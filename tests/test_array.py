"""Arithmetic helpers (hwdse._array): Python numbers take numpy's values without numpy calls, and the
fan-out bisection answers as the plain one, bit for bit."""

import math

import numpy as np
import pytest

from hwdse._array import bisect, ceil, maximum, minimum

SPECIAL = [0.0, -0.0, 1.0, -2.5, 3.0, math.inf, -math.inf, math.nan, 1e308, 5e-324]


def plain(test, lo, hi, halvings):
    """The reference: ``halvings`` bisection steps, one call of ``test`` each."""
    for _ in range(halvings):
        mid = (lo + hi) / 2
        up = test(mid)
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return lo


@pytest.mark.parametrize("a", SPECIAL)
@pytest.mark.parametrize("b", SPECIAL + [2])
def test_python_numbers_take_numpys_minimum_and_maximum(a, b):
    for ours, theirs in ((minimum, np.minimum), (maximum, np.maximum)):
        got, want = ours(a, b), float(theirs(a, b))
        assert got == want or (math.isnan(got) and math.isnan(want)), (ours.__name__, a, b)


@pytest.mark.parametrize("x", SPECIAL + [2.5, -2.5, 4503599627370495.5])
def test_python_floats_take_numpys_ceil(x):
    got, want = ceil(x), float(np.ceil(x))
    assert got == want or (math.isnan(got) and math.isnan(want))


@pytest.mark.parametrize("points", [1, 2, 5, 40, 1000])
@pytest.mark.parametrize("monotone", [True, False])
def test_a_fan_out_bisection_is_the_plain_one_bit_for_bit(points, monotone):
    """Arbitrary float brackets (roots inside and outside them); a monotone test and one that flips
    back and forth inside the brackets (the replay of each step). Few points take fewer calls."""
    rng = np.random.default_rng(points)
    lo = rng.uniform(-1.0, 0.3, points)
    hi = lo + rng.uniform(1e-3, 10.0, points)
    root = rng.uniform(lo - 1, hi + 1)

    def test(x):
        return x < root if monotone else np.sin(x * 3e4 + root) > 0

    calls = []
    got = bisect(lambda x: calls.append(np.shape(x)) or test(x), lo, hi, 30)
    np.testing.assert_array_equal(got, plain(test, lo, hi, 30))
    assert len(calls) == 30 if points > 40 else len(calls) < 30


def test_the_first_step_sets_the_points_shape():
    """Scalar brackets and a test over 7 points: every point its own answer."""
    root = np.linspace(0.1, 0.9, 7)
    got = bisect(lambda x: x < root, np.float64(0.0), np.float64(1.0), 20)
    np.testing.assert_array_equal(got, plain(lambda x: x < root, np.float64(0.0), np.float64(1.0), 20))


def test_one_point_is_bisected_in_python_floats():
    got = bisect(lambda x: x * x < 2.0, 0.0, 2.0, 40)
    assert type(got) is float and got == plain(lambda x: x * x < 2.0, np.float64(0.0), np.float64(2.0), 40)
