"""Serving studies: a [serving] table makes every trial (and grid point) hwdse.serving.serve instead of a
static batch; its outputs are the objectives and constraints, and serving.* paths are searched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import xarray as xr

import hwdse
import hwdse.hardware
from hwdse._errors import HwdseError
from hwdse.report.labels import metric
from hwdse.search import load_study, run_study
from hwdse.search.operating import INNER_POINTS
from hwdse.search.points import evaluate_points
from hwdse.search.results import best_serving_curves
from hwdse.search.review import pools
from hwdse.serving import serve, serve_disaggregated
from tests.search.conftest import assert_study_refused, cli

REPO = Path(__file__).resolve().parents[2]

SERVING = """
name = "tiny-serving"
arch = "h100-sxm"
n_trials = 8

[workload]
model = "llama-3-8b"
weights = "bf16"
activations = "bf16"
kv = "bf16"

[serving]
engine = "vllm"
isl = 512
osl = 128
ttft_slo_ms = 500.0
tpot_slo_ms = 30.0

[search."arch.memory.bandwidth_GBps"]
low = 2000.0
high = 8000.0

[search."serving.concurrency"]
low = 1
high = 256
log = true

[search."scenario.weights"]
choices = ["bf16", "fp8-e4m3"]

[[objectives]]
metric = "goodput_tok_s_per_device"
direction = "maximize"

[[constraints]]
name = "memory"
kind = "fit"

[[constraints]]
name = "tpot_slo"
metric = "tpot_s"
max = 0.03

[sampler]
name = "tpe"
seed = 1
"""


def _study(tmp_path: Path, text: str = SERVING, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _served(params: dict, **kw: object) -> xr.Dataset:
    """serve() called directly with the study's fixed settings and ``params`` (one design)."""
    args = {"concurrency": None, "isl": 512, "osl": 128, "engine": "vllm", "weights": "bf16", "activations": "bf16",
            "kv": "bf16", "mode": "auto", "ttft_slo_s": 0.5, "tpot_slo_s": 0.03}
    args.update(kw)
    args["weights"] = params.get("scenario.weights", args["weights"])
    for k in ("concurrency", "arrival_rate", "isl", "osl", "engine"):
        if f"serving.{k}" in params:
            args[k] = params[f"serving.{k}"]
    over = {k.removeprefix("arch."): v for k, v in params.items() if k.startswith("arch.")}
    return serve("llama-3-8b", "h100-sxm", overrides=over, **args)


def test_serving_study_objective_is_serve_at_the_best_trial(tmp_path: Path) -> None:
    run = run_study(_study(tmp_path), tmp_path / "out")
    ds = xr.open_dataset(tmp_path / "out" / "results.nc")
    assert ds.sizes["trial"] == 8
    assert {"goodput_tok_s_per_device", "ttft_s", "tpot_s", "max_requests", "constraint_memory",
            "constraint_tpot_slo", "constraint_stable", "feasible", "pareto"} <= set(ds.data_vars)
    best = ds.isel(trial=int(np.flatnonzero(ds.pareto.values)[0]))
    params = {k: best[k].values.item() for k in run.space.params}
    direct = _served(params)
    assert float(best.goodput_tok_s_per_device) == pytest.approx(float(direct.goodput_tok_s_per_device), rel=1e-9)
    assert float(best.tpot_s) == pytest.approx(float(direct.tpot_s), rel=1e-9)
    assert bool(direct.meets_slo) and float(best.goodput_tok_s_per_device) > 0
    # the stored Optuna values are the re-evaluated objective of results.nc
    done = [t for t in run.study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    np.testing.assert_allclose([float(ds.goodput_tok_s_per_device.sel(trial=t.number)) for t in done],
                               [t.values[0] for t in done], rtol=1e-12)
    spec = json.loads(ds.attrs["study_spec"])
    assert spec["serving"]["engine"] == "vllm" and spec["serving"]["tpot_slo_ms"] == 30.0


def test_concurrency_search_evaluates_each_trial_at_its_own_concurrency(tmp_path: Path) -> None:
    space = load_study(_study(tmp_path))
    assert space.looped == ("scenario.weights",)  # numeric serving paths travel as arrays
    assert set(space.vectorized) == {"arch.memory.bandwidth_GBps", "serving.concurrency"}
    points = {"arch.memory.bandwidth_GBps": [3350.0, 3350.0, 6000.0, 3350.0],
              "serving.concurrency": [1, 16, 64, 256], "scenario.weights": ["bf16", "bf16", "fp8-e4m3", "bf16"]}
    ds = evaluate_points(space, points)  # one vectorized serve call per weight format
    for i in range(4):
        one = _served({k: v[i] for k, v in points.items()})
        for m in ("ttft_s", "tpot_s", "tok_s_per_device", "goodput_tok_s_per_device"):
            assert float(ds[m].isel(trial=i)) == pytest.approx(float(one[m]), rel=1e-9), (i, m)
    assert np.all(np.diff(ds.tok_s_per_device.values[[0, 1, 3]]) > 0)  # more clients, more tokens/s
    # 256 clients queue for 361 KV slots' worth of prefill: TTFT misses its 500 ms SLO, so no goodput; the
    # study constrains TPOT only, so the point stays feasible (the SLOs of goodput are no constraints)
    assert bool(ds.meets_slo.values[0]) and float(ds.ttft_s.values[3]) > 0.5 and float(ds.tpot_s.values[3]) < 0.03
    assert float(ds.goodput_tok_s_per_device.values[3]) == 0 and bool(ds.feasible.values[3])


def test_serving_study_cli_report_and_grid_sweep(tmp_path: Path) -> None:
    text = SERVING.replace('name = "tpe"', 'name = "grid"').replace("log = true", "log = true\nnum = 3") \
        .replace("high = 8000.0", "high = 8000.0\nnum = 2")
    out = tmp_path / "grid"
    code, _, err = cli("study", "sweep", str(_study(tmp_path, text)), "--out", str(out))
    assert code == 0, err
    grid = xr.open_dataset(out / "sweep.nc")
    assert dict(grid.goodput_tok_s_per_device.sizes) == {"arch.memory.bandwidth_GBps": 2, "serving.concurrency": 3,
                                                         "scenario.weights": 2}
    point = {"arch.memory.bandwidth_GBps": 8000.0, "serving.concurrency": int(grid["serving.concurrency"][1]),
             "scenario.weights": "fp8-e4m3"}
    sel = grid.sel({k: v for k, v in point.items()})
    assert float(sel.ttft_s) == pytest.approx(float(_served(point).ttft_s), rel=1e-9)
    report = (out / "report.md").read_text()
    assert "served by vllm, closed loop (concurrency searched 1-256)" in report
    assert "Goodput per device (tok/s)" in report
    assert (out / "figures" / "pareto.png").is_file() and (out / "figures" / "roofline.png").is_file()


def test_fit_and_stable_constraints(tmp_path: Path) -> None:
    """fit: llama-3-70b in BF16 (~141 GB) cannot hold one request on an 80 GB H100; stable: an open-loop rate
    past capacity."""
    big = SERVING.replace('"llama-3-8b"', '"llama-3-70b"').replace('[search."scenario.weights"]\nchoices = '
                                                                      '["bf16", "fp8-e4m3"]\n', "")
    space = load_study(_study(tmp_path, big, "big.toml"))
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [3350.0], "serving.concurrency": [8]})
    assert ds.max_requests.item() == 0 and ds.constraint_memory.item() > 0 and not ds.feasible.item()
    open_loop = SERVING.replace('[search."serving.concurrency"]\nlow = 1\nhigh = 256\nlog = true',
                                '[search."serving.arrival_rate"]\nlow = 0.5\nhigh = 1000.0\nlog = true')
    space = load_study(_study(tmp_path, open_loop, "open.toml"))
    ds = evaluate_points(space, {"arch.memory.bandwidth_GBps": [3350.0, 3350.0], "serving.arrival_rate": [0.5, 1000.0],
                                 "scenario.weights": ["bf16", "bf16"]})
    assert ds.stable.values.tolist() == [True, False]
    assert ds.constraint_stable.values.tolist() == [-1.0, 1.0] and ds.feasible.values.tolist() == [True, False]


# roofline: the best design's load curve is checked for monotone throughput on the bound; in achieved mode it dips
# at a few concurrencies (seen, not yet explained)
DISAGG = SERVING.replace('arch = "h100-sxm"', 'arch = "h100-sxm"\nmode = "roofline"').replace(
    'engine = "vllm"', 'engine = "vllm"\ndecode_arch = "h200"').replace(
    '[search."scenario.weights"]\nchoices = ["bf16", "fp8-e4m3"]\n',
    '[search."serving.decode_instances"]\nlow = 1\nhigh = 3\n\n[search."decode_arch.memory.bandwidth_GBps"]\n'
    'low = 3000.0\nhigh = 9000.0\n')



BAD = {
    "unknown-metric": (SERVING.replace('metric = "goodput_tok_s_per_device"', 'metric = "goodput"'),
                       "objectives[0].metric", "unknown serving output 'goodput'"),
    "unknown-constraint-metric": (SERVING.replace('metric = "tpot_s"', 'metric = "tpot"'),
                                  "constraints[1].metric", "unknown serving output 'tpot'"),
    "both-traffic": (SERVING.replace('[search."serving.concurrency"]\nlow = 1\nhigh = 256\nlog = true\n', "")
                     .replace("isl = 512", "concurrency = 8\narrival_rate = 2.0\nisl = 512"),
                     "serving", "give exactly one of concurrency (closed loop) and arrival_rate (open loop)"),
    "both-searched": (SERVING.replace("[[objectives]]", '[search."serving.arrival_rate"]\nlow = 1.0\nhigh = 9.0\n\n'
                                                        "[[objectives]]"),
                      "search.serving.arrival_rate", "got both"),
    "no-traffic": (SERVING.replace('[search."serving.concurrency"]\nlow = 1\nhigh = 256\nlog = true\n', ""),
                   "serving", "got neither"),
    "unknown-serving-path": (SERVING.replace('"serving.concurrency"', '"serving.clients"'),
                             "search.serving.clients", "unknown serving field"),
    "osl-out-of-bounds": (SERVING.replace("osl = 128", "osl = 1"), "serving.osl", "greater than or equal to 2"),
    "unknown-engine": (SERVING.replace('engine = "vllm"', 'engine = "tgi"'), "serving.engine", "unknown engine 'tgi'"),
    "static-batch-field": (SERVING.replace('model = "llama-3-8b"', 'model = "llama-3-8b"\nprompt = 512'),
                           "workload.prompt", "not used by a serving study"),
    "pool-without-decode-arch": (SERVING.replace("tpot_slo_ms = 30.0", "tpot_slo_ms = 30.0\ndecode_instances = 2"),
                                 "serving.decode_instances", "a disaggregated field: needs serving.decode_arch"),
    "decode-path-without-decode-arch": (SERVING.replace("[[objectives]]", '[search."decode_arch.memory.bandwidth_GBps"]'
                                                        "\nlow = 1000.0\nhigh = 9000.0\n\n[[objectives]]", 1),
                                        "search.decode_arch.memory.bandwidth_GBps", "decode-pool paths need "
                                        "serving.decode_arch"),
    "unknown-decode-arch": (DISAGG.replace('decode_arch = "h200"', 'decode_arch = "h300"'), "serving.decode_arch",
                            "h300"),
    "bad-decode-path": (DISAGG.replace('"decode_arch.memory.bandwidth_GBps"', '"decode_arch.memory.bandwith_GBps"'),
                        "search.decode_arch.memory.bandwith_GBps", "bandwith_GBps"),
    "serving-path-without-table": (SERVING.split("[serving]")[0] + SERVING.split("tpot_slo_ms = 30.0\n")[1],
                                   "search.serving.concurrency", "need a [serving] table"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_serving_study_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    text, key, reason = BAD[case]
    path = _study(tmp_path, text)
    assert_study_refused(path, tmp_path / "out", key, reason)
    with pytest.raises(HwdseError) as exc:  # the API raises the same error
        load_study(path)
    assert exc.value.field == key


def test_every_serve_output_has_a_label() -> None:
    ds = serve("llama-3-8b", "h100-sxm", concurrency=8, isl=256, osl=32, engine="vllm")
    guessed = [str(v) for v in ds.data_vars if metric(str(v)).guessed]
    assert not guessed, f"add to hwdse.report.labels.LABELS: {guessed}"


def test_the_readme_serving_study_runs(tmp_path: Path) -> None:
    """`hwdse study run studies/serving-goodput.toml` (README, Studies): the enqueued H100 and two designs,
    each served at its chosen concurrency."""
    space = load_study(REPO / "studies" / "serving-goodput.toml")
    assert space.spec.serving is not None and space.spec.serving.engine == "vllm"
    assert "serving.concurrency" in space.vectorized and space.inner == ("serving.concurrency",)
    out = tmp_path / "sg"
    code, _, err = cli("study", "run", str(REPO / "studies" / "serving-goodput.toml"), "--trials", "3", "--out",
                       str(out), "--quiet")
    assert code == 0, err
    ds = xr.open_dataset(out / "results.nc")
    ref = ds.isel(trial=int(np.flatnonzero(ds.reference.values)[0]))
    clients = float(ref["serving.concurrency"])
    assert 1 < clients < 256  # an interior operating point
    h100 = serve("llama-3-8b", "h100-sxm", concurrency=clients, isl=1024, osl=256, engine="vllm", weights="bf16",
                 mode="achieved", ttft_slo_s=0.5, tpot_slo_s=0.03)  # the catalog H100 is the reference design
    assert float(ref.goodput_tok_s_per_device) == pytest.approx(float(h100.goodput_tok_s_per_device), rel=1e-9)
    assert "served by vllm" in (out / "report.md").read_text() and (out / "figures" / "roofline.png").is_file()


def test_disaggregated_study_is_serve_disaggregated(tmp_path: Path) -> None:
    """serving.decode_arch makes the study's arch the prefill pool; decode_arch.* and the pool sizes are searched."""
    space = load_study(_study(tmp_path, DISAGG))
    assert space.decode_arch.name == "h200"
    points = {"arch.memory.bandwidth_GBps": [3350.0, 3350.0], "serving.concurrency": [16, 64],
              "serving.decode_instances": [1, 3], "decode_arch.memory.bandwidth_GBps": [4800.0, 9000.0]}
    ds = evaluate_points(space, points)
    for i in range(2):
        one = serve_disaggregated("llama-3-8b", "h100-sxm", "h200", concurrency=points["serving.concurrency"][i],
                                  isl=512, osl=128, decode_instances=points["serving.decode_instances"][i],
                                  engine="vllm", weights="bf16", mode="roofline", ttft_slo_s=0.5, tpot_slo_s=0.03,
                                  decode_overrides={"memory.bandwidth_GBps":
                                                    points["decode_arch.memory.bandwidth_GBps"][i]})
        for m in ("ttft_s", "tpot_s", "goodput_tok_s_per_device", "devices"):
            assert float(ds[m].isel(trial=i)) == pytest.approx(float(one[m]), rel=1e-9), (i, m)
    assert ds.devices.values.tolist() == [2.0, 4.0]  # one prefill H100 + the decode H200s
    run = run_study(_study(tmp_path, DISAGG), tmp_path / "out")
    load = best_serving_curves(run.space, run.results)["load"]
    assert load.tpot_s.dims == ("concurrency",) and np.all(np.diff(load.tok_s_per_device.values) >= 0)
    (label, sizes), = pools(run.space, run.results).items()  # every decode pool size at its own best concurrency
    assert label == "decode on h200" and sizes.decode_instances.values.tolist() == [1.0, 2.0, 3.0]
    best = run.results.isel(trial=int(np.flatnonzero(run.results.best.values)[0]))
    assert float(best.goodput_tok_s_per_device) >= 0.99 * sizes.goodput_tok_s_per_device.values.max()  # epsilon tie


def test_the_pim_decode_study_runs(tmp_path: Path) -> None:
    """`hwdse study run studies/pim-decode-disagg.toml` (README): H100 prefill nodes, AttAcc decode nodes; every
    parameter is an operating one, so every pool-size pair x concurrency is a row; the figure sets each pair at its
    own best concurrency beside the GPU decode pool."""
    out = tmp_path / "pim"
    code, _, err = cli("study", "run", str(REPO / "studies" / "pim-decode-disagg.toml"), "--out", str(out), "--quiet")
    assert code == 0, err
    ds = xr.open_dataset(out / "results.nc")
    assert ds.sizes["trial"] == 4 * 8 * INNER_POINTS  # 48 concurrencies from 8 to 2048, all distinct
    best = ds.isel(trial=int(np.flatnonzero(ds.best.values)[0]))
    pools = {k: float(best[f"serving.{k}"]) for k in ("prefill_instances", "decode_instances")}
    one = serve_disaggregated("llama-2-70b", "dgx-h100", "dgx-a100-attacc", concurrency=float(best["serving.concurrency"]),
                              isl=2048, osl=256, engine="trtllm", weights="fp16", mode="auto", ttft_slo_s=1.0,
                              tpot_slo_s=0.05, **pools)
    for m in ("ttft_s", "tpot_s", "goodput_tok_s_per_device"):
        assert float(best[m]) == pytest.approx(float(one[m]), rel=1e-9), m
    # 8 H100s per prefill node; 8 A100s and 8 AttAcc boards per decode node
    assert float(best.devices) == 8 * pools["prefill_instances"] + 16 * pools["decode_instances"]
    feasible = ds.feasible.values.astype(bool)
    assert float(best.goodput_tok_s_per_device) >= 0.99 * ds.goodput_tok_s_per_device.values[feasible].max()
    assert (out / "figures" / "serving.png").is_file()
    report = (out / "report.md").read_text()
    assert "every operating point" in report and "dgx-h100 -> dgx-h100 decode pool" in report


def test_the_moe_parallelism_study_runs(tmp_path: Path) -> None:
    """`hwdse study run studies/deepseek-v3-parallelism.toml` (README): table choices set a layout's fields
    together; layouts and concurrency are operating parameters: every layout x concurrency is a row."""
    space = load_study(REPO / "studies" / "deepseek-v3-parallelism.toml")
    arch = space.params["arch"]
    assert arch.joint and arch.kind == "categorical" and "tp=16 ep=16 attention_dp=2" in arch.choices
    assert space.inner == ("arch", "serving.concurrency") and not space.outer
    assert space.expand({"arch": "tp=32 ep=32 attention_dp=4"}) == {"arch.tp": 32, "arch.ep": 32, "arch.attention_dp": 4}
    out = tmp_path / "ds"
    code, _, err = cli("study", "run", str(REPO / "studies" / "deepseek-v3-parallelism.toml"), "--out", str(out),
                       "--quiet")
    assert code == 0, err
    ds = xr.open_dataset(out / "results.nc")
    row = ds.isel(trial=int(np.flatnonzero((ds["arch"].values == "tp=8 ep=8 attention_dp=8")
                                           & (ds["serving.concurrency"].values == 252))[0]))
    node = hwdse.hardware.with_overrides(hwdse.load_arch("hgx-h200-nodes"), {"ep": 8, "attention_dp": 8})
    one = serve("deepseek-v3", node, concurrency=252, isl=1024, osl=1024, engine="trtllm", weights="fp8-e4m3",
                activations="fp8-e4m3", kv="fp8-e4m3", mode="achieved", ttft_slo_s=2.0, tpot_slo_s=0.05)
    assert float(row.devices) == 8
    for m in ("ttft_s", "tpot_s", "goodput_tok_s_per_device"):
        assert float(row[m]) == pytest.approx(float(one[m]), rel=1e-9), m


def test_table_choices_must_all_be_tables_and_name_fields_together(tmp_path: Path) -> None:
    from hwdse.search.spec import Param, joint_values

    p = Param(choices=[{"tp": 8, "ep": 8}, {"tp": 16, "flag": True, "fmt": "fp8-e4m3"}])
    assert p.joint and p.choices == ["tp=8 ep=8", "tp=16 flag=true fmt=fp8-e4m3"]
    assert joint_values("arch", p.choices[1]) == {"arch.tp": 16, "arch.flag": True, "arch.fmt": "fp8-e4m3"}
    with pytest.raises(ValueError, match="either all tables"):
        Param(choices=[{"tp": 8}, 16])
    with pytest.raises(ValueError, match="without spaces"):
        Param(choices=[{"name": "a b"}])
