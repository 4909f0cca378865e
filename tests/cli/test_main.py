"""CLI behaviour: the documented commands work; bad input is one line on stderr and exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import hwdse
from hwdse.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return runner.invoke(app, list(args))


def test_evaluate_json_keys():
    result = run("evaluate", "--arch", "h100-sxm", "--model", "llama-2-70b", "--batch", "16", "--prompt", "1024",
                 "--gen", "128", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "memory_bytes", "fits"} <= set(data)
    assert data["fits"] is False  # 138 GB of fp16 weights on one 80 GB H100: needs --tp


def test_evaluate_not_fitting_is_an_answer():
    result = run("evaluate", "--arch", "a6000", "--model", "llama-2-70b", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["fits"] is False and "capacity" in data["fit_reason"]


def test_catalog_commands():
    assert "h100-sxm" in run("catalog", "list", "arch").output
    shown = run("catalog", "show", "h100-sxm")
    assert shown.exit_code == 0 and "hbm3" in shown.output


def write_arch(tmp_path, mutate):
    data = yaml.safe_load((ROOT / "arch" / "a6000.yaml").read_text())
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def cli_error(*args):
    """Run the real console script: one line on stderr, exit code 2, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "hwdse.cli", *args], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def test_unknown_arch_and_model():
    assert "unknown arch entry 'nope'" in cli_error("evaluate", "--arch", "nope")
    assert "unknown models entry 'llama-9'" in cli_error("evaluate", "--model", "llama-9")


def test_malformed_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("kind: gpu\nname: x\ncompute: {units: 3\n")
    err = cli_error("evaluate", "--arch", str(path))
    assert "broken.yaml" in err and "malformed YAML" in err and "line" in err


def test_negative_bandwidth(tmp_path):
    path = write_arch(tmp_path, lambda d: d["memory"].update(bandwidth_GBps=-768))
    err = cli_error("evaluate", "--arch", path)
    assert "bad.yaml" in err and "memory.bandwidth_GBps" in err and "must be > 0" in err and "-768" in err


def test_unknown_field_is_rejected(tmp_path):
    path = write_arch(tmp_path, lambda d: d["memory"].update(bandwidht_GBps=768))
    assert "memory.bandwidht_GBps" in cli_error("evaluate", "--arch", path)


def test_config_json_missing_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
                                "num_attention_heads": 32, "vocab_size": 32000}))
    err = cli_error("evaluate", "--model", str(path))
    assert "config.json" in err and "intermediate_size" in err and "missing" in err.lower()


@pytest.mark.parametrize("option", [["--phase", "both"], ["--weights", "fp7"]])
def test_bad_options(option):
    assert cli_error("roofline", *option)


def test_text_output_units():
    """Memory in GB and times in s/ms/µs/ns in the tables; JSON keeps SI base units."""
    table = run("evaluate", "--arch", "h100-sxm", "--tp", "2", "--model", "llama-2-70b").output
    assert " GB " in table and " ms " in table and "e+" not in table
    roof = run("roofline", "--arch", "a6000", "--model", "llama-2-7b").output
    assert "1.19 ms" in roof and " µs " in roof and "K us" not in roof and " us " not in roof
    data = json.loads(run("roofline", "--arch", "a6000", "--model", "llama-2-7b", "--json").output)
    assert {"time_s", "bytes"} <= set(data[0])


@pytest.mark.parametrize("seconds, text", [(1.19e-3, "1.19 ms"), (850e-6, "850 µs"), (12.3e-9, "12.3 ns"),
                                           (0.99996e-3, "1 ms"), (3.9925, "3.99 s"), (0.0, "0 s")])
def test_duration(seconds, text):
    from hwdse.cli.support import duration

    assert duration(seconds) == text


def test_gigabytes():
    from hwdse.cli.support import gigabytes

    assert gigabytes(1.486e11) == "148.6 GB"


def test_evaluate_an_moe_model_with_expert_parallelism():
    """The issue's command: DeepSeek-V3 on a DGX H100 with EP 8 and TP attention (1/8 of every weight per
    GPU); with attention data-parallel too, the routed rows go out and back as all-to-alls and the
    replicated attention weights no longer fit 80 GB (they do on H200s)."""
    fmt = ("--weights", "fp8-e4m3", "--activations", "fp8-e4m3", "--kv", "fp8-e4m3", "--json")
    data = json.loads(run("evaluate", "--model", "deepseek-v3", "--arch", "dgx-h100", "--ep", "8", *fmt).output)
    assert data["devices"] == 8 and data["placement"]["ep_combine"] == "interconnect"
    assert "ep_dispatch" not in data["placement"]  # TP attention: every GPU holds every token already
    params = hwdse.load_model("deepseek-v3").num_params
    assert data["weights_bytes"] == pytest.approx(params / 8, rel=0.01)
    for arch, fits in (("dgx-h100", False), ("h200", True)):
        dp = json.loads(run("evaluate", "--model", "deepseek-v3", "--arch", arch, "--ep", "8", "--attention-dp", "8",
                            *fmt).output)
        assert dp["devices"] == 8 and dp["placement"]["ep_dispatch"] == "interconnect" and dp["fits"] is fits
