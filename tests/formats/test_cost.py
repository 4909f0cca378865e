"""MAC cost model: anchors reproduce Horowitz ISSCC 2014 (45 nm) and ratios stay within published bands."""

import pytest

from hwdse.formats import MacCost, get, mac_cost, names
from hwdse.formats._cost import VENDOR_THROUGHPUT_VS_BF16, Part, fp_mul, int_add, int_mul
from hwdse.formats._spec import FloatElement

FP16, FP32 = FloatElement(exp_bits=5, man_bits=10), FloatElement(exp_bits=8, man_bits=23)


# Horowitz, ISSCC 2014, 45 nm (formats.md 9.3): (um^2, pJ)
@pytest.mark.parametrize("part, anchor", [
    (int_mul(8), (282, 0.2)), (int_mul(32), (3495, 3.1)), (fp_mul(FP16), (1640, 1.1)), (fp_mul(FP32), (7700, 3.7)),
    (int_add(8), (36, 0.03)), (int_add(32), (137, 0.1)),
    (int_add(16), (67, 0.05)),   # not an anchor of the fit: within 10%
])
def test_primitive_fits_hit_horowitz_anchors(part, anchor):
    assert (part.area_um2, part.energy_pJ) == pytest.approx(anchor, rel=0.1 if anchor[0] == 67 else 1e-9)


@pytest.mark.parametrize("name", names())
def test_every_catalog_format_has_a_positive_cost(name):
    c = mac_cost(name)
    assert isinstance(c, MacCost) and c.node_nm == 45 and c.compute == get(name).compute
    assert c.area_um2 > 0 and c.energy_pJ > 0
    total = c.multiplier + c.align + c.add + c.per_dot + c.decoder
    assert (c.area_um2, c.energy_pJ) == pytest.approx((total.area_um2, total.energy_pJ))


def test_ratios_match_vendor_and_published_bands():
    e = {n: mac_cost(n).energy_pJ for n in ("bf16", "fp8-e4m3", "fp4-e2m1", "int8", "int4", "fp32")}
    assert 0.4 < e["fp8-e4m3"] / e["bf16"] < 0.6          # H100: FP8 = 2x BF16 throughput at equal power
    assert 0.4 < e["fp4-e2m1"] / e["fp8-e4m3"] < 0.6      # B200: FP4 = 2x FP8
    assert 1.5 < e["fp8-e4m3"] / e["int8"] < 2.8          # van Baalen et al. 2023: FP8 50-180% less efficient
    assert e["int4"] < e["int8"] < e["bf16"] < e["fp32"]
    vendor = VENDOR_THROUGHPUT_VS_BF16
    assert vendor["fp8"] == 2 and vendor["fp4"] == 2 * vendor["fp8"]


def test_cost_grows_with_mantissa_and_exponent():
    def fp(e, m):
        spec = {"name": "x", "kind": "minifloat", "source": "test", "exp_bits": e, "man_bits": m, "specials": "none"}
        return mac_cost(get(spec))
    assert fp(4, 1).multiplier.area_um2 < fp(4, 3).multiplier.area_um2 < fp(4, 5).multiplier.area_um2
    assert fp(2, 3).align.energy_pJ < fp(4, 3).align.energy_pJ


def test_block_formats_add_scale_handling_and_flint_a_decoder():
    assert mac_cost("mxfp8-e4m3").per_dot.energy_pJ > mac_cost("fp8-e4m3").per_dot.energy_pJ
    assert mac_cost("mxfp8-e4m3").energy_pJ < 1.01 * mac_cost("fp8-e4m3").energy_pJ   # the scale is amortised
    assert mac_cost("nvfp4").per_dot.energy_pJ > mac_cost("mxfp4").per_dot.energy_pJ  # E4M3 multiply, k = 16
    assert mac_cost("mxint8").align == Part(0, 0) and mac_cost("mxint8").energy_pJ < mac_cost("mxfp8-e4m3").energy_pJ
    assert mac_cost("flint4").decoder.energy_pJ > 0 and mac_cost("int4").decoder == Part(0, 0)
    assert mac_cost("int4").energy_pJ < mac_cost("flint4").energy_pJ < mac_cost("int8").energy_pJ


def test_dot_length_amortises_the_fp32_accumulator():
    assert mac_cost("int8", dot_length=4).energy_pJ > mac_cost("int8", dot_length=64).energy_pJ
