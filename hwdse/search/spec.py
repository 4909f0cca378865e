"""The study file (``studies/*.toml``): workload, base arch, search space, objectives, constraints, sampler.

Parsed at the boundary into frozen pydantic models whose references (arch, model, scenarios, formats)
are loaded once; :func:`hwdse.search.load.space_from_spec` then applies every search path once, so a
bad study fails before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from hwdse._catalog import Spec, locate, read, validate
from hwdse._errors import HwdseError
from hwdse.formats import get
from hwdse.hardware import load_arch
from hwdse.hardware._base import DEFAULT_MODE
from hwdse.serving import load_engine
from hwdse.workload import load_model
from hwdse.workload import scenario as named_scenario

__all__ = ["Param", "MixEntry", "Workload", "Serving", "Objective", "Constraint", "SamplerSpec", "Baseline", "StudySpec",
           "SAMPLERS", "SERVING_PATHS", "DISAGG_PATHS", "parse_study", "check_spec", "spec_json", "schema"]

SAMPLERS = ("refine", "tpe", "nsga2", "gp", "cmaes", "random", "grid", "qmc")
SERVING_PATHS = ("engine", "concurrency", "arrival_rate", "isl", "osl", "prefill_instances", "decode_instances",
                 "link_bandwidth_GBps")  # searchable as serving.<field>
DISAGG_PATHS = ("prefill_instances", "decode_instances", "link_bandwidth_GBps")  # need serving.decode_arch
Scalar = str | bool | int | float


class Param(Spec):
    """One search dimension at a dotted path: a float/int range (``low``, ``high``, ``log``, ``step``) or
    categorical ``choices``. A range whose bounds are both integers is an int range unless
    ``type = "float"``. ``num`` sets the points of a float range in a grid sweep.

    Choices may be tables of paths below the param's path, set together (``[search.arch] choices =
    [{tp = 8, ep = 8}, ...]``: layouts whose fields must agree); each is kept as its label
    ``"tp=8 ep=8"`` (:func:`choice_label`, read back by :func:`joint_values`) and ``joint`` is set."""

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = Field(None, gt=0)
    choices: list[Scalar] | None = Field(None, min_length=1)
    type: Literal["float", "int", "categorical"] | None = None
    num: int = Field(5, ge=2, description="grid points of a float range without step")
    unit: str = ""
    joint: bool = Field(False, description="the choices are tables of sub-paths (stored as their labels)")
    operating: bool | None = Field(
        None, description="an operating-point knob, solved exhaustively for each design (its grid, num points "
                          "per range) instead of searched with the hardware; default: true for the serving load "
                          "and pool sizes, scenario.batch and parallelism layouts (hwdse.search.operating)")

    @model_validator(mode="before")
    @classmethod
    def _tables(cls, data: Any) -> Any:
        """Table choices become their labels, and the param joint."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not any(isinstance(c, dict) for c in choices):
            return data
        if not all(isinstance(c, dict) and c for c in choices):
            raise ValueError("choices: either all tables of sub-paths (set together) or all plain values")
        return {**data, "choices": [choice_label(c) for c in choices], "joint": True}

    @model_validator(mode="after")
    def _shape(self) -> "Param":
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            if len(set(map(repr, self.choices))) != len(self.choices):
                raise ValueError(f"choices must be distinct, got {self.choices}")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs low and high (a range) or choices")
        if not self.low < self.high:
            raise ValueError(f"empty range: low ({self.low:g}) must be < high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"log range needs low > 0, got {self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        if self.kind == "int" and any(float(v) != int(v) for v in (self.low, self.high, self.step or 1)):
            raise ValueError("an int range needs integer low, high and step")
        return self

    @property
    def kind(self) -> str:
        """``float``, ``int`` or ``categorical``."""
        if self.choices is not None:
            return "categorical"
        if self.type is not None:
            return self.type
        return "int" if isinstance(self.low, int) and isinstance(self.high, int) else "float"


def choice_label(table: dict[str, Scalar]) -> str:
    """The label of a table choice: ``"tp=8 ep=8"`` (sub-paths in the table's order)."""
    for key, value in table.items():
        if not isinstance(value, (str, bool, int, float)) or any(c in f"{key}{value}" for c in " ="):
            raise ValueError(f"choices: {key} = {value!r}: table values are plain numbers or words, "
                             f"without spaces or '='")
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in table.items())


def joint_values(path: str, label: str) -> dict[str, Scalar]:
    """The ``path.<sub-path>`` values of a table choice's label."""
    out: dict[str, Scalar] = {}
    for item in str(label).split():
        key, text = item.split("=", 1)
        try:
            value: Scalar = json.loads(text)
        except ValueError:
            value = text
        out[f"{path}.{key}"] = value
    return out


class MixEntry(Spec):
    """One scenario of a weighted mix: a named scenario and/or prompt/gen lengths, and a weight."""

    scenario: str | None = None
    prompt: int | None = Field(None, ge=1)
    gen: int | None = Field(None, ge=1)
    weight: float = Field(1.0, gt=0, description="share of requests")


class Workload(Spec):
    """Model and scenario. ``scenario`` names a bundled scenario; a ``mix`` list makes it a weighted mix
    (then use ``mix_*`` objectives). batch and formats apply to every scenario of a mix."""

    model: str
    scenario: str | None = None
    batch: float = Field(1, ge=1)
    prompt: int | None = Field(None, ge=1)
    gen: int | None = Field(None, ge=1)
    weights: str = "fp16"
    activations: str = "fp16"
    kv: str = "fp16"
    flash_attention: bool = True
    mix: list[MixEntry] | None = Field(None, min_length=1)


class Serving(Spec):
    """Continuous-batching serving (:func:`hwdse.serving.serve`) instead of one static batch: each design
    is served under closed-loop ``concurrency`` or open-loop Poisson ``arrival_rate`` (exactly one, given
    here or searched as ``serving.<field>``) with ``isl`` prompt and ``osl`` output tokens per request.
    Goodput counts output tokens only where mean TTFT and TPOT meet the SLOs. With ``decode_arch``
    the serving is disaggregated (:func:`hwdse.serving.serve_disaggregated`): the study's ``arch`` is
    the prefill pool, ``decode_arch`` the decode pool (its fields searched as ``decode_arch.<path>``),
    and the pool sizes and the KV link are fields here."""

    engine: str = Field("vllm", description="arch/engines entry (trtllm, vllm, sglang) or a YAML path")
    concurrency: float | None = Field(None, ge=1, description="closed loop: requests in flight at the client")
    arrival_rate: float | None = Field(None, gt=0, description="open loop: Poisson arrivals, requests/s")
    isl: int | None = Field(None, ge=1, description="prompt tokens per request (given here or searched)")
    osl: int | None = Field(None, ge=2, description="output tokens per request (given here or searched)")
    ttft_slo_ms: float | None = Field(None, gt=0, description="mean-TTFT objective of goodput (none: any TTFT)")
    tpot_slo_ms: float | None = Field(None, gt=0, description="mean-TPOT objective of goodput (none: any TPOT)")
    decode_arch: str | None = Field(None, description="disaggregated: the decode pool's arch (catalog name or "
                                                      "YAML path); the study's arch serves the prompts")
    prefill_instances: float | None = Field(None, ge=1, description="disaggregated: copies of the prefill system")
    decode_instances: float | None = Field(None, ge=1, description="disaggregated: copies of the decode system")
    link_bandwidth_GBps: float | None = Field(None, gt=0, description="disaggregated: prefill -> decode KV link, "
                                                                       "GB/s per transfer (default 50, one 400G NIC)")

    @model_validator(mode="after")
    def _traffic(self) -> "Serving":
        if self.concurrency is not None and self.arrival_rate is not None:
            raise ValueError("give exactly one of concurrency (closed loop) and arrival_rate (open loop); got both")
        return self


class Objective(Spec):
    metric: str = Field(description="an evaluator output variable (ttft_s, tpot_s, mix_tpot_s, ...), or a "
                                    "serving output with [serving] (goodput_tok_s_per_device, ...)")
    direction: Literal["minimize", "maximize"] = "minimize"
    epsilon: float = Field(0.01, gt=0, lt=1, description="relative resolution: values closer than this are ties "
                                                         "(broken by the next objective; one design per box "
                                                         "of the front)")


class Constraint(Spec):
    """A named constraint; feasible when its value <= 0.

    kind ``max``/``min``: ``metric`` against a bound (value = relative excess, e.g. (area - max) / max);
    ``fit``: memory footprint over capacity, relative; ``quality``: ``min_qsnr_db`` minus the QSNR of
    the formats of ``tensors`` on the format-selection report's floor sources
    (:func:`hwdse.perf.format_selection.floor_qsnr_db`), relative.
    """

    name: str
    kind: Literal["max", "min", "fit", "quality"] | None = None
    metric: str | None = None
    max: float | None = None
    min: float | None = None
    min_qsnr_db: float | None = Field(None, gt=0)
    tensors: list[Literal["weights", "activations", "kv"]] = ["weights"]

    @model_validator(mode="after")
    def _shape(self) -> "Constraint":
        kind = self.resolved_kind
        if kind in ("max", "min"):
            if self.metric is None or (self.max is None) == (self.min is None):
                raise ValueError("a bound constraint needs metric and exactly one of max or min")
            bound = self.max if self.max is not None else self.min
            if bound == 0:
                raise ValueError("bound must be non-zero (constraint values are relative)")
        if kind == "quality" and self.min_qsnr_db is None:
            raise ValueError("a quality constraint needs min_qsnr_db")
        return self

    @property
    def resolved_kind(self) -> str:
        if self.kind is not None:
            return self.kind
        return "min" if self.min is not None and self.max is None else "max"


class SamplerSpec(Spec):
    """Sampler name, pinned seed and explicit arguments (they override hwdse's pinned defaults)."""

    name: Literal["refine", "tpe", "nsga2", "gp", "cmaes", "random", "grid", "qmc"] = "refine"
    seed: int = 0
    args: dict[str, Any] = {}


class Baseline(Spec):
    """A shipping product the report compares the designs with: a catalog arch run on the study's
    workload at its own best operating point, in its own formats where given; aggregated, unless
    ``decode_arch`` names its decode pool (a disaggregated study)."""

    arch: str
    decode_arch: str | None = Field(None, description="disaggregated studies: the baseline's decode pool "
                                                      "(None: the baseline serves aggregated)")
    weights: str | None = None
    activations: str | None = None
    kv: str | None = None


class StudySpec(Spec):
    """A whole study file."""

    name: str
    description: str = ""
    mode: Literal["roofline", "achieved", "auto"] = Field(
        DEFAULT_MODE, description="auto: achieved when every system of the study (the design, a decode pool, the "
                                  "baselines) has an achieved basis, else roofline for all of them")
    workload: Workload
    serving: Serving | None = Field(None, description="serve each design (hwdse.serving.serve) instead of "
                                                      "evaluating one static batch")
    arch: str = Field(description="base architecture: arch catalog name or YAML path (any kind)")
    search: dict[str, Param] = Field(min_length=1)
    objectives: list[Objective] = Field(min_length=1)
    constraints: list[Constraint] = []
    sampler: SamplerSpec = SamplerSpec()
    select: Literal["lexicographic", "balanced"] = Field(
        "lexicographic", description="the best design of the front: the best first objective, ties within its "
                                     "epsilon broken by the next objectives (lexicographic), or the front point "
                                     "nearest the ideal point with each objective scaled to the front's range "
                                     "(balanced)")
    n_trials: int = Field(100, ge=1, description="designs to evaluate (each at its best operating point)")
    batch: int = Field(1, ge=1, description="trials evaluated together in one vectorized call (Optuna samplers; "
                                            "refine evaluates each generation in one call)")
    storage: str | None = Field(None, description="Optuna storage URL (default sqlite:///DIR/study.db)")
    enqueue: list[dict[str, Scalar]] = Field([], description="known designs evaluated first (reference points)")
    baselines: list[Baseline] = Field([], description="shipping products the report sets beside the best design")
    sources: dict[str, str] = {}

    @model_validator(mode="after")
    def _names(self) -> "StudySpec":
        names = [c.name for c in self.constraints]
        if len(set(names)) != len(names):
            raise ValueError(f"constraint names must be distinct, got {names}")
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives must be distinct, got {metrics}")
        return self


def parse_study(path_or_name: str | Path) -> tuple[StudySpec, str]:
    """Read and validate a study file (a path or a ``studies/`` catalog name); returns (spec, display path)."""
    path = locate("studies", path_or_name)
    where = str(path) if Path(path_or_name).suffix else str(path_or_name)
    data = read(path)
    data.setdefault("name", path.stem)
    return check_spec(data, where), where


def check_spec(data: dict[str, Any], where: str) -> StudySpec:
    """Validate a study mapping and load every catalog name or path of its base design; an error names
    the field holding the bad reference (``where: arch: file not found: arch/x.yaml``)."""
    spec = validate(StudySpec, data, where)
    w = spec.workload
    refs: list[tuple[str, Callable[[str], Any], str]] = [
        ("arch", load_arch, spec.arch), ("workload.model", load_model, w.model)]
    refs += [(f"workload.{t}", get, getattr(w, t)) for t in ("weights", "activations", "kv")]
    refs += [("workload.scenario", named_scenario, w.scenario)] if w.scenario is not None else []
    refs += [(f"workload.mix[{i}].scenario", named_scenario, m.scenario)
             for i, m in enumerate(w.mix or []) if m.scenario is not None]
    for i, b in enumerate(spec.baselines):
        refs += [(f"baselines[{i}].arch", load_arch, b.arch)]
        refs += [(f"baselines[{i}].decode_arch", load_arch, b.decode_arch)] if b.decode_arch is not None else []
        refs += [(f"baselines[{i}].{t}", get, getattr(b, t)) for t in ("weights", "activations", "kv")
                 if getattr(b, t) is not None]
    for field, load, value in refs:
        try:
            load(value)
        except HwdseError as exc:
            raise exc.referenced_by(where, field) from None
    if spec.serving is not None:
        _check_serving(spec, where)
    elif paths := [k for k in spec.search if k.startswith("serving.")]:
        raise HwdseError(where, f"search.{paths[0]}", "serving paths need a [serving] table")
    return spec


def _check_serving(spec: StudySpec, where: str) -> None:
    """A serving study: one request shape, one kind of traffic, every length given or searched."""
    w, s = spec.workload, spec.serving
    unused = {  # workload field -> (set, what a serving study uses instead)
        "mix": (w.mix is not None, "one request shape: serving.isl and serving.osl"),
        "scenario": (w.scenario is not None, "serving.isl and serving.osl"),
        "prompt": (w.prompt is not None, "serving.isl"), "gen": (w.gen is not None, "serving.osl"),
        "batch": (w.batch != 1, "requests in flight follow from serving.concurrency or serving.arrival_rate"),
        "flash_attention": (not w.flash_attention, "serving always uses it")}
    for field, (bad, instead) in unused.items():
        if bad:
            raise HwdseError(where, f"workload.{field}", f"not used by a serving study ({instead})")
    for i, c in enumerate(spec.constraints):
        if c.name == "stable":
            raise HwdseError(where, f"constraints[{i}].name", "'stable' is the serving result's own verdict (the "
                                                              "implicit constraint_stable); choose another name")
    try:
        load_engine(s.engine)
    except HwdseError as exc:
        raise exc.referenced_by(where, "serving.engine") from None
    given = {k for k in SERVING_PATHS if getattr(s, k) is not None}
    searched = {k.removeprefix("serving.") for k in spec.search if k.startswith("serving.")}
    if unknown := sorted(searched - set(SERVING_PATHS)):
        raise HwdseError(where, f"search.serving.{unknown[0]}",
                         f"unknown serving field; expected one of {', '.join(SERVING_PATHS)}")
    kinds = {"concurrency", "arrival_rate"}
    traffic = (given | searched) & kinds
    if len(traffic) != 1:
        field = f"search.serving.{min(searched & kinds)}" if searched & kinds else "serving"
        got = "neither" if not traffic else "both"
        raise HwdseError(where, field, "give exactly one of concurrency (closed loop) and arrival_rate (open loop), "
                                       f"in [serving] or searched; got {got}")
    for field in ("isl", "osl"):
        if field not in given | searched:
            raise HwdseError(where, f"serving.{field}", f"required: a number, or search serving.{field}")
    if s.decode_arch is None:
        if pool := sorted((given | searched) & set(DISAGG_PATHS)):
            raise HwdseError(where, f"serving.{pool[0]}", "a disaggregated field: needs serving.decode_arch")
        if paths := [k for k in spec.search if k.startswith("decode_arch.")]:
            raise HwdseError(where, f"search.{paths[0]}", "decode-pool paths need serving.decode_arch")
        return
    try:
        load_arch(s.decode_arch)
    except HwdseError as exc:
        raise exc.referenced_by(where, "serving.decode_arch") from None


def spec_json(spec: StudySpec) -> str:
    """The spec as a JSON string (stored in the study's user attrs and in results.nc)."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True)


def schema() -> dict[str, Any]:
    """JSON schema of a study file."""
    return StudySpec.model_json_schema()
