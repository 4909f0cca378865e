"""MAC cost model: anchors reproduce Horowitz ISSCC 2014 (45 nm) and ratios stay within published bands."""

import pytest

from hwdse.formats import MacCost, get, mac_cost, names
from hwdse.formats._cost import VENDOR_THROUGHPUT_VS_BF16, _fp_mul, _int_add, _int_mul
from hwdse.formats._spec import FloatElement


@pytest.mark.parametrize("value, anchor", [
    (_int_mul(8), (282, 0.2)), (_int_mul(32), (3495, 3.1)),
    (_fp_mul(FloatElement(exp_bits=5, man_bits=10)), (1640, 1.1)), (_fp_mul(FloatElement(exp_bits=8, man_bits=23)), (7700, 3.7)),
    (_int_add(8), (36, 0.03)), (_int_add(32), (137, 0.1)),
])
def test_primitive_fits_hit_horowitz_anchors(value, anchor):
    assert value == pytest.approx(anchor, rel=1e-9)


def test_intermediate_primitives_are_close_to_horowitz():
    # 16-bit int add (Horowitz: 67 um^2, 0.05 pJ) is not an anchor of the fit
    assert _int_add(16) == pytest.approx((67, 0.05), rel=0.1)


@pytest.mark.parametrize("name", names())
def test_every_catalog_format_has_a_positive_cost(name):
    c = mac_cost(name)
    assert isinstance(c, MacCost) and c.node_nm == 45 and c.compute == get(name).compute
    assert c.area_um2 > 0 and c.energy_pJ > 0
    parts = (c.multiplier, c.align, c.add, c.per_dot, c.decoder)
    assert c.energy_pJ == pytest.approx(sum(p[1] for p in parts)) and c.area_um2 == pytest.approx(sum(p[0] for p in parts))


def test_ratios_match_vendor_and_published_bands():
    e = {n: mac_cost(n).energy_pJ for n in ("bf16", "fp8-e4m3", "fp4-e2m1", "int8", "int4", "fp32")}
    assert 0.4 < e["fp8-e4m3"] / e["bf16"] < 0.6          # H100: FP8 = 2x BF16 throughput at equal power
    assert 0.4 < e["fp4-e2m1"] / e["fp8-e4m3"] < 0.6      # B200: FP4 = 2x FP8
    assert 1.5 < e["fp8-e4m3"] / e["int8"] < 2.8          # van Baalen et al. 2023: FP8 50-180% less efficient
    assert e["int4"] < e["int8"] < e["bf16"] < e["fp32"]
    assert VENDOR_THROUGHPUT_VS_BF16["fp8"] == 2 and VENDOR_THROUGHPUT_VS_BF16["fp4"] == 2 * VENDOR_THROUGHPUT_VS_BF16["fp8"]


def test_cost_grows_with_mantissa_and_exponent():
    def fp(e, m):
        return mac_cost(get({"name": "x", "kind": "minifloat", "source": "test", "exp_bits": e, "man_bits": m, "specials": "none"}))
    assert fp(4, 1).multiplier[0] < fp(4, 3).multiplier[0] < fp(4, 5).multiplier[0]
    assert fp(2, 3).align[1] < fp(4, 3).align[1]


def test_block_formats_add_scale_handling_and_flint_a_decoder():
    assert mac_cost("mxfp8-e4m3").per_dot[1] > mac_cost("fp8-e4m3").per_dot[1]
    assert mac_cost("mxfp8-e4m3").energy_pJ < 1.01 * mac_cost("fp8-e4m3").energy_pJ   # the scale is amortised
    assert mac_cost("nvfp4").per_dot[1] > mac_cost("mxfp4").per_dot[1]                # E4M3 multiply, k = 16
    assert mac_cost("mxint8").align == (0.0, 0.0) and mac_cost("mxint8").energy_pJ < mac_cost("mxfp8-e4m3").energy_pJ
    assert mac_cost("flint4").decoder[1] > 0 and mac_cost("int4").decoder == (0.0, 0.0)
    assert mac_cost("int4").energy_pJ < mac_cost("flint4").energy_pJ < mac_cost("int8").energy_pJ


def test_dot_length_amortises_the_fp32_accumulator():
    assert mac_cost("int8", dot_length=4).energy_pJ > mac_cost("int8", dot_length=64).energy_pJ
