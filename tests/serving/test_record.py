"""The light path of serving: serve_record holds the numbers serve's Dataset holds, and the caches of a
design's step table keep different overrides apart."""

from __future__ import annotations

import numpy as np
import pytest

from hwdse.hardware import load_arch, with_overrides
from hwdse.serving import serve, serve_record
from hwdse.serving.table import extent, grid

TRAFFIC = dict(isl=1024, osl=1024)


def assert_same(record, ds) -> None:
    assert list(record) == list(ds.data_vars)
    for name in record:
        np.testing.assert_array_equal(np.broadcast_to(record[name], ds[name].shape), ds[name].values, err_msg=name)
        assert record.units(name) == ds[name].attrs["units"]
    assert dict(record.attrs) == ds.attrs


@pytest.mark.parametrize("mode", ["roofline", "achieved"])
def test_closed_loop_record_equals_dataset(mode):
    kwargs = dict(concurrency=64, mode=mode, **TRAFFIC)
    assert_same(serve_record("llama-3-8b", "h100-sxm", **kwargs), serve("llama-3-8b", "h100-sxm", **kwargs))


def test_open_loop_and_frontier_records_equal_datasets():
    open_loop = dict(arrival_rate=5.0, isl=1024, osl=256)
    assert_same(serve_record("llama-3-8b", "h100-sxm", **open_loop), serve("llama-3-8b", "h100-sxm", **open_loop))
    frontier = np.linspace(1, 512, 40)
    assert_same(serve_record("llama-3-8b", "h100-sxm", concurrency=frontier, **TRAFFIC),
                serve("llama-3-8b", "h100-sxm", concurrency=frontier, **TRAFFIC))


def test_cached_designs_do_not_leak():
    """Two bandwidths one after the other (each design's table built once, then from the cache) give their
    own results, the same as an arch spec passed in (which no cache keeps)."""
    def tpot(bw):
        return float(serve_record("llama-3-8b", "h100-sxm", concurrency=64, overrides={"memory.bandwidth_GBps": bw},
                                  **TRAFFIC)["tpot_s"])

    slow, fast = tpot(1500.0), tpot(4000.0)
    assert fast < slow
    assert (tpot(1500.0), tpot(4000.0), tpot(1500.0)) == (slow, fast, slow)
    uncached = with_overrides(load_arch("h100-sxm"), {"memory.bandwidth_GBps": 1500.0})
    assert float(serve_record("llama-3-8b", uncached, concurrency=64, **TRAFFIC)["tpot_s"]) == slow


def test_engine_overrides_bypass_the_cache():
    base = serve_record("llama-3-8b", "h100-sxm", concurrency=64, **TRAFFIC)
    slower = serve_record("llama-3-8b", "h100-sxm", concurrency=64, engine_overrides={"step_overhead_us": 500.0},
                          **TRAFFIC)
    assert float(slower["tpot_s"]) > float(base["tpot_s"])


@pytest.mark.parametrize("hi", [1.0, 16.0, 17.0, 64.0, 100.0, 512.0, 513.0, np.array([3.0, np.inf, 300.0])])
def test_a_table_to_its_extent_is_the_table_to_hi(hi):
    finite = np.asarray(hi, dtype=float)[np.isfinite(hi)]
    np.testing.assert_array_equal(grid(extent(hi)), grid(float(finite.max())))


def test_a_repeated_point_takes_its_step_band_from_the_cache_unchanged():
    """The solved step's band of a cached design (a catalog name) equals the band of the same arch passed
    as an object (no cache), on the first call and on a repeat."""
    kwargs = dict(concurrency=37, mode="achieved", **TRAFFIC)
    direct = serve_record("llama-3-8b", load_arch("h100-sxm"), **kwargs)["tpot_band"]
    assert np.isfinite(direct)
    for _ in range(2):
        assert serve_record("llama-3-8b", "h100-sxm", **kwargs)["tpot_band"] == direct
