"""The README's main command: decode-dse on embedded SQLite; results, figures, report; resume adds up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import xarray as xr

from tests.search.conftest import cli, hwdse

REPO = Path(__file__).resolve().parents[2]


def _stored(out: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")
    return study.get_trials(deepcopy=False)


def test_decode_dse_runs_writes_everything_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "decode-dse"
    first = hwdse("study", "run", str(REPO / "studies" / "decode-dse.toml"), "--trials", "6", "--out", str(out),
                  "--quiet")
    assert first.returncode == 0, first.stderr
    for name in ("results.nc", "best.csv", "report.md", "report.html", "study.db", "figures/pareto.png",
                 "figures/history.png", "figures/roofline.png"):
        assert (out / name).is_file(), name
    assert len(_stored(out, "decode-dse")) == 6  # the enqueued H100 reference is one of the six
    code, _, err = cli("study", "run", str(REPO / "studies" / "decode-dse.toml"), "--trials", "5", "--out", str(out),
                       "--quiet")
    assert code == 0, err
    trials = _stored(out, "decode-dse")
    assert len(trials) == 11
    assert sorted(t.number for t in trials) == list(range(11))
    assert all(t.state.is_finished() for t in trials)  # nothing left RUNNING
    designs = {tuple(sorted(t.params.items())) for t in trials}
    assert len(designs) == 11  # a resumed sampler does not replay the first run's designs
    assert sum(bool(t.user_attrs.get("reference")) for t in trials) == 1  # enqueue skips existing designs
    ds = xr.open_dataset(out / "results.nc")
    assert ds.sizes["trial"] == 11
    assert {"arch.memory.count", "scenario.weights"} <= set(ds.coords)
    assert {"tpot_s", "feasible", "pareto", "constraint_area", "constraint_quality"} <= set(ds.data_vars)
    assert ds.attrs["study"] == "decode-dse" and '"arch": ' in ds.attrs["study_spec"]
    assert ds.attrs["mode"] == "roofline" and ds.attrs["hwdse_version"]
    # stored objective values are the re-evaluated metric of results.nc
    stored = {t.number: t.values[0] for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    np.testing.assert_allclose([float(ds.tpot_s.sel(trial=k)) for k in stored], list(stored.values()), rtol=1e-12)
    report = (out / "report.md").read_text()
    assert "figures/pareto.png" in report and "decode-dse" in report
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_changed_spec_does_not_resume_silently(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert cli("study", "run", str(tiny), "--trials", "2", "--out", str(out), "--quiet")[0] == 0
    tiny.write_text(tiny.read_text().replace("max = 0.5", "max = 0.25"))
    code, _, err = cli("study", "run", str(tiny), "--trials", "2", "--out", str(out), "--quiet")
    assert code == 2 and "different spec" in err


def test_batched_trials_match_one_at_a_time(tiny: Path, tmp_path: Path) -> None:
    """--batch evaluates several asked trials in one vectorized call; metrics equal scalar evaluation."""
    from hwdse.search import load_study, run_study

    space = load_study(tiny)
    run = run_study(space, tmp_path / "b", n_trials=16, batch=8)
    ds = run.results
    assert ds.sizes["trial"] == 16
    for i in (0, 7, 15):
        row = ds.isel(trial=i)
        one = space.evaluate_design({k: row[k].item() for k in space.params})
        np.testing.assert_allclose(float(row.tpot_s), float(one.tpot_s), rtol=1e-12)
        assert bool(row.feasible) == bool(float(one.ttft_s) <= 0.5)


def test_readme_study_example_loads(tmp_path: Path) -> None:
    """The TOML example of the README's Studies section is a valid study."""
    from hwdse.search import load_study

    text = (REPO / "README.md").read_text().split("## Studies", 1)[1]
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.toml"
    path.write_text(block)
    space = load_study(path)
    assert space.spec.name == "decode-dse" and len(space.params) == 4


def test_jobs_run_worker_processes_on_sqlite(tiny: Path, tmp_path: Path) -> None:
    """--jobs 2: two `hwdse study worker` processes share the trial budget on the SQLite storage."""
    out = tmp_path / "j"
    code, _, err = cli("study", "run", str(tiny), "--jobs", "2", "--trials", "6", "--out", str(out), "--quiet")
    assert code == 0, err
    trials = _stored(out, "tiny")
    assert len(trials) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sum(bool(t.user_attrs.get("reference")) for t in trials) == 1
    assert xr.open_dataset(out / "results.nc").sizes["trial"] == 6


def test_a_failed_worker_is_one_line_and_loses_no_stored_trial(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    """--jobs 2 where one worker dies: exit 2 with one line, the other worker's trials still written."""
    import subprocess
    import sys

    import hwdse.search as search

    real = search.spawn_workers

    def one_dies(url, name, n_trials, jobs, **kw):
        dies = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
        return real(url, name, n_trials - 1, 1, **kw) + [dies]

    monkeypatch.setattr(search, "spawn_workers", one_dies)
    out = tmp_path / "f"
    code, _, err = cli("study", "run", str(tiny), "--jobs", "2", "--trials", "4", "--out", str(out), "--quiet")
    assert code == 2, err
    assert err.strip().splitlines() == [f"hwdse: error: --jobs: 1 of 2 workers failed (their errors are above); "
                                        f"the 3 stored trials are written to {out}"]
    assert xr.open_dataset(out / "results.nc").sizes["trial"] == 3


def _completed(db: Path) -> int:
    """Completed trials, read through a read-only SQLite connection: an Optuna storage opened here
    while the run creates its tables would race it for the write lock."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:  # tables not created yet
        return 0


def test_sigkill_loses_no_committed_trial_and_leaves_none_running(tiny: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "k"
    proc = subprocess.Popen([sys.executable, "-m", "hwdse.cli", "study", "run", str(tiny), "--trials", "100000",
                             "--out", str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and _completed(out / "study.db") < 5:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    trials = _stored(out, "tiny")
    assert len(trials) >= 5 and all(t.state.is_finished() for t in trials)
    code, _, err = cli("study", "run", str(tiny), "--trials", "3", "--out", str(out), "--quiet")
    assert code == 0, err
    assert len(_stored(out, "tiny")) == len(trials) + 3


def test_optuna_dashboard_reads_the_study(tiny: Path, tmp_path: Path) -> None:
    """`optuna-dashboard sqlite:///OUT/study.db` serves the study: its API lists it with its metric names."""
    import io
    import json
    from wsgiref.util import setup_testing_defaults

    import pytest

    dashboard = pytest.importorskip("optuna_dashboard")
    from optuna_dashboard._storage_url import get_storage

    out = tmp_path / "d"
    assert cli("study", "run", str(tiny), "--trials", "3", "--out", str(out), "--quiet")[0] == 0
    app = dashboard.wsgi(get_storage(f"sqlite:///{out / 'study.db'}"))

    def get(path: str) -> dict:
        environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
        setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
        assert status[0].startswith("200"), status
        return json.loads(body)

    studies = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["tiny"]
    detail = get(f"/api/studies/{studies[0]['study_id']}")
    assert detail["objective_names"] == ["tpot_s"] and len(detail["trials"]) == 3


def test_the_moe_pim_study_shows_where_experts_in_pim_pay(tmp_path: Path) -> None:
    """`hwdse study run studies/moe-pim-decode.toml` (README): the whole grid of expert placement x FFN
    placement x batch; routed experts in PIM beat them on the GPUs (fc: xpu) in TPOT and energy at
    batch 1 and lose in TPOT at batch 512, where each expert sees 32 rows."""
    out = tmp_path / "mp"
    code, _, err = cli("study", "run", str(REPO / "studies" / "moe-pim-decode.toml"), "--out", str(out),
                       "--quiet")
    assert code == 0, err
    ds = xr.open_dataset(out / "results.nc")
    assert ds.sizes["trial"] == 40 and bool(ds.feasible.all())

    def at(experts: str, batch: int) -> xr.Dataset:
        mask = (ds["arch.experts"] == experts) & (ds["arch.fc"] == "xpu") & (ds["scenario.batch"] == batch)
        return ds.isel(trial=int(np.flatnonzero(mask.values)[0]))

    pim, gpu = at("pim", 1), at("xpu", 1)
    assert float(pim.tpot_s) < float(gpu.tpot_s) and float(pim.decode_energy_j_per_token) < float(
        gpu.decode_energy_j_per_token)
    assert float(at("pim", 512).tpot_s) > float(at("xpu", 512).tpot_s)
