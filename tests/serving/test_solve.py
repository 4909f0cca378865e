"""The steady-state solve's fast paths (Python floats for one point, several halvings per call of the test
for few points, one error band per distinct step) give the records of the plain 20-step bisection on numpy
values, bit for bit: random designs, saturated, unstable and power-throttled points included."""

import numpy as np
import pytest

from hwdse.hardware import load_arch
from hwdse.hardware.systems import with_parallelism
from hwdse.serving import serve_record, steady
from hwdse.serving.harness import Harness
from hwdse.serving.speculative import Speculative


def bisection(exceeds, hi):
    """The reference solve: ``BISECTIONS`` plain halvings of ``(0, hi]`` on numpy values."""
    hi = np.asarray(hi, dtype=float)
    lo = np.zeros_like(hi)
    for _ in range(steady.BISECTIONS):
        mid = (lo + hi) / 2
        up = exceeds(mid)
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return lo


def random_cases(n: int, seed: int) -> list[tuple[str, str, dict]]:
    """``n`` serving points drawn over systems, models, formats, engines, lengths and traffic."""
    rng = np.random.default_rng(seed)
    archs = ["h100-sxm", "b200", "mi300x", "a100-sxm-80gb", "l40s", "dgx-h100", "hbm3-pim", "dgx-a100-attacc"]
    models = ["llama-3-8b", "llama-3-70b", "qwen3-235b-a22b", "gpt-oss-20b", "mixtral-8x7b"]
    cases = []
    for _ in range(n):
        arch = str(rng.choice(archs))
        kwargs = dict(isl=int(rng.choice([128, 1024, 8000])), osl=int(rng.choice([2, 256, 1024])),
                      engine=str(rng.choice(["trtllm", "vllm", "sglang"])), mode=str(rng.choice(["auto", "roofline"])),
                      weights="bf16" if arch == "hbm3-pim" else str(rng.choice(["bf16", "fp8-e4m3"])))
        traffic = rng.integers(4)
        if traffic == 0:
            kwargs["concurrency"] = float(rng.choice([1, 17, 64, 5000]))   # 5000: past every in-flight cap
        elif traffic == 1:
            kwargs["concurrency"] = np.geomspace(1, 4096, int(rng.choice([3, 40])))
        elif traffic == 2:
            kwargs["arrival_rate"] = float(10 ** rng.uniform(-2, 4))         # up to far past capacity: unstable
        else:
            kwargs["arrival_rate"] = np.geomspace(0.01, 1e4, 9)
        if rng.random() < 0.2:
            kwargs["harness"] = Harness(client_wait=1.0, start_wave=0.3, latency_s=0.01)
        cases.append((str(rng.choice(models)), arch, kwargs))
    return cases


CASES = random_cases(24, seed=29) + [
    ("llama-3-70b", "b200", dict(concurrency=256.0, isl=2048, osl=512, weights="fp8-e4m3")),  # throttled
    ("llama-3-70b", "gb200", dict(concurrency=np.array([1.0, 16.0, 256.0, 1024.0]), isl=2048, osl=512,
                                  weights="fp8-e4m3")),
    ("llama-3-8b", "h100-sxm", dict(concurrency=np.linspace(1, 512, 300), isl=1024, osl=1024)),
    ("llama-3-8b", "h100-sxm", dict(concurrency=48.0, isl=1024, osl=512, mode="achieved",
                                    speculative=Speculative(draft_tokens=3, acceptance=0.7))),
    ("llama-3-8b", "h100-sxm", dict(concurrency=np.array([[4.0], [64.0], [900.0]]), isl=1024, osl=256,
                                    overrides={"memory.bandwidth_GBps": np.array([900.0, 3350.0, 8000.0])})),
]


EDGES = [dict(concurrency=float("nan")), dict(concurrency=float("inf")), dict(concurrency=0.5), dict(concurrency=1e9),
         dict(arrival_rate=0.0), dict(arrival_rate=float("nan")), dict(concurrency=np.array([np.nan, 3.0, np.inf])),
         dict(concurrency=64.0, engine_overrides={"step_overhead_us": 0.0, "chunked_prefill": False}),
         dict(concurrency=64.0, isl=20000, engine="vllm")]


def assert_same_records(fast, slow) -> None:
    assert list(fast) == list(slow)
    for name in fast:
        np.testing.assert_array_equal(np.asarray(fast[name]), np.asarray(slow[name]), err_msg=name)


@pytest.mark.parametrize("model, arch, kwargs", CASES)
def test_records_are_those_of_the_plain_bisection(monkeypatch, model, arch, kwargs):
    fast = serve_record(model, arch, **kwargs)
    monkeypatch.setattr(steady, "solve", bisection)
    assert_same_records(fast, serve_record(model, arch, **kwargs))


@pytest.mark.parametrize("kwargs", EDGES)
def test_edge_loads_are_those_of_the_plain_bisection(monkeypatch, kwargs):
    """No traffic, NaN and infinite loads, no per-step cost, prompts longer than the token budget."""
    with np.errstate(all="ignore"):
        fast = serve_record("llama-3-8b", "h100-sxm", **kwargs)
        monkeypatch.setattr(steady, "solve", bisection)
        assert_same_records(fast, serve_record("llama-3-8b", "h100-sxm", **kwargs))


def test_a_point_whose_floats_raise_takes_numpys_answer(monkeypatch):
    """Where the Python-float solve raises (x / 0, overflow), the point is solved in numpy values."""
    kwargs = dict(concurrency=64.0, isl=1024, osl=1024)
    md1_wait = steady.md1_wait

    def raising(busy):
        if type(busy) is float:
            raise ZeroDivisionError("float division by zero")
        return md1_wait(busy)

    monkeypatch.setattr(steady, "md1_wait", raising)
    fast = serve_record("llama-3-8b", "h100-sxm", **kwargs)
    monkeypatch.setattr(steady, "solve", bisection)
    assert_same_records(fast, serve_record("llama-3-8b", "h100-sxm", **kwargs))


def test_the_cases_cover_saturated_unstable_and_throttled_points():
    records = [serve_record(model, arch, **kwargs) for model, arch, kwargs in CASES]
    assert any(np.any(np.asarray(r["requests_decoding"]) >= np.asarray(r["max_requests"]) * (1 - 1e-5))
               for r in records)
    assert any(not np.all(r["stable"]) for r in records) and any(np.any(r["stable"]) for r in records)
    assert any(np.any(np.asarray(r["clock"]) < 1) for r in records)


def test_a_throttled_system_with_tensor_parallel_gpus_solves_as_the_bisection(monkeypatch):
    arch = with_parallelism(load_arch("h200"), 8)
    kwargs = dict(concurrency=np.array([1.0, 64.0, 1024.0]), isl=2048, osl=512, weights="fp8-e4m3")
    fast = serve_record("llama-3-70b", arch, **kwargs)
    monkeypatch.setattr(steady, "solve", bisection)
    assert_same_records(fast, serve_record("llama-3-70b", arch, **kwargs))


def test_a_frontiers_step_bands_are_each_steps_own():
    """Over a concurrency array the band is timed once per distinct step (the saturated points share
    one): each point's band equals its step's band timed on its own."""
    c = np.linspace(1, 512, 60)
    r = serve_record("llama-3-8b", "h100-sxm", concurrency=c, isl=1024, osl=1024, mode="achieved")
    assert len(np.unique(r["requests_decoding"])) < len(c)
    direct = serve_record("llama-3-8b", load_arch("h100-sxm"), concurrency=c, isl=1024, osl=1024,
                          mode="achieved")  # an arch object: no cached design, every point's band timed
    np.testing.assert_array_equal(r["tpot_band"], direct["tpot_band"])
