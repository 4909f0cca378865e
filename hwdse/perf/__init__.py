"""The evaluator: operator timings -> phase totals, footprint, utilization."""

from hwdse.perf.evaluate import evaluate, evaluate_mix, evaluate_record, fit_reason, resolve
from hwdse.perf.footprint import Footprint, footprint
from hwdse.perf.phases import decode_phase, prefill_phase, sum_max_affine
from hwdse.perf.record import Record
from hwdse.perf.roofline import attainable, bound, op_time
from hwdse.perf.roofline_table import roofline, roofline_rows

__all__ = ["evaluate", "evaluate_record", "Record", "evaluate_mix", "fit_reason", "resolve", "roofline",
           "roofline_rows", "footprint", "Footprint", "decode_phase", "prefill_phase", "sum_max_affine", "op_time",
           "bound", "attainable"]
