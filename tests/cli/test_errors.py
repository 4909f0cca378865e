"""Bad input on every command is one line naming the option or study field, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hwdse.cli.main import app
from tests.search.conftest import TINY
from tests.cli.test_main import ROOT, cli_error


def runner_error(*args: str) -> str:
    """:func:`cli_error` in this process (typer's CliRunner keeps stderr apart)."""
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 2, (r.stderr, r.exception)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("hwdse: error: "), r.stderr
    return r.stderr.strip()


OPTIONS = {  # command line -> the start of the reason (after "hwdse: error: ")
    "evaluate --batch -4": "--batch: must be >= 1, got -4",
    "evaluate --batch 0": "--batch: must be >= 1, got 0",
    "evaluate --gen 0": "--gen: must be >= 1, got 0",
    "evaluate --prompt 0": "--prompt: must be >= 1, got 0",
    "evaluate --scenario chat --batch 0": "--batch: must be >= 1, got 0",
    "evaluate --batch x": "--batch: ",
    "evaluate --tp 0": "arch h100-sxm: tp: must be >= 1, got 0",
    "evaluate --pp -1": "arch h100-sxm: pp: must be >= 1, got -1",
    "evaluate --scenario chatt": "--scenario: unknown scenario 'chatt'",
    "evaluate --kv fp7": "--kv: unknown formats entry 'fp7'",
    "evaluate --arch arch/h100.yaml": "--arch: file not found: arch/h100.yaml",
    "roofline --seq 0": "--seq: must be >= 1, got 0",
    "roofline --seq -8": "--seq: must be >= 1, got -8",
    "roofline --batch 0": "--batch: must be >= 1, got 0",
    "roofline --model llama-9": "--model: unknown models entry 'llama-9'",
    "formats report --batch 0": "--batch: must be >= 1, got 0",
    "formats report --prompt -1": "--prompt: must be >= 1, got -1",
    "formats report --gen 0": "--gen: must be >= 1, got 0",
    "formats report --formats fp16,fp7": "--formats: unknown formats entry 'fp7'",
    "formats report --weights fp7": "--weights: unknown formats entry 'fp7'",
    "report pim-vs-gpu --model llama-9": "--model: unknown models entry 'llama-9'",
    "study run decode-dse --trials -1": "--trials: ",
    "study run decode-dse --jobs 0": "--jobs: ",
    "study run decode-dse --batch 0": "--batch: ",
    "study sweep no-such-study": "studies catalog: name: unknown studies entry 'no-such-study'",
    "study worker --storage sqlite:///OUT/w.db --study x --trials 0": "--trials: ",
    "study worker --storage sqlite:///OUT/w.db --study x --heartbeat 0": "--heartbeat: ",
    "calibrate --arch a6000": "--arch: no calibration data for 'a6000'",
    "serve --concurrency 0": "--concurrency: ",
    "serve --concurrency 8 --osl 1": "--osl: ",
    "serve --concurrency 8 --isl 0": "--isl: ",
    "serve": "--concurrency/--arrival-rate: give exactly one",
    "serve --concurrency 4 --engine tgi": "--engine: unknown engine 'tgi'",
    "serve --concurrency 4 --weights fp7": "--weights: unknown formats entry 'fp7'",
    "serve --concurrency 4 --decode-arch aim": "--decode-arch: unknown arch entry 'aim'",
    "serve --concurrency 4 --mode fast": "--mode: must be auto, achieved, roofline",
    "catalog list gpus": "catalog: unknown catalog 'gpus'",
}


@pytest.mark.parametrize("line", sorted(OPTIONS))
def test_bad_option_is_one_line_naming_it(tmp_path: Path, line: str) -> None:
    out = tmp_path / "out"
    args = line.replace("OUT", str(tmp_path)).split()
    if args[0] in ("formats", "report", "study") and args[1] != "worker":
        args += ["--out", str(out)]
    assert runner_error(*args).startswith(f"hwdse: error: {OPTIONS[line]}")
    assert not out.exists()


@pytest.mark.parametrize("line", ["evaluate --batch -4", "evaluate --gen 0", "roofline --seq 0",
                                  "study run decode-dse --trials -1"])
def test_bad_option_from_the_console_script(line: str) -> None:
    assert cli_error(*line.split()).startswith(f"hwdse: error: {OPTIONS[line]}")


DSE = (ROOT / "studies" / "decode-dse.toml").read_text()
PARETO = (ROOT / "studies" / "prefill-decode-pareto.toml").read_text()
STUDY_FIELDS = {  # case -> (study text, old, new, field, start of the reason)
    "arch-path": (DSE, 'arch = "decode-accel"', 'arch = "arch/decode-acell.yaml"', "arch",
                  "file not found: arch/decode-acell.yaml"),
    "arch-name": (DSE, 'arch = "decode-accel"', 'arch = "decode-acel"', "arch", "unknown arch entry 'decode-acel'"),
    "model-name": (DSE, 'model = "llama-3-70b"', 'model = "llama-3-07b"', "workload.model",
                   "unknown models entry 'llama-3-07b'"),
    "model-path": (DSE, 'model = "llama-3-70b"', 'model = "models/llama.json"', "workload.model",
                   "file not found: models/llama.json"),
    "weights": (DSE, 'weights = "mxfp4"', 'weights = "mxfp44"', "workload.weights", "unknown formats entry 'mxfp44'"),
    "activations": (DSE, 'activations = "fp8-e4m3"', 'activations = "fp8"', "workload.activations",
                    "unknown formats entry 'fp8'"),
    "kv": (DSE, 'kv = "fp8-e4m3"', 'kv = "fp8-e4m33"', "workload.kv", "unknown formats entry 'fp8-e4m33'"),
    "scenario": (PARETO, 'scenario = "rag"', 'scenario = "ragg"', "workload.scenario", "unknown scenario 'ragg'"),
    "mix": (DSE, "prompt = 1024\ngen = 256", 'mix = [{scenario = "chat"}, {scenario = "rgg"}]',
            "workload.mix[1].scenario", "unknown scenario 'rgg'"),
    "batch": (DSE, "batch = 16", "batch = 0", "workload.batch", "Input should be greater than or equal to 1"),
    "search-path": (DSE, '[search."arch.pe.count"]', '[search."arch.pe.cuont"]', "search.arch.pe.cuont",
                    "low 64: no such path"),
    "search-memory": (DSE, 'choices = ["hbm3", "hbm3e"]', 'choices = ["hbm3", "hbm3f"]',
                      "search.arch.memory.technology", "choice 'hbm3f': unknown memory entry 'hbm3f'"),
    "search-format": (DSE, '"mxfp4", "nvfp4"]', '"mxfp4", "nvfp5"]', "search.scenario.weights",
                      "choice 'nvfp5': unknown formats entry 'nvfp5'"),
    "enqueue-key": (DSE, '"arch.pe.count" = 384', '"arch.pe.cnt" = 384', "enqueue[0].arch.pe.cnt",
                    "not a searched path"),
    "enqueue-value": (DSE, '"arch.memory.technology" = "hbm3e"', '"arch.memory.technology" = "hbm3f"',
                      "enqueue[0].arch.memory.technology", "'hbm3f' is not one of"),
    "objective": (DSE, 'metric = "tpot_s"\ndirection', 'metric = "tpot"\ndirection', "objectives[0].metric",
                  "unknown evaluator output 'tpot'"),
    "constraint": (DSE, 'metric = "power_w"', 'metric = "powr_w"', "constraints[1].metric",
                   "unknown evaluator output 'powr_w'"),
    "sampler": (DSE, 'name = "refine"', 'name = "refin"', "sampler.name", "Input should be"),
}


def _mutated(tmp_path: Path, case: str) -> tuple[Path, str, str]:
    text, old, new, field, reason = STUDY_FIELDS[case]
    assert text.count(old) >= 1, old
    path = tmp_path / "study.toml"
    path.write_text(text.replace(old, new, 1))
    return path, field, reason


@pytest.mark.parametrize("case", sorted(STUDY_FIELDS))
def test_bad_study_field_is_named(tmp_path: Path, case: str) -> None:
    path, field, reason = _mutated(tmp_path, case)
    out = tmp_path / "out"
    line = runner_error("study", "run", str(path), "--out", str(out), "--quiet")
    assert line.startswith(f"hwdse: error: {path}: {field}: {reason}"), line
    assert not out.exists()


@pytest.mark.parametrize("command", [["study", "run"], ["formats", "report", "--study"],
                                     ["report", "pim-vs-gpu", "--study"]])
def test_arch_typo_from_the_console_script(tmp_path: Path, command: list[str]) -> None:
    path, field, reason = _mutated(tmp_path, "arch-path")
    err = cli_error(*command, str(path), "--out", str(tmp_path / "out"))
    assert err == f"hwdse: error: {path}: arch: file not found: arch/decode-acell.yaml\n"
    assert not (tmp_path / "out").exists()


def test_storage_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text('storage = "nosuchdb://x"\n' + TINY)
    assert runner_error("study", "run", str(path), "--out", str(tmp_path / "out"), "--quiet").startswith(
        f"hwdse: error: {path}: storage: cannot open nosuchdb://x")


def test_zero_trials_on_a_new_study_creates_nothing(tmp_path: Path) -> None:
    path, out = tmp_path / "tiny.toml", tmp_path / "out"
    path.write_text(TINY)
    line = runner_error("study", "run", str(path), "--trials", "0", "--out", str(out))
    assert line.startswith("hwdse: error: --trials: 0 on a new study") and "nothing was run or created" in line
    assert not out.exists() and not list(tmp_path.rglob("*.db"))


def test_zero_trials_on_a_stored_study_rebuilds_the_outputs(tmp_path: Path) -> None:
    path, out = tmp_path / "tiny.toml", tmp_path / "out"
    path.write_text(TINY)
    assert CliRunner().invoke(app, ["study", "run", str(path), "--trials", "2", "--out", str(out), "--quiet"]
                              ).exit_code == 0
    (out / "results.nc").unlink()
    r = CliRunner().invoke(app, ["study", "run", str(path), "--trials", "0", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.stderr
    assert (out / "results.nc").is_file() and "2 points" in r.stdout
