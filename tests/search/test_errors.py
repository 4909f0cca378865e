"""Bad study files: one line naming the file, the key and the reason; exit 2; nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.search.conftest import TINY, assert_study_refused, cli

BASE = TINY.split('[search."arch.memory.bandwidth_GBps"]')[0]
TAIL = '\n[[objectives]]\nmetric = "tpot_s"\n'

CASES = {
    "unknown-path": ('[search."arch.memory.bogus"]\nlow = 1.0\nhigh = 2.0\n' + TAIL,
                     "search.arch.memory.bogus", "no such path"),
    "empty-range": ('[search."arch.memory.count"]\nlow = 5\nhigh = 3\n' + TAIL,
                    "search.arch.memory.count", "empty range"),
    "out-of-bounds": ('[search."arch.memory.count"]\nlow = 0\nhigh = 3\n' + TAIL,
                      "search.arch.memory.count", "must be >= 1"),
    "unknown-objective": ('[search."arch.memory.count"]\nlow = 1\nhigh = 3\n[[objectives]]\nmetric = "speed"\n',
                          "objectives[0].metric", "unknown evaluator output 'speed'"),
    "unknown-sampler": ('[search."arch.memory.count"]\nlow = 1\nhigh = 3\n' + TAIL + '[sampler]\nname = "anneal"\n',
                        "sampler.name", "'anneal'"),
    "unknown-format": ('[search."scenario.weights"]\nchoices = ["fp16", "fp7"]\n' + TAIL,
                       "search.scenario.weights", "unknown formats entry 'fp7'"),
    "unknown-scenario-field": ('[search."scenario.speed"]\nlow = 1.0\nhigh = 2.0\n' + TAIL,
                               "search.scenario.speed", "unknown scenario field"),
    "bad-table-choice": ('[search.arch]\nchoices = [{"memory.count" = 2}, {"memory.count" = 0}]\n' + TAIL,
                         "search.arch", "must be >= 1"),
    "enqueue-outside": ('[search."arch.memory.count"]\nlow = 1\nhigh = 3\n' + TAIL
                        + '[[enqueue]]\n"arch.memory.count" = 9\n',
                        "enqueue[0].arch.memory.count", "outside"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_study_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    body = BASE.replace("[[objectives]]", "") if case == "unknown-objective" else BASE
    # the base workload block has no objectives; each case brings its own
    text, key, reason = CASES[case]
    path = tmp_path / "x.toml"
    path.write_text(body.split("[[objectives]]")[0] + text)
    assert_study_refused(path, tmp_path / "out", key, reason)


def test_missing_torch_names_the_sampler(tmp_path: Path) -> None:
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed: the gp sampler is available")
    except ImportError:
        pass
    path = tmp_path / "gp.toml"
    path.write_text(TINY.replace('name = "tpe"', 'name = "gp"'))
    code, _, err = cli("study", "run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert code == 2
    assert "sampler 'gp' needs the 'torch' package" in err
    assert not (tmp_path / "out").exists()


def test_constraint_on_an_unmodelled_metric_fails_at_load(tmp_path: Path) -> None:
    """A GPU without a die area has area_mm2 = NaN: an area budget would make every design infeasible."""
    arch = (Path(__file__).resolve().parents[2] / "arch" / "h100-sxm.yaml").read_text()
    (tmp_path / "noarea.yaml").write_text("\n".join(line for line in arch.splitlines() if "die_area" not in line))
    path = tmp_path / "x.toml"
    path.write_text(TINY.replace('arch = "a6000"', f'arch = "{tmp_path / "noarea.yaml"}"').split("[[enqueue]]")[0]
                    + '\n[[constraints]]\nname = "area"\nmetric = "area_mm2"\nmax = 800.0\n')
    code, _, err = cli("study", "run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert code == 2 and f"{path}: constraints[1].metric: area_mm2 is NaN" in err
    assert not (tmp_path / "out").exists()


def test_schema_is_json_schema_of_study_files() -> None:
    import json

    code, out, _ = cli("study", "schema")
    assert code == 0
    schema = json.loads(out)
    assert {"workload", "arch", "search", "objectives", "constraints", "sampler"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_worker_on_a_missing_study_is_one_line(tmp_path: Path) -> None:
    code, _, err = cli("study", "worker", "--storage", f"sqlite:///{tmp_path / 'none.db'}", "--study", "nope",
                       "--trials", "1", "--quiet")
    assert code == 2 and err.strip() == "hwdse: error: --study: no study named 'nope' in the storage"
    assert not (tmp_path / "none.db").exists()  # a mistyped storage path leaves no empty database
