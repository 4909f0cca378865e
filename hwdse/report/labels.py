"""Human labels of result variables: one mapping from a variable name (canonical SI unit in the name,
``tpot_s``) to the text, display unit and scale every report and figure prints it with."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Metric", "LABELS", "metric", "axis_label", "format_value", "quantity", "scenario_text", "cut_note"]


@dataclass(frozen=True)
class Metric:
    """How to print one variable: ``text`` in ``unit``, the stored value times ``scale``."""

    text: str
    unit: str = ""
    scale: float = 1.0
    guessed: bool = False  # made up from the name's unit suffix: the variable is missing from LABELS

    @property
    def label(self) -> str:
        return f"{self.text} ({self.unit})" if self.unit else self.text

    @property
    def inline(self) -> str:
        """The text mid-sentence: first letter lowered unless an acronym (TTFT)."""
        return self.text if self.text[1:2].isupper() else self.text[:1].lower() + self.text[1:]


_MS, _GB, _PCT = ("ms", 1e3), ("GB", 1e-9), ("%", 1e2)
LABELS: dict[str, Metric] = {name: Metric(*spec) for name, spec in {
    # hwdse.perf.evaluate
    "ttft_s": ("TTFT", *_MS), "tpot_s": ("TPOT", *_MS), "e2e_s": ("End-to-end latency", "s"),
    "ttft_band": ("TTFT error band (p90)", "1"), "tpot_band": ("TPOT error band (p90)", "1"),
    "energy_band": ("Energy error band (p90)", "1"),
    "throughput_tok_s": ("Throughput", "tok/s"), "decode_tok_s": ("Decode throughput", "tok/s"),
    "prefill_tok_s": ("Prefill throughput", "tok/s"), "tok_s_per_user": ("Decode rate per user", "tok/s"),
    "memory_bytes": ("Memory", *_GB), "weights_bytes": ("Weights memory", *_GB),
    "kv_cache_bytes": ("KV-cache memory", *_GB), "activation_bytes": ("Activation memory", *_GB),
    "capacity_bytes": ("Memory capacity", *_GB), "fits": ("Fits in memory",), "feasible": ("Feasible",),
    "prefill_compute_util": ("Prefill compute utilization", *_PCT),
    "prefill_bw_util": ("Prefill bandwidth utilization", *_PCT),
    "decode_compute_util": ("Decode compute utilization", *_PCT),
    "decode_bw_util": ("Decode bandwidth utilization", *_PCT),
    "prefill_flops": ("Prefill operations", "Tera-op", 1e-12),
    "decode_flops": ("Operations per decode step", "Giga-op", 1e-9),
    "area_mm2": ("Area", "mm²"), "power_w": ("Power", "W"), "devices": ("Devices",), "chips": ("Chips",),
    "energy_j": ("Batch energy", "J"), "energy_j_per_token": ("Energy", "J/token"),
    "static_power_w": ("Static power", "W"), "dynamic_energy_j": ("Dynamic batch energy", "J"),
    "avg_power_w": ("Mean power", "W"), "dynamic_power_w": ("Dynamic power", "W"),
    "prefill_clock": ("Prefill clock", *_PCT), "decode_clock": ("Decode clock", *_PCT), "clock": ("Clock", *_PCT),
    "decode_energy_j_per_token": ("Decode energy", "J/token"),
    "cost_usd": ("Build cost", "$"), "system_cost_usd": ("System cost", "$"), "usd_per_hour": ("Cost per hour", "$/h"),
    "usd_per_mtoken": ("Cost per Mtoken", "$/Mtoken"),
    # evaluate(..., detail=True), over (phase, op)
    "op_count": ("Operator instances",), "op_flops": ("Operator operations", "op"),
    "op_bytes": ("Operator traffic", "MB", 1e-6), "op_time_s": ("Operator time", "µs", 1e6),
    "op_compute_s": ("Operator compute time", "µs", 1e6), "op_memory_s": ("Operator memory time", "µs", 1e6),
    "op_bound": ("Bound by",), "op_unit": ("Unit",), "op_compute_class": ("Compute class",),
    "op_intensity": ("Arithmetic intensity", "op/byte"), "op_attainable_ops_per_s": ("Attained", "op/s"),
    # evaluate_mix
    "weight": ("Share of requests", *_PCT),
    # hwdse.perf.format_selection
    "bits_weights": ("W bits",), "bits_activations": ("A bits",), "bits_kv": ("KV bits",),
    "quality_weights_db": ("W QSNR", "dB"), "quality_activations_db": ("A QSNR", "dB"),
    "quality_kv_db": ("KV QSNR", "dB"), "quality_db": ("Quality: worst QSNR", "dB"), "qsnr_db": ("QSNR", "dB"),
    "matmul_rel_error": ("Matmul rel. error",), "mac_format": ("MAC format",),
    "mac_area_um2": ("MAC area", "µm²"), "mac_energy_pj": ("MAC energy", "pJ"),
    "gemm_class_prefill": ("Prefill GEMM class",), "gemm_class_decode": ("Decode GEMM class",),
    "meets_floor": ("Meets floor",), "recommended": ("Recommended",), "on_kernel": ("On recorded kernels",),
    "worst_weights_db": ("W worst QSNR", "dB"), "worst_activations_db": ("A worst QSNR", "dB"),
    "worst_kv_db": ("KV worst QSNR", "dB"), "kernel_path": ("Kernel path",), "kv_path": ("KV kernel",),
    "ppl_increase": ("Predicted ppl. increase", *_PCT), "gemm_bound_decode": ("Decode GEMMs bound by",),
    # hwdse.report.pim_study
    "limit": ("Binding limit",),
    # hwdse.serving.serve (tok_s_per_user, ttft_s, tpot_s, throughput_tok_s, devices: above)
    "tok_s_per_device": ("Throughput per device", "tok/s"), "goodput_tok_s": ("Goodput", "tok/s"),
    "goodput_tok_s_per_device": ("Goodput per device", "tok/s"), "request_rate": ("Request rate", "req/s"),
    "requests_decoding": ("Requests decoding",), "max_requests": ("Max requests in flight",),
    "stable": ("Stable",), "meets_slo": ("Meets SLOs",),
    "prefill_step_share": ("Steps with a prefill chunk", *_PCT), "prefill_chunk_tokens": ("Prefill chunk", "tokens"),
}.items()}

# name suffix -> (unit, scale) of a variable LABELS does not know; longest suffix first
_SUFFIXES = (("_j_per_token", ("J/token", 1.0)), ("_tok_s", ("tok/s", 1.0)), ("_bytes", _GB), ("_mm2", ("mm²", 1.0)),
             ("_um2", ("µm²", 1.0)), ("_db", ("dB", 1.0)), ("_pj", ("pJ", 1.0)), ("_j", ("J", 1.0)),
             ("_w", ("W", 1.0)), ("_s", ("s", 1.0)))


def metric(name: str) -> Metric:
    """The label of a variable: from :data:`LABELS`; ``mix_<name>`` as the mix aggregate of ``<name>``;
    else guessed from the unit suffix (``foo_bar_s`` -> "Foo bar (s)")."""
    if name in LABELS:
        return LABELS[name]
    base = name.removeprefix("mix_")
    if base != name and base in LABELS:
        m = LABELS[base]
        return Metric(f"Mix {m.inline}", m.unit, m.scale)
    unit, scale = next((u for suffix, u in _SUFFIXES if name.endswith(suffix)), ("", 1.0))
    stem = next((name[: -len(s)] for s, _ in _SUFFIXES if name.endswith(s)), name)
    text = stem.replace("_", " ").replace(".", " ").strip() or name
    return Metric(text[0].upper() + text[1:], unit, scale, guessed=True)


def axis_label(name: str) -> str:
    """``"TPOT (ms)"`` for ``tpot_s``."""
    return metric(name).label


def format_value(name: str, value: Any, spec: str = "{:.4g}") -> str:
    """One value of ``name`` in its display unit (no unit text): numbers scaled and formatted with
    ``spec``, booleans yes/no, NaN n/a."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        scale = metric(name).scale
        return spec.format(value * scale if scale != 1.0 else value)
    return str(value)


def quantity(name: str, value: Any, spec: str = "{:.4g}") -> str:
    """One value of ``name`` with its display unit: ``"1.76 ms"``."""
    return f"{format_value(name, value, spec)} {metric(name).unit}".rstrip()


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def scenario_text(name: str, batch: Any, prompt: Any, gen: Any) -> str:
    """``"scenario rag (batch 16, prompt 4096, gen 256)"``, or the lengths alone for the unnamed
    ``custom`` scenario; a value may be a text (``"searched 1-64"``)."""
    lengths = f"batch {_number(batch)}, prompt {_number(prompt)}, gen {_number(gen)}"
    return lengths if name == "custom" else f"scenario {name} ({lengths})"


def cut_note(shown: int, total: int, what: str, where: str) -> str:
    """The sentence a cut table carries ("" when nothing is cut)."""
    return f"Showing {shown} of {total} {what}; all in {where}." if shown < total else ""
