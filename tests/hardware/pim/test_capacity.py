"""GPU + PIM capacity per placement: each memory holds what is placed in it (hwdse.hardware.pim.system).

Expected bytes are worked out here from the model configs (parameter counts by hand, the KV cache as
batch x positions x layers x 2 x kv_dim x bytes), not read back from the footprint under test."""

import math
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from hwdse.hardware import load_arch, with_overrides
from hwdse.perf import Footprint, evaluate, evaluate_record, fit_reason
from hwdse.serving import kv_limit, load_engine
from hwdse.workload import Scenario, load_model

GB = 1e9
FP16 = dict(weights="fp16", activations="fp16", kv="fp16")
QWEN = dict(prompt=4096, gen=128, **FP16)  # the AttAcc node's decode question at a long context


def _kv_bytes(model: str, batch, context: int) -> float:
    """Full-attention KV cache: batch x context x layers x K and V of every KV head, in fp16."""
    m = load_model(model)
    return batch * context * m.num_layers * 2 * m.num_kv_heads * m.head_dim * 2


def _ffn_bytes(model: str, width: int, layers: int) -> float:
    """One gated FFN (gate, up, down; no biases) of ``width`` on ``layers`` layers, in fp16."""
    return layers * 3 * load_model(model).hidden_size * width * 2


def _routed_bytes(model: str) -> float:
    m = load_model(model)
    return _ffn_bytes(model, m.expert_size, m.num_layers) * m.num_experts  # every Qwen3 layer is MoE


def test_qwen3_experts_in_pim_overflow_pim_next_to_the_kv_cache():
    """Batch 700 x 4224 tokens of Qwen3-235B-A22B: ~569 GB of KV cache and ~454 GB of routed experts do
    not fit the AttAcc devices' 687 GB, though the pooled GPU + PIM memory would hold them."""
    arch = load_arch("dgx-a100-attacc")
    kv, routed = _kv_bytes("qwen3-235b-a22b", 700, 4224), _routed_bytes("qwen3-235b-a22b")
    pim = arch.pim.capacity_bytes
    assert kv < pim < kv + routed
    ds = evaluate("qwen3-235b-a22b", arch, batch=700, overrides={"experts": "pim"}, **QWEN)
    assert not bool(ds.fits) and float(ds.memory_bytes) < float(ds.capacity_bytes)
    assert fit_reason(ds) == (f"PIM holds KV cache {kv / GB:.1f} GB + routed experts {routed / GB:.1f} GB = "
                              f"{(kv + routed) / GB:.1f} GB > PIM capacity {pim / GB:.1f} GB")
    assert float(ds.kv_cache_bytes) == pytest.approx(kv, rel=1e-12)


@pytest.mark.parametrize("fc", ["xpu", "split"])
def test_qwen3_experts_on_the_gpus_fit_by_the_numbers(fc):
    """The same point with the routed experts on the GPUs: the KV cache alone in PIM; the GPUs hold all the
    weights and the prefill activations (fc: xpu), or (fc: split, the catalog entry) the weights less the
    experts, which take the room both memories leave. It fits: 635 GB of the GPUs' 687 with fc: xpu."""
    arch = with_overrides(load_arch("dgx-a100-attacc"), {"experts": "xpu", "fc": fc})
    ds = evaluate("qwen3-235b-a22b", arch, batch=700, **QWEN)
    kv, routed = _kv_bytes("qwen3-235b-a22b", 700, 4224), _routed_bytes("qwen3-235b-a22b")
    weights, act = load_model("qwen3-235b-a22b").num_params * 2, float(ds.activation_bytes)
    pim, gpus = arch.pim.capacity_bytes, arch.xpu.capacity_bytes * 8
    if fc == "xpu":
        expected = kv <= pim and weights + act <= gpus
    else:
        expected = kv <= pim and weights - routed + act <= gpus and kv + weights + act <= pim + gpus
    assert bool(ds.fits) == expected and expected and fit_reason(ds) == ""


def test_fc_pim_places_every_fc_weight_in_pim():
    """fc: pim runs every FC GEMM in PIM, so PIM holds the FFN and the projection weights (attention,
    lm_head) beside the KV cache: llama-2-70b at 433 x 4224 tokens fits with the FC layers on the GPUs only."""
    kv = _kv_bytes("llama-2-70b", 433, 4224)
    m = load_model("llama-2-70b")
    ffn = _ffn_bytes("llama-2-70b", m.intermediate_size, m.num_layers)
    h = m.hidden_size
    projections = (m.num_layers * (2 * h * h + 2 * h * m.num_kv_heads * m.head_dim) + m.vocab_size * h) * 2
    arch = load_arch("dgx-a100-attacc")
    pim = arch.pim.capacity_bytes
    assert kv < pim < kv + ffn + projections
    on, off = (evaluate("llama-2-70b", arch, batch=433, overrides={"fc": fc}, **QWEN) for fc in ("pim", "xpu"))
    assert bool(off.fits) and not bool(on.fits)
    assert fit_reason(on) == (f"PIM holds KV cache {kv / GB:.1f} GB + FFN weights {ffn / GB:.1f} GB + projection "
                              f"weights {projections / GB:.1f} GB = {(kv + ffn + projections) / GB:.1f} GB > PIM "
                              f"capacity {pim / GB:.1f} GB")
    assert on.attrs["fit_rule"].startswith("PIM holds KV cache + routed experts + FFN weights + projection weights")


def _system(**placement) -> object:
    return with_overrides(load_arch("dgx-a100-attacc"), {"overlap": "none", **placement})


def test_threshold_and_faster_keep_fc_weights_in_both_memories():
    """Either unit may run an FC GEMM: PIM and the xPU each hold the FC weights; the rest (embeddings) stays
    on the xPU. Hand-made footprints put each check just over its capacity."""
    base = Footprint(weights_bytes=300e9, kv_cache_bytes=400e9, activation_bytes=100e9, ffn_weights_bytes=200e9,
                     projection_weights_bytes=80e9)
    for fc in ("threshold", "faster"):
        arch = _system(fc=fc)
        pim, gpus = arch.pim.capacity_bytes, arch.xpu.capacity_bytes * 8
        assert bool(arch.fits(base))  # PIM 400 + 280, xPU 300 + 100
        over_pim = replace(base, kv_cache_bytes=pim - 280e9 + 1e9)
        assert not bool(arch.fits(over_pim)) and arch.fit_reason(over_pim) == (
            f"PIM holds KV cache {(pim - 279e9) / GB:.1f} GB + FFN weights 200.0 GB + projection weights 80.0 GB = "
            f"{(pim + 1e9) / GB:.1f} GB > PIM capacity {pim / GB:.1f} GB")
        over_gpus = replace(base, activation_bytes=gpus - 300e9 + 1e9)
        assert not bool(arch.fits(over_gpus)) and arch.fit_reason(over_gpus).startswith(
            f"xPU holds weights 300.0 GB + activations {(gpus - 299e9) / GB:.1f} GB")
        assert "FFN weights + projection weights in both memories" in arch.fit_rule


def test_split_weights_take_the_room_both_memories_leave():
    """fc: split divides the FFN weights between the memories: PIM holds the KV cache, the xPU the other
    weights and activations, and the FFN weights must fit in what both leave together."""
    arch = _system(fc="split")
    pim, gpus = arch.pim.capacity_bytes, arch.xpu.capacity_bytes * 8
    mem = Footprint(weights_bytes=300e9, kv_cache_bytes=600e9, activation_bytes=100e9, ffn_weights_bytes=250e9)
    assert bool(arch.fits(mem))
    most = pim + gpus - 600e9 - 50e9 - 250e9  # the activations the room both leave holds
    assert most < gpus - 50e9  # the xPU alone would hold more: the pooled check binds
    assert bool(arch.fits(replace(mem, activation_bytes=most - 1e6)))
    tight = replace(mem, activation_bytes=most + 1e9)
    assert not bool(arch.fits(tight))
    assert arch.fit_reason(tight) == (
        f"PIM + xPU holds KV cache 600.0 GB + weights 50.0 GB + activations {(most + 1e9) / GB:.1f} GB + FFN weights "
        f"250.0 GB = {(pim + gpus + 1e9) / GB:.1f} GB > PIM + xPU capacity {(pim + gpus) / GB:.1f} GB")


def test_pooled_and_shared_rules_check_the_sum():
    """capacity_rule: pooled (the AttAcc simulator's convention) and attach: shared check weights + KV +
    activations against one capacity, whatever the placement: the Qwen3 point that overflows PIM fits pooled."""
    batch = xr.DataArray([1, 8, 64, 700, 1400], dims="batch")
    for model, arch in (("qwen3-235b-a22b", _system(experts="pim", fc="xpu", capacity_rule="pooled")),
                        ("llama-2-7b", load_arch("a100-hbm3-pim"))):
        ds = evaluate(model, arch, batch=batch, **QWEN)
        assert (ds.fits == (ds.memory_bytes <= ds.capacity_bytes)).all() and ds.fits.any() and not ds.fits.all()
        assert arch.fit_rule == "footprint <= pooled capacity"
    pooled = evaluate("qwen3-235b-a22b", _system(experts="pim", capacity_rule="pooled"), batch=700, **QWEN)
    assert bool(pooled.fits) and fit_reason(pooled) == ""


def test_a_swept_batch_crosses_where_the_arithmetic_says():
    """Experts in PIM: the batch fits while its KV cache and the routed experts fit the AttAcc devices
    (the GPUs hold the rest with room to spare); every batch 1-1024, xarray and plain numpy alike."""
    arch = _system(experts="pim", fc="xpu")
    routed, pim = _routed_bytes("qwen3-235b-a22b"), arch.pim.capacity_bytes
    batch = np.arange(1, 1025)
    expected = _kv_bytes("qwen3-235b-a22b", batch, 4224) + routed <= pim
    last = int(batch[expected].max())
    assert last == math.floor((pim - routed) / _kv_bytes("qwen3-235b-a22b", 1, 4224)) and 1 < last < 1024
    ds = evaluate("qwen3-235b-a22b", arch, batch=xr.DataArray(batch, dims="batch"), **QWEN)
    assert ds.fits.dtype == bool and (ds.fits.values == expected).all()
    assert fit_reason(ds.isel(batch=-1)).endswith(f"(worst of the {1024 - last} of 1024 points that do not fit)")
    record = evaluate_record("qwen3-235b-a22b", arch, batch=batch, **QWEN)
    assert (np.asarray(record.variables["fits"][0]) == expected).all()


def _serving_limit(arch, engine="trtllm") -> float:
    scen = Scenario(batch=1, prompt=2048, gen=1, **FP16)
    return float(kv_limit(load_model("qwen3-235b-a22b"), arch, scen, load_engine(engine), 2048, 256))


def test_kv_limit_leaves_pim_room_next_to_the_experts():
    """Serving: the paged KV cache fits in the engine's share of PIM next to what else PIM holds. Experts in
    PIM cost exactly their bytes' worth of requests; experts on the GPUs need the GPUs to hold them."""
    engine = load_engine("trtllm")
    f = engine.kv_memory_fraction
    per_request = _kv_bytes("qwen3-235b-a22b", 1, 2048 + 256)
    routed = _routed_bytes("qwen3-235b-a22b")
    gpus_pim = _system(fc="xpu", experts="xpu")
    pim = gpus_pim.pim.capacity_bytes
    on_gpus, in_pim = _serving_limit(gpus_pim), _serving_limit(_system(fc="xpu", experts="pim"))
    assert on_gpus == math.floor(pim * f / per_request)
    assert in_pim == math.floor((pim * f - routed) / per_request)
    assert on_gpus - in_pim in (math.floor(routed / per_request), math.floor(routed / per_request) + 1)
    # with 67 % of each memory the GPUs cannot hold the 470 GB of weights: no request fits, unless the
    # experts move to PIM (the GPUs keep 16 GB of weights)
    tight = engine.model_copy(update={"kv_memory_fraction": 0.67})
    assert _serving_limit(gpus_pim, tight) == 0
    expected = math.floor((pim * 0.67 - routed) / per_request)
    assert expected > 0 and _serving_limit(_system(fc="xpu", experts="pim"), tight) == expected


def test_kv_room_and_fits_agree_over_a_sweep():
    """fits is the KV cache within kv_room (every memory in full) at every point of a swept batch."""
    from hwdse.perf import footprint

    model = load_model("qwen3-235b-a22b")
    batch = np.arange(1, 2049, 7)
    for placement in ({"experts": "pim"}, {"fc": "threshold"}, {"attention": "xpu", "fc": "pim"}, {}):
        arch = _system(**placement)
        mem = footprint(model, Scenario(batch=batch, **QWEN))
        assert (np.asarray(arch.fits(mem)) == (mem.kv_cache_bytes <= arch.kv_room(mem))).all(), placement
