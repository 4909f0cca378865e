"""Host servers on one basis: a multi-GPU system's optional ``host_W`` per host of ``host_devices`` devices adds
exactly hosts x host_W to static power, power budget and mean serving power, and nothing else."""

import math

import numpy as np
import pytest

import hwdse
from hwdse import evaluate
from hwdse.hardware import with_overrides
from hwdse.hardware.systems.multi import with_parallelism
from hwdse.serving import serve

HOST_W = 590.0  # the two-socket serving node's non-GPU draw (validation/energy_sources.md)
SERVE = dict(concurrency=16, weights="fp16", isl=2048, osl=256)


def test_by_default_a_system_counts_its_devices_power_only() -> None:
    x2 = hwdse.load_arch("dgx-a100-x2")
    assert x2.host_W == 0 and x2.host_devices == 8
    assert x2.static_power_W == pytest.approx(16 * x2.device.static_power_W)
    assert x2.power_W == pytest.approx(16 * x2.device.power_W)


def test_hosts_are_devices_over_host_devices_rounded_up() -> None:
    x2 = hwdse.load_arch("dgx-a100-x2")
    assert x2.hosts == 2
    assert with_overrides(x2, {"tp": 12}).hosts == 2
    assert with_overrides(x2, {"host_devices": 4}).hosts == 4
    tps = with_overrides(x2, {"tp": np.array([1.0, 8.0, 9.0, 24.0])})
    np.testing.assert_array_equal(tps.hosts, [1, 1, 2, 3])


def test_host_power_adds_hosts_x_host_W_to_static_power_and_to_mean_serving_power() -> None:
    x2 = hwdse.load_arch("dgx-a100-x2")
    hosted = with_overrides(x2, {"host_W": HOST_W})
    assert hosted.static_power_W - x2.static_power_W == pytest.approx(2 * HOST_W)
    assert hosted.power_W - x2.power_W == pytest.approx(2 * HOST_W)
    bare, full = (serve("llama-2-70b", a, **SERVE) for a in (x2, hosted))
    assert float(full.avg_power_w - bare.avg_power_w) == pytest.approx(2 * HOST_W)
    assert float(full.static_power_w - bare.static_power_w) == pytest.approx(2 * HOST_W)
    assert float(full.throughput_tok_s) == float(bare.throughput_tok_s)


def test_a_gpu_pim_system_takes_host_power_through_its_xpu() -> None:
    system = hwdse.load_arch("dgx-a100-attacc")
    hosted = with_overrides(system, {"xpu.host_W": HOST_W})  # 8 GPUs: one DGX host
    assert hosted.static_power_W - system.static_power_W == pytest.approx(HOST_W)
    bare, full = (serve("llama-2-70b", a, **SERVE) for a in (system, hosted))
    assert float(full.avg_power_w - bare.avg_power_w) == pytest.approx(HOST_W)


def test_host_power_leaves_a_throttled_gpu_its_headroom() -> None:
    """B200 FP8 prefill runs power-bound below its rated clock; the host's draw joins both the static power and
    the budget, so the clock, the times and the devices' energy stay as they were."""
    scen = dict(batch=256, prompt=2048, gen=64, weights="fp8-e4m3", activations="fp8-e4m3", kv="fp8-e4m3")
    one = with_parallelism(hwdse.load_arch("b200"), tp=1)
    bare, full = (evaluate("llama-3-70b", a, **scen) for a in (one, with_overrides(one, {"host_W": HOST_W})))
    assert float(bare.prefill_clock) < 1
    assert float(full.prefill_clock) == float(bare.prefill_clock)
    assert float(full.ttft_s) == float(bare.ttft_s)
    assert float(full.avg_power_w - bare.avg_power_w) == pytest.approx(HOST_W)
    assert math.isclose(float(full.power_w - bare.power_w), HOST_W)
