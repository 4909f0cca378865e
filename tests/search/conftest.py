"""Shared fixtures: a tiny, fast study file written into a temporary folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TINY = """
name = "tiny"
description = "test study"
arch = "a6000"
n_trials = 12

[workload]
model = "llama-2-7b"
batch = 4
prompt = 256
gen = 32

[search."arch.memory.bandwidth_GBps"]
low = 300.0
high = 2000.0
log = true

[search."arch.compute.peak_TOPS.fp16"]
low = 50.0
high = 400.0

[search."scenario.kv"]
choices = ["fp16", "fp8-e4m3"]

[[objectives]]
metric = "tpot_s"

[[constraints]]
name = "ttft"
metric = "ttft_s"
max = 0.5

[sampler]
name = "tpe"
seed = 3

[[enqueue]]
"arch.memory.bandwidth_GBps" = 768.0
"arch.compute.peak_TOPS.fp16" = 154.8
"scenario.kv" = "fp16"
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from hwdse.cli.main import app

    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def hwdse(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter (as a user would)."""
    return subprocess.run([sys.executable, "-m", "hwdse.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def assert_study_refused(path: Path, out: Path, key: str, reason: str) -> None:
    """``hwdse study run path``: exit 2, one line naming ``path: key``, ``reason`` in it, nothing written."""
    code, _, err = cli("study", "run", str(path), "--out", str(out), "--quiet")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"hwdse: error: {path}: {key}: "), lines[0]
    assert reason in lines[0], lines[0]
    assert not out.exists()  # no folder, no study.db: the storage was never opened
