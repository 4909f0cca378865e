"""Scale-out on PostgreSQL: 4 `hwdse study worker` processes on one study; a SIGKILLed worker's trial
is failed and retried, so nothing stays RUNNING. Needs HWDSE_TEST_POSTGRES_URL (CI sets it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.postgres
URL = os.environ.get("HWDSE_TEST_POSTGRES_URL")
if not URL:
    pytest.skip("HWDSE_TEST_POSTGRES_URL is not set (CI starts PostgreSQL and sets it)", allow_module_level=True)


def _create(tiny: Path, name: str, text_edit=lambda s: s) -> None:
    from hwdse.search import load_study
    from hwdse.search.storage import create_or_load, make_storage

    tiny.write_text(text_edit(tiny.read_text()).replace('name = "tiny"', f'name = "{name}"'))
    create_or_load(load_study(tiny), make_storage(URL), name, optuna.samplers.RandomSampler())


MIX = """mix = [{scenario = "chat", weight = 0.4}, {scenario = "rag", weight = 0.3},
       {scenario = "code-completion", weight = 0.2}, {scenario = "summarization", weight = 0.1}]
"""


def _worker(name: str, trials: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hwdse.cli", "study", "worker", "--storage", URL, "--study", name,
                             "--trials", str(trials), "--quiet", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_four_workers_complete_exactly_the_requested_trials(tiny: Path) -> None:
    name = f"w4-{uuid.uuid4().hex[:8]}"
    _create(tiny, name)
    procs = [_worker(name, 6, "--seed", str(i)) for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    trials = optuna.load_study(study_name=name, storage=URL).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 24 and len(trials) == 24
    assert len({t.number for t in trials}) == 24
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 24


def test_killed_worker_leaves_no_trial_running(tiny: Path) -> None:
    name = f"kill-{uuid.uuid4().hex[:8]}"
    # a mix of four scenarios makes each trial slow enough to be killed while it evaluates
    _create(tiny, name, lambda s: s.replace("prompt = 256\ngen = 32\n", MIX).replace('"tpot_s"', '"mix_tpot_s"'))
    hb = ("--heartbeat", "1", "--grace", "2")
    victim = _worker(name, 1000, *hb)
    storage = optuna.storages.RDBStorage(URL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it while it holds a RUNNING trial
        running = optuna.load_study(study_name=name, storage=storage).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if any(t.params for t in running):  # mid-trial: parameters drawn, heartbeat running
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    study = optuna.load_study(study_name=name, storage=storage)
    stuck = [t.number for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    time.sleep(3)  # past the grace period
    others = [_worker(name, 4, *hb) for _ in range(2)]
    for p in others:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert stuck  # the victim held a trial when it died
    if stuck:  # the killed trial was failed and re-run with the same parameters
        failed = {t.number: t for t in trials if t.state == optuna.trial.TrialState.FAIL}
        assert set(stuck) <= set(failed)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback
        retried = [t for t in trials if retry.retried_trial_number(t) == stuck[0]]
        assert retried and retried[0].state == optuna.trial.TrialState.COMPLETE
        # the retry re-runs the parameters the killed trial had already drawn
        assert all(retried[0].params[k] == v for k, v in failed[stuck[0]].params.items())
