"""Step times tabulated over the requests decoding: grid, interpolation, and fidelity to direct timing."""

import numpy as np
import pytest

from hwdse.hardware._base import resolve_mode
from hwdse.perf.evaluate import resolve
from hwdse.serving import StepModel, load_engine
from hwdse.serving.table import PER_OCTAVE, UNIFORM, Tabulated, grid


def test_grid_has_every_tile_edge_and_the_integer_after_it():
    g = grid(600.0)
    assert np.array_equal(g[: 2 * UNIFORM + 1], np.arange(2 * UNIFORM + 1.0))  # spacing 1 through 32
    edges = [UNIFORM * 2.0 ** o * (1 + k / PER_OCTAVE) for o in range(1, 6) for k in range(PER_OCTAVE)]
    assert set(edges) | {e + 1 for e in edges} <= set(g)
    assert np.max((np.diff(g) / g[1:])[g[1:] > 2 * UNIFORM]) < 1 / PER_OCTAVE  # at most 6 % apart at the defaults
    assert 600.0 <= g[-1] < 1200.0
    assert grid(3.0)[-1] > UNIFORM  # never fewer than the integer part plus one octave


def test_interpolation_is_exact_on_the_grid_linear_between_and_per_column():
    """A two-column design point: each column reads its own values; NaN stays NaN; beyond the grid it clips;
    a grid position maps back to its g."""
    slope = np.array([1.0, 3.0])
    table = Tabulated(lambda g: (g ** 2 * slope,), hi=100.0, ndim=1)
    pts = table.grid[[3, 20, 30]]
    assert np.allclose(table(pts[:, None])[0], pts[:, None] ** 2 * slope)
    mid = (table.grid[20] + table.grid[21]) / 2
    expected = (table.grid[20] ** 2 + table.grid[21] ** 2) / 2 * slope
    assert np.allclose(table(np.array([[mid]]))[0], expected)
    out = table(np.array([np.nan, 1e9]))[0]
    assert np.isnan(out[0]) and out[1] == pytest.approx(table.grid[-1] ** 2 * 3.0)
    flat = Tabulated(lambda g: (3 * g,), hi=100.0, ndim=0)
    g = np.random.default_rng(0).uniform(0, flat.grid[-1], 10_000)
    u = flat.position(g)
    idx = np.floor(u).astype(int)
    assert np.all((flat.grid[idx] <= g) & (g <= flat.grid[idx + 1]))
    back, value = flat.at(u)  # position and at are inverse along the grid
    assert np.allclose(back, g) and np.allclose(value, 3 * g)


@pytest.mark.parametrize("arch,model,weights", [("h100-sxm", "llama-3-8b", "bf16"), ("b200", "llama-3-70b", "nvfp4"),
                                                ("dgx-a100-attacc", "llama-2-70b", "fp16")])
def test_tabulated_steps_match_direct_timing(arch, model, weights):
    """At every integer 1..512 requests decoding, the interpolated decode-only and mixed steps are within
    0.3 % of timing the point directly (95th percentile; exact at tile edges, where the GEMM model's wave
    steps are), and within 2 % everywhere (a mixed step's edges move with its prompt chunk)."""
    model, system, scen = resolve(model, arch, None, None, batch=1, prompt=2048, gen=512, flash_attention=True,
                                  weights=weights, activations=weights, kv=weights)
    steps = StepModel(model, system, scen, resolve_mode("auto", system), load_engine("trtllm"))
    g = np.arange(1, 513.0)
    def columns(x):  # time and energy of the decode-only and the mixed step
        return tuple(getattr(w, f) for w in steps.pair(x, 512.0, 2048.0, 2304.0) for f in ("seconds", "joules"))

    table = Tabulated(columns, hi=512.0, ndim=0)
    direct = columns(g)
    for got, want in zip(table(g), direct):
        err = np.abs(got / want - 1)
        assert np.median(err) < 5e-4 and np.percentile(err, 95) < 3e-3 and err.max() < 0.02
