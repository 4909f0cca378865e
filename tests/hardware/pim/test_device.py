"""PIM devices and GPU+PIM systems: placement, the three PIM limits, bad configs, exact decode mean."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import hwdse
from hwdse._catalog import load, read
from hwdse._errors import HwdseError
from hwdse.hardware import Arch, load_arch, with_overrides
from hwdse.perf import evaluate, fit_reason
from hwdse.perf.roofline import op_time
from hwdse.workload import Scenario, load_model, operator_table

BF16 = dict(weights="bf16", activations="bf16", kv="bf16")
ATTENTION = ("qk_matmul", "softmax", "sv_matmul")


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    import yaml

    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_attacc_places_decode_attention_in_pim_and_prefill_on_gpus():
    ds = evaluate("gpt3-175b", "dgx-a100-attacc", batch=8, prompt=2048, gen=128, detail=True, flash_attention=False)
    units = {str(o): str(u) for o, u in zip(ds.op.values, ds.op_unit.sel(phase="decode").values)}
    assert all(units[o] == "pim" for o in ATTENTION)
    assert units["q_proj"] == "gpu" and units["fc1"] == "gpu+pim"  # AttAcc --ffopt: FFN split
    assert units["pim_overlap"] == "gpu+pim"  # AttAcc --pipeopt: head-level overlap credit
    assert float(ds.op_time_s.sel(phase="decode", op="pim_overlap")) < 0
    assert float(ds.op_time_s.sel(phase="prefill", op="pim_overlap")) == 0
    assert set(map(str, ds.op_unit.sel(phase="prefill").values)) <= {"gpu", "interconnect"}
    # the K/V rows the GPUs produce cross the NVLink into the AttAcc devices
    assert float(ds.op_time_s.sel(phase="decode", op="k_proj")) > float(ds.op_memory_s.sel(phase="decode", op="k_proj"))


def test_fc_split_divides_every_ffn_gemm_of_a_moe_model():
    """AttAcc's FFN split (fc: split) covers a MoE model's shared experts and leading dense layers as well as
    its routed experts (DeepSeek-V3: one shared expert per MoE layer, three dense layers)."""
    ds = evaluate("deepseek-v3", "dgx-a100-attacc", batch=4, prompt=1024, gen=8, detail=True, weights="fp16",
                  activations="fp16", kv="fp16")
    units = {str(o): str(u) for o, u in zip(ds.op.values, ds.op_unit.sel(phase="decode").values)}
    ffn = [f"{p}{o}" for p in ("", "shared_", "dense_") for o in ("gate_proj", "up_proj", "down_proj")]
    assert {units[o] for o in ffn} == {"gpu+pim"} and units["o_proj"] == "gpu"


def test_fc_threshold_placement_follows_a_swept_batch():
    arch = with_overrides(load_arch("dgx-a100-attacc"), {"fc": "threshold", "fc_batch_threshold": 4})
    batch = xr.DataArray([1, 4, 8, 64], dims="batch")
    ds = evaluate("gpt3-175b", arch, batch=batch, prompt=1024, gen=16, detail=True)
    fc1 = ds.op_unit.sel(phase="decode", op="fc1").values.tolist()
    assert fc1 == ["pim", "pim", "gpu", "gpu"]


def _board(name: str = "gddr6-aim"):
    """The AiM chips on the controller's own links (no cards, hosts or network): the device limits alone."""
    return with_overrides(load_arch(name), {"cards": None})


def test_compute_limit_pim_advantage_shrinks_with_batch():
    """PIM re-streams weights per sequence (b GEMVs): its TPOT grows ~linearly with batch, the GPU's does not."""
    batch = xr.DataArray([1, 4, 16, 64, 256], dims="batch")
    aim = evaluate("llama-2-70b", _board(), batch=batch, prompt=1024, gen=64, **BF16)
    gpu = evaluate("llama-2-70b", "dgx-a100-x2", batch=batch, prompt=1024, gen=64)
    advantage = (gpu.tpot_s / aim.tpot_s).values
    assert advantage[0] > 3  # batch 1: PIM wins by its internal bandwidth
    assert np.all(np.diff(advantage) < 0)
    assert advantage[-1] < 1  # large batch: the GPU wins
    growth = float(aim.tpot_s[-1] / aim.tpot_s[-2])
    assert 3.0 < growth <= 4.0 + 1e-9  # 4x the sequences -> nearly 4x the PIM time


def test_capacity_limit_kv_overflow_is_infeasible_with_reason():
    pim = load_arch("hbm-pim")
    frac = xr.DataArray([1.0, 0.75, 0.5], dims="capacity_fraction")
    ds = evaluate("llama-2-7b", pim, batch=4, prompt=2048, gen=128, overrides={"capacity_fraction": frac})
    assert ds.fits.values.tolist() == [True, True, False]
    small = evaluate("llama-2-7b", pim, batch=4, prompt=2048, gen=128, overrides={"capacity_fraction": 0.5})
    assert "KV cache" in fit_reason(small) and "> capacity" in fit_reason(small)
    # a longer context overflows the 6 GB PIM stacks of the catalog entry itself
    long = evaluate("llama-2-7b", pim, batch=4, prompt=xr.DataArray([1024, 8192], dims="prompt"), gen=128)
    assert long.fits.values.tolist() == [True, False]


def _crossover(latency_us: float, bandwidth_GBps: float) -> int:
    """The first batch (1..512, every integer: in achieved mode the moves are finer than a power of two)
    from which the GPU decodes at least as fast as the AiM board."""
    batch = xr.DataArray(np.arange(1, 513), dims="batch")
    aim = evaluate("llama-2-70b", _board(), batch=batch, prompt=1024, gen=64, **BF16,
                   overrides={"link.latency_us": latency_us, "link.bandwidth_GBps": bandwidth_GBps})
    gpu = evaluate("llama-2-70b", "dgx-a100-x2", batch=batch, prompt=1024, gen=64)
    gpu_wins = (gpu.tpot_s <= aim.tpot_s).values
    return int(batch.values[np.argmax(gpu_wins)]) if gpu_wins.any() else 10**9


def test_communication_limit_moves_the_crossover():
    base = _crossover(0.1, 32)
    assert _crossover(5.0, 32) < base  # slower hand-offs: the GPU wins from a smaller batch
    assert _crossover(0.1, 4) < base  # narrower host link: same
    ds = evaluate("llama-2-70b", _board(), batch=64, prompt=1024, gen=64, detail=True, **BF16,
                  overrides={"link.bandwidth_GBps": 4})
    assert "communication" in set(map(str, ds.op_bound.sel(phase="decode").values))


def test_cards_hosts_and_network_add_every_level_of_a_crossing():
    """A standalone AiM system talks through its hosts: each PIM crossing adds the card link and, past
    one host, the network hops; with one host of one card the card link alone remains."""
    model, scen = load_model("llama-2-70b"), Scenario(batch=1, prompt=1024, **BF16, flash_attention=True)
    ops = operator_table(model, scen, "decode", 1024)
    aim = load_arch("gddr6-aim")
    c = aim.cards
    assert (c.cards(aim.devices), c.hosts(aim.devices)) == (40, 5)
    cards = {t.op.name: t for t in aim.schedule(ops)}
    board = {t.op.name: t for t in _board().schedule(ops)}
    q = next(o for o in ops if o.name == "q_proj")
    extra = cards["q_proj"].serial_s["communication"] - board["q_proj"].serial_s["communication"]
    inbound = c.link.latency_us * 1e-6 + q.act_in_bytes / (c.link.bandwidth_GBps * 1e9)
    inbound += 4 * c.network.latency_us * 1e-6 + q.act_in_bytes / (c.network.bandwidth_GBps * 1e9)
    crossings = (cards["q_proj"].serial_s["communication"] > 0, board["q_proj"].serial_s["communication"] > 0)
    assert all(crossings) and extra >= inbound * (1 - 1e-9)  # at least the input's broadcast
    one_host = with_overrides(aim, {"devices": 32})  # one card: no network
    solo = {t.op.name: t for t in one_host.schedule(ops)}
    assert one_host.cards.hosts(32) == 1
    board32 = {t.op.name: t for t in with_overrides(_board(), {"devices": 32}).schedule(ops)}
    assert solo["q_proj"].serial_s["communication"] - board32["q_proj"].serial_s["communication"] < extra
    ds = evaluate("llama-2-70b", "gddr6-aim", batch=1, prompt=1024, gen=64, **BF16, mode="roofline")
    gpu = evaluate("llama-2-70b", "dgx-a100-x2", batch=1, prompt=1024, gen=64, mode="roofline")
    assert float(ds.tpot_s) > float(gpu.tpot_s)  # host-mediated PIM loses the 70B decode even at batch 1


def test_blocked_mode_pays_a_switch_at_each_host_pim_boundary():
    pim = with_overrides(load_arch("hbm-pim"), {"mode_switch_us": 2.0})
    model, scen = load_model("llama-2-7b"), Scenario(batch=1, prompt=512, flash_attention=False)
    timings = pim.schedule(operator_table(model, scen, "decode", 512))
    switches = {t.op.name: float(t.serial_s.get("mode_switch", 0.0)) for t in timings}
    assert switches["qk_matmul"] == 0.0  # PIM -> PIM: no switch
    assert switches["embedding"] == 0.0  # host op
    assert sum(switches.values()) > 0
    unblocked = with_overrides(pim, {"blocked_mode": False}).schedule(operator_table(model, scen, "decode", 512))
    assert all(float(t.serial_s.get("mode_switch", 0.0)) == 0.0 for t in unblocked)


def test_shared_attach_reduces_the_gpu_capacity():
    spec = {"kind": "gpu-pim", "name": "a100-hbm3-pim", "xpu": "a100-hbm3", "attach": "shared",
            "pim": {"base": "hbm-pim", "memory": {"technology": "hbm3", "count": 5, "pin_rate_Gbps": 5.2375}},
            "sources": {"": "test"}}
    system = hwdse._catalog.validate(Arch, spec, "test")
    assert system.capacity_bytes == pytest.approx(load_arch("a100-hbm3").capacity_bytes * 0.75)
    assert system.devices == 1  # the PIM stacks are the GPU's own memory
    assert load_arch("dgx-a100-attacc").devices == 8 + 8  # separate AttAcc boards count as devices
    with pytest.raises(HwdseError, match="pim.memory = xpu.memory"):
        hwdse._catalog.validate(Arch, {**spec, "pim": "hbm-pim"}, "test")


@pytest.mark.parametrize("path, value, match", [
    ("units.per_device", 0, "units.per_device: must be >= 1"),
    ("units.formats", ["fp64"], "unknown arithmetic class 'fp64'"),
    ("units.formats", [], "at least one arithmetic class"),
    ("units.clock_GHz", 0, "units.clock_GHz: must be > 0"),
    ("capacity_fraction", 1.5, "capacity_fraction: must be <= 1"),
])
def test_bad_pim_config_is_one_line(tmp_path, path, value, match):
    data = read(Path("arch/hbm-pim.yaml").resolve()) if Path("arch/hbm-pim.yaml").exists() else None
    data = data or read(hwdse._catalog.locate("arch", "hbm-pim"))
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    with pytest.raises(HwdseError, match=match) as err:
        load("arch", _write(tmp_path, "bad-pim", data), Arch)
    assert "\n" not in str(err.value) and "bad-pim.yaml" in str(err.value)


def test_policy_the_pim_cannot_run_is_one_line(tmp_path):
    data = read(hwdse._catalog.locate("arch", "dgx-a100-attacc"))
    data["pim"] = {"base": "hbm3-pim", "devices": 8, "units": {"runs": ["gemv"]}}
    with pytest.raises(HwdseError, match="attention: pim, but the PIM units do not run attention") as err:
        load("arch", _write(tmp_path, "bad-attacc", data), Arch)
    assert "\n" not in str(err.value)


def test_format_the_pim_cannot_compute_is_infeasible_not_an_error():
    # a workload format the PIM datapath lacks is an answer (infeasible, with the reason), not a crash
    ds = evaluate("llama-2-7b", "gddr6-aim", batch=1, prompt=128, gen=8)
    assert not bool(ds.feasible) and "q_proj on pim (fp16)" in ds.attrs["infeasible_reason"]
    assert bool(evaluate("llama-2-7b", "gddr6-aim", batch=1, prompt=128, gen=8, weights="bf16",
                         activations="bf16", kv="bf16").feasible)
    attacc = with_overrides(load_arch("dgx-a100-attacc"), {"fc": "pim"})
    ds = evaluate("gpt3-175b", attacc, batch=1, prompt=128, gen=8, weights="fp8-e4m3", activations="fp8-e4m3")
    assert not bool(ds.feasible) and "q_proj on pim (fp8)" in ds.attrs["infeasible_reason"]
    # fc: faster only picks PIM where it can: an fp8 GEMM stays on the GPUs
    faster = with_overrides(load_arch("dgx-a100-attacc"), {"fc": "faster"})
    ds = evaluate("gpt3-175b", faster, batch=1, prompt=128, gen=8, weights="fp8-e4m3", activations="fp8-e4m3",
                  detail=True)
    assert str(ds.op_unit.sel(phase="decode", op="fc1").values) == "gpu"


def test_fc_faster_picks_pim_at_batch_one_and_gpu_at_large_batch():
    arch = with_overrides(load_arch("dgx-a100-attacc"), {"fc": "faster"})
    ds = evaluate("gpt3-175b", arch, batch=xr.DataArray([1, 256], dims="batch"), prompt=1024, gen=16, detail=True)
    assert ds.op_unit.sel(phase="decode", op="fc1").values.tolist() == ["pim", "gpu"]
    plain = evaluate("gpt3-175b", with_overrides(arch, {"fc": "xpu"}), batch=1, prompt=1024, gen=16)
    assert float(ds.tpot_s[0]) < float(plain.tpot_s)


@pytest.mark.parametrize("arch, model, fields", [
    ("gddr6-aim", "llama-3-70b", BF16),
    ("dgx-a100-attacc", "gpt3-175b", {}),
    ("hbm-pim", "mistral-7b", {}),  # sliding window
])
def test_decode_mean_is_exact_against_a_loop_over_kv_lengths(arch, model, fields):
    spec = load_arch(arch)
    if spec.kind == "gpu-pim":
        spec = with_overrides(spec, {"fc": "threshold", "fc_batch_threshold": 2})
    m = load_model(model)
    prompt, gen = 4090, 13
    for batch in (1, 3):
        scen = Scenario(batch=batch, prompt=prompt, gen=gen, **fields)
        ds = evaluate(m, spec, scen)
        brute = 0.0
        for j in range(gen):
            kv = prompt + j if m.sliding_window is None else min(prompt + j, m.sliding_window)
            brute += sum(t.op.count * op_time(t)
                         for t in spec.schedule(operator_table(m, scen, "decode", kv), ds.attrs["mode"]))
        assert float(ds.tpot_s) == pytest.approx(brute / gen, rel=1e-12)


def test_dotted_overrides_reach_inside_the_system():
    arch = load_arch("dgx-a100-attacc")
    slower = with_overrides(arch, {"pim.units.power_derate": 0.25, "xpu.device.memory.count": 4})
    assert slower.pim.internal_Bps == pytest.approx(arch.pim.internal_Bps * 0.25 / 0.5625)
    assert slower.xpu.device.memory.count == 4
    with pytest.raises(HwdseError, match="must be <= 1"):
        with_overrides(arch, {"pim.units.power_derate": 2.0})


def test_attacc_optimisations_each_help_and_need_separate_memory():
    base = with_overrides(load_arch("dgx-a100-attacc"), {"fc": "xpu", "overlap": "none"})
    tpot = {}
    for name, change in (("none", {}), ("heads", {"overlap": "heads"}), ("split", {"fc": "split"})):
        tpot[name] = float(evaluate("gpt3-175b", with_overrides(base, change), batch=32, prompt=2048, gen=32).tpot_s)
    assert tpot["heads"] < tpot["none"] and tpot["split"] < tpot["none"]
    with pytest.raises(HwdseError, match="needs attach: separate and pim.blocked_mode: false"):
        with_overrides(base, {"fc": "split", "pim.blocked_mode": True})
    with pytest.raises(HwdseError, match="overlap: heads needs"):
        with_overrides(base, {"overlap": "heads", "attention": "xpu"})


def test_single_gpu_with_shared_pim_stacks():
    """a100-hbm3-pim: blocked-mode PIM in the GPU's own stacks; FC GEMVs go to PIM at small batch only."""
    ds = evaluate("llama-2-7b", "a100-hbm3-pim", batch=xr.DataArray([1, 64], dims="batch"), prompt=1024, gen=32,
                  detail=True)
    gpu = evaluate("llama-2-7b", "a100-hbm3", batch=xr.DataArray([1, 64], dims="batch"), prompt=1024, gen=32)
    assert ds.op_unit.sel(phase="decode", op="gate_proj").values.tolist() == ["pim", "gpu"]
    assert float(ds.capacity_bytes) == pytest.approx(0.75 * float(gpu.capacity_bytes))
    assert float(ds.tpot_s[0]) < float(gpu.tpot_s[0]) / 4
    q = ds.sel(phase="decode", op="q_proj").isel(batch=0)  # GPU norm -> PIM GEMV: link + mode switch
    assert float(q.op_time_s) > max(float(q.op_compute_s), float(q.op_memory_s)) + 0.2e-6


def test_moe_experts_in_pim_win_at_small_batch_and_lose_when_rows_per_expert_grow():
    """experts: pim runs the routed-expert GEMMs (and their activation) in PIM at decode: a GEMV engine
    re-streams an expert's weights for each of its ``batch x k / E`` rows, the GPUs read each touched
    expert once. Mixtral-8x7B (FP16) on DGX A100 + AttAcc, against the experts on the GPUs (fc: xpu)."""
    base = with_overrides(load_arch("dgx-a100-attacc"), {"fc": "xpu"})
    pim = with_overrides(base, {"experts": "pim"})
    batch = xr.DataArray([1, 256], dims="batch")
    on, off = (evaluate("mixtral-8x7b", a, batch=batch, prompt=2048, gen=32, detail=True) for a in (pim, base))
    units = {str(o): set(np.ravel(on.op_unit.sel(phase="decode", op=o).values)) for o in on.op.values}
    assert units["gate_proj"] == units["down_proj"] == units["act"] == {"pim"}
    assert units["q_proj"] == units["router"] == {"gpu"}
    assert set(map(str, np.ravel(on.op_unit.sel(phase="prefill").values))) <= {"gpu", "interconnect"}
    assert set(np.ravel(off.op_unit.sel(phase="decode", op="gate_proj").values)) == {"gpu"}
    t_on, t_off = on.op_time_s.sel(phase="decode", op="down_proj"), off.op_time_s.sel(phase="decode", op="down_proj")
    assert float(t_on[0]) < float(t_off[0]) and float(t_on[1]) > float(t_off[1])
    assert float(on.decode_energy_j_per_token[0]) < float(off.decode_energy_j_per_token[0])
    assert pim.fit_rule.startswith("PIM holds KV cache + routed experts <= PIM capacity")


def test_experts_in_pim_need_gemv_units(tmp_path):
    data = read(hwdse._catalog.locate("arch", "dgx-a100-attacc"))
    data.update(fc="xpu", overlap="none", experts="pim")
    data["pim"] = {"base": "hbm3-pim", "devices": 8, "units": {"runs": ["attention"]}}
    with pytest.raises(HwdseError, match="experts: pim, but the PIM units do not run GEMVs") as err:
        load("arch", _write(tmp_path, "bad-moe-pim", data), Arch)
    assert "\n" not in str(err.value)
