"""Mappings of a standalone PIM system (``replicas`` x ``stages``): the tensor mapping at the defaults, AiM's
layer-per-card pipeline, replicas, capacity, energy accounting and bad mappings (hwdse.hardware.pim.mapping)."""

import pytest
import xarray as xr

import hwdse
from hwdse._catalog import load, read
from hwdse._errors import HwdseError
from hwdse.hardware import Arch, load_arch, with_overrides
from hwdse.hardware.pim.mapping import stage_group
from hwdse.perf import evaluate, fit_reason
from hwdse.perf.roofline import op_time
from hwdse.serving import serve
from hwdse.workload import Scenario, load_model, operator_table
from tests.hardware.pim.test_device import _write

BF16 = dict(weights="bf16", activations="bf16", kv="bf16")
MODEL = load_model("llama-2-70b")


def _ops(batch: float, phase: str = "decode", model=MODEL) -> list:
    return operator_table(model, Scenario(batch=batch, prompt=2048, flash_attention=True, **BF16), phase, 2048)


def _aim(**changes):
    return with_overrides(load_arch("gddr6-aim"), changes) if changes else load_arch("gddr6-aim")


def _dynamic_J(arch, ops: list) -> float:
    """Operator energy of one pass: every critical-path slot's charge (count x energy_J)."""
    return sum(float(t.op.count * t.energy_J) for t in arch.schedule(ops))


def test_defaults_are_the_tensor_mapping_of_every_operator_over_all_devices():
    """replicas = stages = 1: each crossing broadcasts over all 40 cards and 5 hosts (4 network hops), the
    units are all 1280 chips', the controller's bytes cross all 40 card links; no stage sends, counts as the
    table's. Today's formulas written out (hwdse.hardware.pim.device)."""
    aim = _aim()
    assert (aim.replicas, aim.stages) == (1, 1) and _aim(replicas=1, stages=1) == aim
    ops = _ops(4)
    by = {t.op.name: t for t in aim.schedule(ops)}
    assert [t.op.count for t in by.values()] == [op.count for op in ops] and "pp_send" not in by
    op = {o.name: o for o in ops}
    chips, cards, card_Bps, net_Bps = 1280, 40, 32e9, 50e9
    internal, peak = chips * 32 * 32 * 1e9, chips * 32 * 16 * 2 * 1e9

    def link(nbytes: float) -> float:  # a chip's own link
        return 0.1e-6 + nbytes / 32e9

    def card(nbytes: float) -> float:
        return 0.96e-6 + nbytes / card_Bps

    q = op["q_proj"]  # after attn_norm (controller): its input is broadcast to every chip
    q_s = max(q.flops / peak, q.flops / 2 * 2 / internal) + link(q.act_in_bytes) + card(q.act_in_bytes) + (
        4 * 2.7e-6 + q.act_in_bytes / net_Bps)
    o = op["o_proj"]  # before attn_add (controller): its outputs are gathered (1/5 of them on each host)
    o_s = (max(o.flops / peak, o.flops / 2 * 2 / internal) + link(o.act_out_bytes / chips)
           + card(o.act_out_bytes / cards) + 4 * 2.7e-6 + 4 / 5 * o.act_out_bytes / net_Bps)
    a = op["flash_attention"]  # between PIM operators: no crossing
    a_s = max(a.flops / peak, (a.kv_read_bytes + a.kv_write_bytes) / internal)
    n = op["attn_norm"]
    n_s = max(n.flops / 1e12, n.bytes / min(chips * 32e9, cards * card_Bps))
    for name, seconds in (("q_proj", q_s), ("o_proj", o_s), ("flash_attention", a_s), ("attn_norm", n_s)):
        assert float(by[name].seconds) == pytest.approx(seconds, rel=1e-12), name
    g = stage_group(1280, 1, 1, aim.cards)
    assert (g.devices, g.cards, g.hosts, g.wide, g.crossings) == (1280, 40, 5, 0, 0)


def test_layer_per_card_moves_activations_across_cards_only_at_layer_boundaries():
    """stages = 40: each pair of layers on one card of 32 chips. At batch 40 (40 microbatches of one sequence
    in flight) every operator is exactly that card's own operator at batch 1 (a one-card system: its card link
    only, no network), 80 layer slots on the critical path; all cross-card traffic is the 39 stage sends, which
    alone see the network (4 of the 39 boundaries leave a host of 8 cards)."""
    piped, one_card = _aim(stages=40), _aim(devices=32)
    ops = _ops(40)
    mapped, alone = piped.schedule(ops), one_card.schedule(_ops(1))
    assert [t.op.name for t in mapped] == [op.name for op in ops] + ["pp_send"]
    for t, u, op in zip(mapped, alone, ops):
        assert float(t.seconds) == pytest.approx(float(u.seconds), rel=1e-12), op.name
        assert float(t.op.count) == (80 if op.count == 80 else 40)  # L layer slots; per-microbatch head/tail
        # energy: all 40 microbatches' work on every layer
        assert float(t.op.count * t.energy_J) == pytest.approx(float(u.energy_J) * op.count * 40, rel=1e-12)
    # the network reaches nothing but the sends
    far = _aim(stages=40, **{"cards.network.latency_us": 1e3, "cards.network.bandwidth_GBps": 1e-3,
                             "cards.network.energy_pJ_per_bit": 1e4})
    moved = far.schedule(ops)
    for t, u in zip(mapped[:-1], moved[:-1]):
        assert (t.seconds, t.energy_J) == (u.seconds, u.energy_J), t.op.name
    send, far_send = mapped[-1], moved[-1]
    assert float(send.op.count) == 39 and far_send.seconds > 100 * send.seconds
    nbytes = 8192 * 2  # one sequence's residual stream (hidden x bf16)
    card_s, net_s = 0.96e-6 + nbytes / 32e9, 2.7e-6 + nbytes / 50e9
    assert float(send.op.count * send.seconds) == pytest.approx(39 * 2 * card_s + 4 * net_s, rel=1e-12)
    card_J, net_J = nbytes * 8 * 1.3e-12, nbytes * 8 * 10e-12
    assert float(send.op.count * send.energy_J) == pytest.approx(40 * (39 * 2 * card_J + 4 * net_J), rel=1e-12)
    assert stage_group(1280, 1, 40, piped.cards).crossings == 4


@pytest.mark.parametrize("replicas", [5, 10, 40])
@pytest.mark.parametrize("mode", ["roofline", "achieved"])
def test_replicas_decode_as_one_replica_of_their_devices_at_their_share(replicas, mode):
    """Replicas whose cards fill hosts evenly (8, 4 or 1 card each): TPOT at batch B is one replica's
    (devices / R chips, an independent system) at B / R; energy is R of them."""
    batch = 2 * replicas
    mapped = evaluate(MODEL, "gddr6-aim", batch=batch, prompt=2048, gen=64, mode=mode, overrides={"replicas": replicas},
                      **BF16)
    alone = evaluate(MODEL, "gddr6-aim", batch=2, prompt=2048, gen=64, mode=mode,
                     overrides={"devices": 1280 // replicas}, **BF16)
    assert float(mapped.tpot_s) == pytest.approx(float(alone.tpot_s), rel=1e-12)
    assert float(mapped.ttft_s) == pytest.approx(float(alone.ttft_s), rel=1e-12)
    assert float(mapped.dynamic_energy_j) == pytest.approx(replicas * float(alone.dynamic_energy_j), rel=1e-12)
    assert float(mapped.static_power_w) == float(evaluate(MODEL, "gddr6-aim", batch=batch, prompt=2048, gen=64,
                                                          mode=mode, **BF16).static_power_w)  # all 5 hosts, all chips
    assert float(mapped.devices) == 1280


def test_replicas_straddling_two_hosts_pay_the_network_and_count_their_mean_energy():
    """8 replicas of 5 cards on hosts of 8 cards: replicas 1, 3, 4 and 6 (cards 5-9, 15-19, 20-24, 30-34)
    straddle two hosts. The widest sets the step: one replica of 160 chips on hosts of 3 cards (also two
    hosts); energy: four of each kind."""
    aim = _aim(replicas=8)
    g = stage_group(1280, 8, 1, aim.cards)
    assert (g.devices, g.cards, g.hosts, g.narrow_hosts, g.wide) == (160, 5, 2, 1, 0.5)
    straddling, within = _aim(devices=160, **{"cards.cards_per_host": 3}), _aim(devices=160)
    ops, share = _ops(16), _ops(2)
    assert float(sum(t.op.count * op_time(t) for t in aim.schedule(ops))) == pytest.approx(
        float(sum(t.op.count * op_time(t) for t in straddling.schedule(share))), rel=1e-12)
    assert _dynamic_J(aim, ops) == pytest.approx(4 * _dynamic_J(straddling, share) + 4 * _dynamic_J(within, share),
                                                 rel=1e-12)
    assert _dynamic_J(straddling, share) > _dynamic_J(within, share)


def test_step_energy_is_the_work_of_every_replica_and_microbatch():
    """8 replicas x 5 stages of one card at batch 64: each replica's 8 sequences in 4 microbatches of 2, so 32
    microbatches each pass all 80 layers on one card (a one-card system at batch 2) and cross 4 stage
    boundaries; 4 of the 8 replicas cross a host once (cards 5-9: 7 -> 8, ...)."""
    aim = _aim(replicas=8, stages=5)
    g = stage_group(1280, 8, 5, aim.cards)
    assert (g.hosts, g.crossings, g.mean_crossings) == (1, 1, 0.5)
    layers = _dynamic_J(_aim(devices=32), _ops(2))
    nbytes = 2 * 8192 * 2
    sends = 32 * 4 * 2 * nbytes * 8 * 1.3e-12 + 16 * nbytes * 8 * 10e-12
    assert _dynamic_J(aim, _ops(64)) == pytest.approx(32 * layers + sends, rel=1e-12)
    send = aim.schedule(_ops(64))[-1]  # the critical path: a replica that crosses a host
    assert float(send.op.count * send.seconds) == pytest.approx(
        4 * 2 * (0.96e-6 + nbytes / 32e9) + 2.7e-6 + nbytes / 50e9, rel=1e-12)
    # batch 1: one replica's one sequence does the work (the mean replica's half a host crossing)
    one = 8192 * 2 * 8
    assert _dynamic_J(aim, _ops(1)) == pytest.approx(_dynamic_J(_aim(devices=32), _ops(1)) + 4 * 2 * one * 1.3e-12
                                                     + 0.5 * one * 10e-12, rel=1e-12)
    timings = aim.schedule(_ops(1))
    assert [float(t.op.count) for t in timings if t.op.name in ("q_proj", "lm_head", "pp_send")] == [80, 1, 4]


def test_decode_microbatches_hold_whole_sequences():
    """A decode token cannot be split: at batch 1 and 16 the 40-stage pipeline's step is 80 layer times at one
    sequence (16 microbatches of one in flight), at batch 64 at two (ceil(64 / 40)), not 1/40 or 1.6 of one."""
    piped, one_card = _aim(stages=40), _aim(devices=32)
    for batch, size in ((1, 1), (16, 1), (64, 2)):
        q = {t.op.name: t for t in piped.schedule(_ops(batch))}["q_proj"]
        alone = {t.op.name: t for t in one_card.schedule(_ops(size))}["q_proj"]
        assert float(q.seconds) == pytest.approx(float(alone.seconds), rel=1e-12) and float(q.op.count) == 80


@pytest.mark.parametrize("changes", [{"stages": 40}, {"replicas": 8, "stages": 5}])
def test_mapped_decode_mean_is_exact_against_a_loop_over_kv_lengths(changes):
    arch, prompt, gen = _aim(**changes), 4090, 13
    for batch in (3, 64):
        scen = Scenario(batch=batch, prompt=prompt, gen=gen, flash_attention=True, **BF16)
        ds = evaluate(MODEL, arch, scen, mode="roofline")
        brute = sum(sum(t.op.count * op_time(t) for t in arch.schedule(operator_table(MODEL, scen, "decode", kv)))
                    for kv in range(prompt, prompt + gen))
        assert float(ds.tpot_s) == pytest.approx(float(brute) / gen, rel=1e-12)


def test_prefill_pipelines_stages_microbatches_of_tokens():
    """A prefill pass of one prompt splits it into 40 microbatches: 80 + 39 x 2 layer slots at 1/40 of it."""
    timings = {t.op.name: t for t in _aim(stages=40).schedule(_ops(1, "prefill"))}
    assert float(timings["q_proj"].op.count) == 80 + 39 * 2
    assert float(timings["pp_send"].op.count) == pytest.approx(39 / 40 * 79, rel=1e-12)
    assert float(timings["pp_send"].op.shape["bytes"]) == pytest.approx(2048 * 8192 * 2 / 40, rel=1e-12)


def test_a_replica_must_hold_its_own_copy_of_the_weights():
    """llama-2-70b in 16-bit weights (BF16, the format AiM computes) needs 138 GB; 10 replicas of 128 chips
    have 137 GB each."""
    fits = {r: evaluate(MODEL, "gddr6-aim", batch=1, prompt=2048, gen=256, overrides={"replicas": r}, **BF16)
            for r in (8, 10)}
    weights = float(evaluate(MODEL, "gddr6-aim", batch=1, prompt=2048, gen=256, **BF16).weights_bytes)
    assert 1280 * 2**30 / 10 < weights < 1280 * 2**30 / 8
    assert bool(fits[8].fits) and not bool(fits[10].fits) and "weights" in fit_reason(fits[10])
    assert float(fits[10].weights_bytes) == pytest.approx(10 * weights)  # every replica's copy
    assert float(fits[10].capacity_bytes) == 1280 * 2**30  # the whole system's
    served = serve(MODEL, "gddr6-aim", concurrency=8, isl=2048, osl=256, weights="bf16",
                   overrides={"replicas": xr.DataArray([1, 8, 10], dims="replicas")})
    cap = served.max_requests.values
    assert cap[0] > cap[1] > 0 and cap[2] == 0  # the weight copies take the KV cache's room


def test_the_fullest_stage_sets_the_footprint():
    """llama-2-7b's 32 layers over 5 stages: the fullest holds 7 in a fifth of the replica's memory."""
    shares = _aim(replicas=2, stages=5).footprint_shares(load_model("llama-2-7b"))
    assert shares == pytest.approx((2 * 5 * 7 / 32, 5 * 7 / 32, 1.0))
    assert _aim().footprint_shares(MODEL) == (1.0, 1.0, 1.0)


def test_mapping_sweeps_as_arrays_like_scalars():
    stages = xr.DataArray([1, 5, 40], dims="stages")
    swept = evaluate(MODEL, "gddr6-aim", batch=64, prompt=2048, gen=64, mode="roofline", overrides={"stages": stages},
                     **BF16)
    for i, s in enumerate(stages.values):
        one = evaluate(MODEL, "gddr6-aim", batch=64, prompt=2048, gen=64, mode="roofline",
                       overrides={"stages": int(s)}, **BF16)
        assert float(swept.tpot_s[i]) == pytest.approx(float(one.tpot_s), rel=1e-12)


@pytest.mark.parametrize("arch, changes, match", [
    ("gddr6-aim", {"replicas": 3}, "replicas x stages: must divide devices, got 3 groups of 1280 devices"),
    ("gddr6-aim", {"stages": 80}, "each group must be whole cards .* got groups of 16 devices on cards of 32"),
    ("gddr6-aim", {"replicas": 0}, "replicas: must be >= 1"),
    ("hbm-pim", {"devices": 2, "stages": 2}, "several groups need cards .* got 2 groups"),
])
def test_bad_mapping_is_one_line(tmp_path, arch, changes, match):
    data = {**read(hwdse._catalog.locate("arch", arch)), **changes}
    with pytest.raises(HwdseError, match=match) as err:
        load("arch", _write(tmp_path, "bad-mapping", data), Arch)
    assert "\n" not in str(err.value) and "bad-mapping.yaml" in str(err.value)
    with pytest.raises(HwdseError, match="must divide devices, got 7 groups"):
        with_overrides(_aim(), {"replicas": xr.DataArray([5, 7], dims="replicas")})


def test_a_gpu_pim_system_rejects_a_standalone_mapping() -> None:
    """Replicas and stages map a standalone PIM system; inside a GPU + PIM system they would be silently ignored."""
    with pytest.raises(HwdseError, match="pim.replicas and pim.stages"):
        with_overrides(load_arch("dgx-a100-attacc"), {"pim": {"base": "gddr6-aim", "stages": 40}})
