"""The SQLite storage: a transaction that has only read holds the write lock, so a read-then-write of
Optuna's (pop a WAITING trial, tell a RUNNING one) is atomic across worker processes."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna

from hwdse.search.storage import make_storage


def test_a_second_worker_cannot_pop_a_trial_another_transaction_has_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    mine, theirs = make_storage(url), make_storage(url)
    study = optuna.create_study(storage=mine, study_name="s")
    study.enqueue_trial({"x": 1.0})
    trial_id = study.get_trials(deepcopy=False)[0]._trial_id
    popped: list[bool] = []
    other = threading.Thread(target=lambda: popped.append(
        theirs.set_trial_state_values(trial_id, optuna.trial.TrialState.RUNNING)))
    with mine.engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT state FROM trials").scalar() == "WAITING"
        other.start()
        other.join(1.0)
        assert other.is_alive() and not popped  # waits for this transaction, as it would to pop the trial itself
        conn.exec_driver_sql("UPDATE trials SET state = 'RUNNING' WHERE trial_id = ?", (trial_id,))
    other.join(30)
    assert popped == [False]  # it read this transaction's RUNNING: one worker runs the enqueued trial
