"""Grid sweeps: vectorized grid == per-point evaluation; dask LocalCluster chunks == in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hwdse.search import evaluate_points, load_study, run_study, sweep


def test_grid_equals_points(tiny: Path) -> None:
    space = load_study(tiny)
    grid = sweep(space)
    assert set(grid.dims) >= set(space.params)
    flat = grid.stack(p=list(space.params)).reset_index("p")
    pts = evaluate_points(space, {k: flat[k].values for k in space.params})
    for v in ("tpot_s", "ttft_s", "memory_bytes", "constraint_ttft", "feasible"):
        np.testing.assert_allclose(flat[v].values.astype(float), pts[v].values.astype(float), rtol=1e-12)


def test_grid_point_equals_scalar_evaluate(tiny: Path) -> None:
    import hwdse

    space = load_study(tiny)
    grid = sweep(space)
    pt = grid.isel({"arch.memory.bandwidth_GBps": 3, "arch.compute.peak_TOPS.fp16": 1, "scenario.kv": 1})
    ref = hwdse.evaluate("llama-2-7b", "a6000", batch=4, prompt=256, gen=32, kv="fp8-e4m3",
                         overrides={"memory.bandwidth_GBps": float(pt["arch.memory.bandwidth_GBps"]),
                                    "compute.peak_TOPS.fp16": float(pt["arch.compute.peak_TOPS.fp16"])})
    assert float(pt.tpot_s) == pytest.approx(float(ref.tpot_s), rel=1e-12)


def test_dask_local_cluster_gives_the_same_dataset(tiny: Path) -> None:
    pytest.importorskip("dask.distributed")
    space = load_study(tiny)
    here = sweep(space)
    chunked = sweep(space, dask="local", chunk=2, processes=False)
    xr.testing.assert_allclose(here.drop_attrs(), chunked.drop_attrs())
    assert chunked.tpot_s.dims == here.tpot_s.dims == tuple(space.params)


def test_grid_study_writes_sweep_and_results(tiny: Path, tmp_path: Path) -> None:
    tiny.write_text(tiny.read_text().replace('name = "tpe"', 'name = "grid"'))
    run = run_study(load_study(tiny), tmp_path / "g")
    assert run.study is None
    n = 5 * 5 * 2
    assert run.results.sizes["trial"] == n
    assert (tmp_path / "g" / "sweep.nc").is_file() and (tmp_path / "g" / "results.nc").is_file()
    grid = xr.open_dataset(tmp_path / "g" / "sweep.nc")
    assert int(grid.pareto.sum()) == int(run.results.pareto.sum()) >= 1


def test_cli_sweep_writes_grid_and_report(tiny: Path, tmp_path: Path) -> None:
    from tests.search.conftest import cli

    code, out, err = cli("study", "sweep", str(tiny), "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "50 points" in out
    grid = xr.open_dataset(tmp_path / "s" / "sweep.nc")
    assert grid.tpot_s.dims == ("arch.memory.bandwidth_GBps", "arch.compute.peak_TOPS.fp16", "scenario.kv")
    assert (tmp_path / "s" / "report.html").is_file() and not (tmp_path / "s" / "study.db").exists()



def test_paths_the_model_cannot_vectorize_are_looped(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path whose device model needs a Python number is found at load time and evaluated value by value."""
    from hwdse.search.space import Space

    original = Space.evaluate_design
    path = "arch.compute.peak_TOPS.fp16"

    def scalar_peak(self, values, detail=False):
        if np.ndim(values.get(path, 0.0)) > 0:
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        return original(self, values, detail)

    monkeypatch.setattr(Space, "evaluate_design", scalar_peak)
    space = load_study(tiny)
    assert space.looped == ("scenario.kv", path)
    grid = sweep(space)
    assert grid.tpot_s.dims == tuple(space.params)
    flat = grid.stack(p=list(space.params)).reset_index("p")
    pts = evaluate_points(space, {k: flat[k].values for k in space.params})
    np.testing.assert_allclose(flat.tpot_s.values, pts.tpot_s.values, rtol=1e-12)
    monkeypatch.undo()
    xr.testing.assert_allclose(grid.drop_attrs(), sweep(load_study(tiny)).drop_attrs())
