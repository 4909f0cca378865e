"""The one metric -> label mapping: it covers every variable the evaluators output, and scales to its unit."""

from __future__ import annotations

import pytest

import hwdse
from hwdse.perf import evaluate_mix
from hwdse.report.labels import LABELS, Metric, axis_label, cut_note, format_value, metric, quantity, scenario_text


@pytest.mark.parametrize("detail", [False, True])
def test_every_evaluate_output_has_a_label(detail: bool) -> None:
    ds = hwdse.evaluate("llama-2-7b", "a6000", batch=2, prompt=128, gen=8, detail=detail)
    guessed = [str(v) for v in ds.data_vars if metric(str(v)).guessed]
    assert not guessed, f"add to hwdse.report.labels.LABELS: {guessed}"


def test_every_mix_output_has_a_label() -> None:
    ds = evaluate_mix("llama-2-7b", "a6000", {"chat": 1.0, "rag": 1.0})
    guessed = [str(v) for v in ds.data_vars if metric(str(v)).guessed]
    assert not guessed, f"add to hwdse.report.labels.LABELS: {guessed}"
    assert axis_label("mix_tpot_s") == "Mix TPOT (ms)" and axis_label("mix_energy_j_per_token") == \
        "Mix energy (J/token)"


def test_units_and_scaling() -> None:
    assert axis_label("tpot_s") == "TPOT (ms)" and axis_label("ttft_s") == "TTFT (ms)"
    assert axis_label("decode_energy_j_per_token") == "Decode energy (J/token)"
    assert axis_label("area_mm2") == "Area (mm²)" and axis_label("memory_bytes") == "Memory (GB)"
    assert axis_label("decode_tok_s") == "Decode throughput (tok/s)"
    assert format_value("tpot_s", 0.004233) == "4.233"
    assert quantity("memory_bytes", 1.486e11, "{:.1f}") == "148.6 GB"  # never "1.486e+11 B"
    assert format_value("energy_j", float("nan")) == "n/a" and format_value("fits", True) == "yes"
    assert format_value("scenario.kv", "fp8-e4m3") == "fp8-e4m3"
    assert all(m.text and not m.guessed for m in LABELS.values())


def test_unknown_names_fall_back_on_their_unit_suffix() -> None:
    assert metric("queue_delay_s") == Metric("Queue delay", "s", guessed=True)
    assert metric("scratch_bytes").label == "Scratch (GB)"
    assert metric("trial_number").label == "Trial number"


def test_scenario_and_cut_texts() -> None:
    assert scenario_text("rag", 16.0, 4096, 256) == "scenario rag (batch 16, prompt 4096, gen 256)"
    assert scenario_text("custom", 1.0, 512.0, 128.0) == "batch 1, prompt 512, gen 128"
    assert cut_note(10, 28, "Pareto rows", "best.csv") == "Showing 10 of 28 Pareto rows; all in best.csv."
    assert cut_note(5, 5, "Pareto rows", "best.csv") == ""
