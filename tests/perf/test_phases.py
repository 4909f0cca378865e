import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwdse.hardware import load_arch
from hwdse.perf import evaluate, op_time, sum_max_affine
from hwdse.workload import Scenario, load_model, operator_table

finite = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(finite, finite, finite, finite, st.integers(0, 60))
def test_sum_max_affine_matches_brute_force(c0, c1, m0, m1, n):
    x = np.arange(n)
    expected = np.maximum(c0 + c1 * x, m0 + m1 * x).sum()
    assert sum_max_affine(c0, c1, m0, m1, n) == pytest.approx(expected, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("model, arch, batch, prompt, gen", [
    ("llama-2-7b", "a6000", 1, 2048, 256),       # memory-bound everywhere
    ("llama-2-7b", "h100-sxm", 256, 300, 200),    # attention crosses compute/memory inside the range
    ("mistral-7b", "a100-sxm-80gb", 8, 4000, 300),  # sliding window of 4096 reached mid-generation
    ("mistral-7b", "a100-sxm-80gb", 8, 5000, 20),   # window reached before the first step
])
@pytest.mark.parametrize("flash", [False, True])
def test_tpot_is_exact_mean_over_growing_kv(model, arch, batch, prompt, gen, flash):
    m, a = load_model(model), load_arch(arch)
    scen = Scenario(batch=batch, prompt=prompt, gen=gen, flash_attention=flash)
    steps = [sum(t.op.count * op_time(t) for t in a.schedule(operator_table(m, scen, "decode", prompt + j)))
             for j in range(gen)]
    assert float(evaluate(m, a, scen, mode="roofline").tpot_s) == pytest.approx(np.mean(steps), rel=1e-9)
