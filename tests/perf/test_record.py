"""The light path: evaluate_record holds the numbers evaluate's Dataset holds, and the caches of scalar
design points keep different overrides apart."""

from __future__ import annotations

import numpy as np
import pytest

import hwdse
from hwdse.hardware import load_arch, with_overrides
from hwdse.perf import Record, evaluate_record

POINT = dict(batch=8, prompt=2048, gen=256)


def assert_same(record: Record, ds) -> None:
    assert list(record) == list(ds.data_vars)
    for name in record:
        np.testing.assert_array_equal(np.asarray(record[name]), ds[name].values, err_msg=name)
        assert record.units(name) == ds[name].attrs["units"]
    assert dict(record.attrs) == ds.attrs


@pytest.mark.parametrize("mode", ["roofline", "achieved"])
@pytest.mark.parametrize("model, arch", [("llama-2-7b", "a6000"), ("llama-3-8b", "h100-sxm")])
def test_record_equals_dataset(model, arch, mode):
    assert_same(evaluate_record(model, arch, mode=mode, **POINT), hwdse.evaluate(model, arch, mode=mode, **POINT))


def test_record_of_arrays_equals_dataset():
    batch = np.array([1.0, 8.0, 64.0])
    assert_same(evaluate_record("llama-2-7b", "a6000", batch=batch, prompt=512, gen=128),
                hwdse.evaluate("llama-2-7b", "a6000", batch=batch, prompt=512, gen=128))


def test_named_scenario_and_overrides_equal_dataset():
    kwargs = dict(mode="achieved", overrides={"memory.bandwidth_GBps": 1200.0}, batch=4)
    assert_same(evaluate_record("llama-2-7b", "a6000", "chat", **kwargs),
                hwdse.evaluate("llama-2-7b", "a6000", "chat", **kwargs))


def test_cached_overrides_do_not_leak():
    """Two bandwidths one after the other (each resolved and scheduled once, then from the caches) give their
    own results, the same as an arch spec passed in (which no cache keeps)."""
    def tpot(bw):
        return float(evaluate_record("llama-2-7b", "a6000", overrides={"memory.bandwidth_GBps": bw}, **POINT)["tpot_s"])

    slow, fast = tpot(500.0), tpot(1500.0)
    assert fast < slow
    assert (tpot(500.0), tpot(1500.0), tpot(500.0)) == (slow, fast, slow)
    uncached = with_overrides(load_arch("a6000"), {"memory.bandwidth_GBps": 500.0})
    assert float(evaluate_record("llama-2-7b", uncached, **POINT)["tpot_s"]) == slow


def test_equal_override_values_of_other_types_stay_apart():
    """1 and 1.0 hash alike; the cache keys carry the type, so an int override is not served a float's entry
    (here both are valid and give the same numbers)."""
    a = evaluate_record("llama-2-7b", "a6000", overrides={"memory.bandwidth_GBps": 800}, **POINT)
    b = evaluate_record("llama-2-7b", "a6000", overrides={"memory.bandwidth_GBps": 800.0}, **POINT)
    assert float(a["tpot_s"]) == float(b["tpot_s"])
    assert a.attrs["overrides"] == '{"memory.bandwidth_GBps": 800}'
    assert b.attrs["overrides"] == '{"memory.bandwidth_GBps": 800.0}'
