"""Processing elements: peaks from rows x cols x rate x count x clock, cost from hwdse.formats.mac_cost."""

import numpy as np
import pytest
import xarray as xr
import yaml

from hwdse._catalog import catalog_dir
from hwdse.formats import mac_cost
from hwdse.hardware.pe import PEArray, load_pe, pe_names
from hwdse.perf import evaluate


@pytest.mark.parametrize("name", pe_names())
def test_every_pe_entry_loads_with_positive_area_and_energy(name):
    pe = load_pe(name)
    assert pe.area_mm2 > 0 and pe.array_area_mm2 > 0
    for cls in pe.rate:
        assert pe.mac_energy_pJ(cls) > 0 and pe.macs_per_cycle(cls) == pe.rows * pe.cols * pe.rate[cls]


def test_peaks_derive_from_pe_type_count_and_clock():
    groq = PEArray(type="groq-mxm", count=4, clock_GHz=0.9)
    # 4 x 320 x 320 MACs x 2 x 0.9 GHz = 737 TOPS vs the published 750 TOPS INT8 / 188 TFLOPS FP16 (2 %)
    assert groq.peak_ops_per_s("int8") == pytest.approx(4 * 320 * 320 * 2 * 0.9e9)
    assert groq.peak_ops_per_s("int8") == pytest.approx(750e12, rel=0.02)
    assert groq.peak_ops_per_s("fp16") == pytest.approx(188e12, rel=0.02)
    a100 = PEArray(type="a100-tensor-core", count=108 * 4, clock_GHz=1.41)
    assert a100.peak_ops_per_s("bf16") == pytest.approx(312e12, rel=0.001)  # datasheet 312 TFLOPS
    doubled = PEArray(type="a100-tensor-core", count=216 * 4, clock_GHz=1.41)
    assert doubled.area_mm2 == pytest.approx(2 * a100.area_mm2)


def test_energy_and_area_come_from_the_format_cost_model_scaled_to_the_node():
    pe = load_pe("mx-tensor-core")
    scale = (pe.node_nm / 45) * (pe.voltage_V / 0.9) ** 2
    assert pe.mac_energy_pJ("fp4") == pytest.approx(mac_cost("mxfp4").energy_pJ * scale)
    assert pe.mac_energy_pJ("fp4") < pe.mac_energy_pJ("fp8") < pe.mac_energy_pJ("bf16")
    cells = pe.rows * pe.cols
    modes = [cells * r * mac_cost(pe.cost_formats[c]).area_um2 for c, r in pe.rate.items()]
    assert pe.array_area_mm2 == pytest.approx(max(modes) * (pe.node_nm / 45) ** 2 * 1e-6)


def test_upcast_runs_in_the_next_wider_class_at_its_rate_and_cost():
    pe = load_pe("a100-tensor-core")  # no fp8 datapath
    assert pe.native_class("fp8") == "fp16"
    assert pe.macs_per_cycle("fp8") == pe.macs_per_cycle("fp16")
    assert pe.mac_energy_pJ("fp8") == pe.mac_energy_pJ("fp16")


def _pe_variant(tmp_path, base, unsupported):
    data = yaml.safe_load((catalog_dir("arch") / "pe" / f"{base}.yaml").read_text())
    data.update(name=f"{base}-{unsupported}", unsupported=unsupported)
    path = tmp_path / f"{base}-{unsupported}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("unsupported", ["upcast", "infeasible"])
def test_a_pe_without_the_format_upcasts_or_is_infeasible_as_configured(tmp_path, unsupported):
    over = {"pe.type": _pe_variant(tmp_path, "a100-tensor-core", unsupported)}  # no fp8 datapath
    run = dict(batch=8, prompt=256, gen=8)
    fp16 = evaluate("llama-2-7b", "decode-accel", overrides=over, **run)
    fp8 = evaluate("llama-2-7b", "decode-accel", overrides=over, weights="fp8-e4m3", activations="fp8-e4m3",
                   kv="fp8-e4m3", **run)
    assert np.isfinite(float(fp16.ttft_s))
    if unsupported == "upcast":  # fp8 runs on the fp16 path: same compute time, half the bytes
        assert np.isfinite(float(fp8.ttft_s)) and float(fp8.prefill_flops) == float(fp16.prefill_flops)
        assert float(fp8.ttft_s) == pytest.approx(float(fp16.ttft_s), rel=0.05)
    else:
        assert float(fp8.ttft_s) == np.inf and not np.isfinite(float(fp8.tpot_s))
    flint = load_pe("flint-pe")  # no float path at all: fp16 is infeasible, int2 upcasts nowhere
    assert flint.native_class("fp16") is None and flint.native_class("int4") == "int4"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_pe_fields_sweep():
    count = xr.DataArray([64, 128, 256], dims="pe_count")
    ds = evaluate("llama-2-7b", "decode-accel", overrides={"pe.count": count}, batch=64, prompt=512, gen=32)
    assert ds.ttft_s.dims == ("pe_count",) and bool((ds.ttft_s.diff("pe_count") < 0).all())
    assert bool((ds.area_mm2.diff("pe_count") > 0).all())
