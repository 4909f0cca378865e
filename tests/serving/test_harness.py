"""A benchmark client's terms in TTFT: none by default, each where its definition puts it."""

import numpy as np
import pytest
import xarray as xr

from hwdse.serving import SERVER, Harness, serve

RUN = dict(isl=1024, osl=256, engine="vllm", mode="achieved")


def _serve(harness: Harness, **traffic) -> xr.Dataset:
    return serve("llama-3-8b", "h100-sxm", harness=harness, **traffic, **RUN)


def test_the_default_is_ttft_as_the_server_sees_it():
    c = xr.DataArray([1.0, 16.0], dims="c")
    assert _serve(SERVER, concurrency=c).identical(_serve(Harness(), concurrency=c))


def test_request_path_latency_adds_to_ttft_and_holds_the_clients_slot():
    """One client: TTFT grows by the latency (within the 1 % the engine, idle a little longer, gains),
    and the client's cycle with it (Little's law: rate = 1 / (TTFT + D TPOT)); open loop: TTFT grows
    by the latency exactly, throughput is the offered rate."""
    server, slow = _serve(SERVER, concurrency=1.0), _serve(Harness(latency_s=0.05), concurrency=1.0)
    assert float(slow.ttft_s - server.ttft_s) == pytest.approx(0.05, rel=0.01)
    assert float(slow.tpot_s) == pytest.approx(float(server.tpot_s), rel=0.01)
    assert float(slow.request_rate) == pytest.approx(1 / float(slow.ttft_s + 255 * slow.tpot_s), rel=1e-6)
    server, slow = _serve(SERVER, arrival_rate=2.0), _serve(Harness(latency_s=0.05), arrival_rate=2.0)
    assert float(slow.ttft_s - server.ttft_s) == pytest.approx(0.05, rel=1e-6)
    assert float(slow.throughput_tok_s) == float(server.throughput_tok_s) == 2.0 * 256


def test_client_wait_vanishes_for_one_client_and_start_wave_grows_with_the_clients():
    c = xr.DataArray([1.0, 4.0, 32.0], dims="c")
    server = _serve(SERVER, concurrency=c).ttft_s.values
    wait = _serve(Harness(client_wait=0.5), concurrency=c).ttft_s.values
    wave = _serve(Harness(start_wave=0.2), concurrency=c).ttft_s.values
    assert wait[0] == pytest.approx(server[0], rel=1e-9) and np.all(wait[1:] > server[1:])
    assert wave[0] == pytest.approx(server[0], rel=1e-9) and np.all(np.diff(wave - server) > 0)
