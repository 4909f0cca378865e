"""Model-level accuracy proxy: a format pair's matmul noise mapped to a published-quality delta.

The proxy of a (weights, activations[, kv]) triple is the relative noise power of a quantized matmul,
``noise = ||Q(A) Q(W) - A W||^2 / ||A W||^2`` (``proxy_db = -10 log10 noise``), on the seeded LLM-like
activations (``hwdse.formats.sources.llm_activations``, outlier channels) times Gaussian or real
MiniLM weights, plus the KV format's noise on the same activations when ``kv`` is given. The
mapping to model quality is one coefficient per metric kind, ``delta = a_kind * (noise - noise_baseline)``,
where ``delta`` is the log ratio of the published metric oriented so that positive is worse
(``ln(ppl_q / ppl_b)`` for perplexity, ``ln(acc_b / acc_q)`` for an accuracy). ``a_kind`` is fitted in
log space (geometric mean of ``delta / noise``) to the cited rows of ``validation/format_accuracy.yaml``;
its error is the leave-one-source-out error (:func:`held_out`): every row predicted by a fit that
never saw its paper. Quantization recipes enter through ``quantize_pair`` (default per-format RTN):
see :data:`RECIPES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hwdse import _catalog
from hwdse._errors import HwdseError
from hwdse.formats import Format, get, sources

__all__ = ["TABLE", "AccuracyRow", "AccuracyTable", "load_table", "rtn_pair", "RECIPES", "operands",
           "matmul_noise", "kv_noise", "proxy_noise", "fit", "held_out", "accuracy_proxy"]

TABLE = Path(__file__).resolve().parents[2] / "validation" / "format_accuracy.yaml"
PERPLEXITY_METRICS = ("wikitext2_ppl",)
KINDS = ("perplexity", "accuracy")
SEED = 0
DELTA_FLOOR = 0.002   # tables report ppl to 0.01 on ~5 and accuracy to 0.1 on ~70: ~0.2 % resolution

QuantizePair = Callable[[np.ndarray, np.ndarray, Format, Format], tuple[np.ndarray, np.ndarray]]
"""``(activations (m, k), weights (k, n), fmt_a, fmt_w) -> (Q(activations), Q(weights))``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRef(_Strict):
    cite: str = Field(min_length=10, description="paper or document, with its arXiv id or version")
    url: str = Field(min_length=8)


class AccuracyRow(_Strict):
    """One published delta: a model run at a format triple against its reference run."""

    source: str = Field(min_length=1, description="key of the table's sources: the unit of leave-one-out")
    table: str = Field(min_length=1, description="where in the source (table number, row)")
    model: str = Field(min_length=1)
    family: str = Field(min_length=1)
    params_B: float = Field(gt=0, description="total parameters, billions")
    weights: str
    activations: str
    kv: str | None = None
    recipe: str = Field(min_length=1, description="RTN, AWQ, GPTQ, SmoothQuant, QuaRot-GPTQ, QuaRot-RTN, ModelOpt")
    metric: str = Field(min_length=1, description="wikitext2_ppl (lower is better) or an accuracy in percent")
    baseline: float = Field(gt=0)
    quantized: float = Field(gt=0)
    baseline_weights: str = "fp16"
    baseline_activations: str = "fp16"
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> AccuracyRow:
        if self.metric not in PERPLEXITY_METRICS and not (self.baseline <= 100 and self.quantized <= 100):
            raise ValueError(f"an accuracy metric is in percent (<= 100), got {self.baseline} -> {self.quantized}")
        return self

    @property
    def kind(self) -> Literal["perplexity", "accuracy"]:
        return "perplexity" if self.metric in PERPLEXITY_METRICS else "accuracy"

    @property
    def delta(self) -> float:
        """Log ratio of the metric, positive = worse: ln(q/b) for perplexity, ln(b/q) for accuracy."""
        ratio = self.quantized / self.baseline
        return math.log(ratio) if self.kind == "perplexity" else -math.log(ratio)


class AccuracyTable(_Strict):
    formats: dict[str, dict[str, Any]] = Field(default_factory=dict, description="local format specs by name")
    sources: dict[str, SourceRef] = Field(min_length=1)
    rows: list[AccuracyRow] = Field(min_length=1)

    def format(self, name: str) -> Format:
        """A row's format: the file's ``formats`` first, then the hwdse catalog."""
        if name in self.formats:
            return get({**self.formats[name], "name": name})
        return get(name)


def load_table(path: str | Path | None = None) -> AccuracyTable:
    """Read and validate the published-delta table (default :data:`TABLE`).

    Every error is one line naming the file, the field and the reason, e.g.
    ``format_accuracy.yaml: rows[3].weights: unknown format 'int5'; ...``.
    """
    path = Path(path) if path is not None else TABLE
    where = path.name
    if not path.is_file():
        raise HwdseError(str(path), None, "file not found")
    table = _catalog.validate(AccuracyTable, _catalog.read(path), where)
    for name in table.formats:
        try:
            table.format(name)
        except HwdseError as exc:
            raise HwdseError(where, f"formats.{name}", exc.reason) from None
    for i, row in enumerate(table.rows):
        if row.source not in table.sources:
            raise HwdseError(where, f"rows[{i}].source", f"unknown source {row.source!r}; known: {', '.join(table.sources)}")
        for field in ("weights", "activations", "kv", "baseline_weights", "baseline_activations"):
            name = getattr(row, field)
            if name is None:
                continue
            try:
                table.format(name)
            except HwdseError:
                raise HwdseError(where, f"rows[{i}].{field}",
                                 f"unknown format {name!r}: neither in the file's formats nor in the catalog") from None
    return table


def rtn_pair(a: np.ndarray, w: np.ndarray, fmt_a: Format, fmt_w: Format) -> tuple[np.ndarray, np.ndarray]:
    """Per-format round-to-nearest: both operands quantized along the reduction axis."""
    return fmt_a.quantize(a, axis=-1), fmt_w.quantize(w, axis=0)


RECIPES: dict[str, QuantizePair] = {"RTN": rtn_pair}
"""Quantizer per table ``recipe`` used to compute a row's proxy; rows whose recipe is missing fall back
to RTN (so a recipe's gain over RTN is part of the held-out error until its quantizer is registered)."""


@lru_cache(maxsize=4)
def operands(weights_source: str = "gaussian") -> tuple[np.ndarray, np.ndarray]:
    """Activations (256, k) and weights (k, n), float32, seeded: LLM-like activations with outlier
    channels and N(0, 1) weights (k = 1024, n = 256) or MiniLM's largest matrix (k = 384, n = 1536)."""
    if weights_source == "gaussian":
        w = sources.gaussian(1024 * 256, seed=SEED + 1).reshape(1024, 256)
    elif weights_source == "minilm":
        mats = sources.minilm_weights()
        w = np.ascontiguousarray(max(mats.values(), key=lambda m: m.size).T)  # (in, out)
    else:
        raise HwdseError("accuracy proxy", "weights_source", f"use 'gaussian' or 'minilm', got {weights_source!r}")
    a = sources.llm_activations(256, w.shape[0], seed=SEED)
    return a, w


def _fmt(f: str | Format, table: AccuracyTable | None) -> Format:
    if isinstance(f, Format):
        return f
    return table.format(f) if table is not None else get(f)


def matmul_noise(weights: str | Format, activations: str | Format, *, quantize_pair: QuantizePair = rtn_pair,
                 weights_source: str = "gaussian", table: AccuracyTable | None = None) -> float:
    """Relative noise power ||Q(A)Q(W) - AW||^2 / ||AW||^2 of the proxy matmul."""
    fw, fa = _fmt(weights, table), _fmt(activations, table)
    a, w = operands(weights_source)
    qa, qw = quantize_pair(a, w, fa, fw)
    exact = a.astype(np.float64) @ w.astype(np.float64)
    err = np.asarray(qa, np.float64) @ np.asarray(qw, np.float64) - exact
    return float(np.sum(err**2) / np.sum(exact**2))


def kv_noise(kv: str | Format, *, table: AccuracyTable | None = None) -> float:
    """Relative noise power of the KV format on the LLM-like activations (quantized along channels)."""
    a, _ = operands("gaussian")
    q = _fmt(kv, table).quantize(a, axis=-1).astype(np.float64)
    return float(np.sum((q - a) ** 2) / np.sum(a.astype(np.float64) ** 2))


def proxy_noise(weights: str | Format, activations: str | Format, kv: str | Format | None = None, **kw: Any) -> float:
    """Matmul noise plus the KV format's noise (0 without ``kv``)."""
    table = kw.get("table")
    extra = kv_noise(kv, table=table) if kv is not None else 0.0
    return matmul_noise(weights, activations, **kw) + extra


def _row_noise(table: AccuracyTable, recipes: Mapping[str, QuantizePair], weights_source: str) -> np.ndarray:
    cache: dict[tuple, float] = {}

    def noise(w: str, a: str, kv: str | None, recipe: str) -> float:
        key = (w, a, kv, recipe)
        if key not in cache:
            cache[key] = proxy_noise(w, a, kv, quantize_pair=recipes.get(recipe, rtn_pair),
                                     weights_source=weights_source, table=table)
        return cache[key]

    return np.array([max(noise(r.weights, r.activations, r.kv, r.recipe)
                         - noise(r.baseline_weights, r.baseline_activations, None, "RTN"), 0.0)
                     for r in table.rows])


def fit(noise: Sequence[float], delta: Sequence[float], kind: Sequence[str]) -> dict[str, float]:
    """Coefficient per kind: exp(mean(ln(max(delta, floor) / noise))) over rows with noise > 0."""
    x, y, k = np.asarray(noise, float), np.asarray(delta, float), np.asarray(kind)
    out = {}
    for kd in KINDS:
        m = (k == kd) & (x > 0)
        if m.any():
            out[kd] = float(np.exp(np.mean(np.log(np.maximum(y[m], DELTA_FLOOR) / x[m]))))
    return out


def held_out(table: AccuracyTable | None = None, *, recipes: Mapping[str, QuantizePair] | None = None,
             weights_source: str = "gaussian") -> xr.Dataset:
    """Leave-one-source-out evaluation: each row predicted by :func:`fit` on every other source's rows.

    Dims ``row``; variables ``noise``, ``proxy_db``, ``delta`` (published log ratio), ``predicted``
    (held out), ``error`` (predicted - delta) and ``in_sample`` (the fit on every row). Attrs: the
    median and p90 |error| over all rows and per kind, the all-row coefficients, and the band
    (p10, p90 of ln(delta / predicted) over held-out rows, deltas floored as in the fit).
    """
    table = load_table() if table is None else table
    recipes = dict(RECIPES if recipes is None else recipes)
    x = _row_noise(table, recipes, weights_source)
    y = np.array([r.delta for r in table.rows])
    kind = np.array([r.kind for r in table.rows])
    src = np.array([r.source for r in table.rows])
    pred = np.full(len(y), np.nan)
    for s in dict.fromkeys(src):
        coef = fit(x[src != s], y[src != s], kind[src != s])
        rows = src == s
        pred[rows] = [coef.get(k, np.nan) * xi for k, xi in zip(kind[rows], x[rows])]
    full = fit(x, y, kind)
    err = pred - y
    with np.errstate(divide="ignore", invalid="ignore"):
        log_res = np.log(np.maximum(y, DELTA_FLOOR) / pred)
    attrs: dict[str, Any] = {"table": str(TABLE.name), "weights_source": weights_source,
                             "recipes_modelled": ",".join(sorted(recipes)), "delta_floor": DELTA_FLOOR}
    for label, m in (("all", np.ones(len(y), bool)), *((kd, kind == kd) for kd in KINDS)):
        e = np.abs(err[m])
        attrs[f"median_abs_error_{label}"] = float(np.nanmedian(e))
        attrs[f"p90_abs_error_{label}"] = float(np.nanpercentile(e, 90))
    for kd in KINDS:
        attrs[f"coefficient_{kd}"] = full[kd]
        r = log_res[(kind == kd) & np.isfinite(log_res)]
        attrs[f"band_{kd}"] = (float(np.percentile(r, 10)), float(np.percentile(r, 90)))
    with np.errstate(divide="ignore"):
        proxy_db = -10 * np.log10(x)
    row_coords = {"source": ("row", src), "model": ("row", [r.model for r in table.rows]),
                  "kind": ("row", kind), "recipe": ("row", [r.recipe for r in table.rows]),
                  "metric": ("row", [r.metric for r in table.rows])}
    units = "1 (log ratio, positive = worse)"
    return xr.Dataset(
        {"noise": ("row", x, {"units": "1", "long_name": "proxy noise minus the baseline's"}),
         "proxy_db": ("row", proxy_db, {"units": "dB"}),
         "delta": ("row", y, {"units": units, "long_name": "published delta"}),
         "predicted": ("row", pred, {"units": units, "long_name": "held-out prediction (source left out)"}),
         "error": ("row", err, {"units": units, "long_name": "predicted - published"}),
         "in_sample": ("row", [full[k] * xi for k, xi in zip(kind, x)], {"units": units})},
        coords={"row": np.arange(len(y)), **row_coords}, attrs=attrs)


@lru_cache(maxsize=2)
def _default_fit(weights_source: str) -> xr.Dataset:
    return held_out(weights_source=weights_source)


def accuracy_proxy(weights: str | Format, activations: str | Format, kv: str | Format | None = None, *,
                   kind: Literal["perplexity", "accuracy"] = "perplexity",
                   baseline: tuple[str, str] = ("bf16", "bf16"), quantize_pair: QuantizePair = rtn_pair,
                   weights_source: str = "gaussian", evaluation: xr.Dataset | None = None) -> dict[str, Any]:
    """Predicted quality delta of a format triple against ``baseline`` (weights, activations) formats.

    Returns ``proxy_db`` and ``noise`` (above the baseline's), ``delta`` (relative: perplexity ratio - 1,
    or relative accuracy drop 1 - acc_q/acc_b), ``band`` (p10, p90 of ``delta`` from the held-out
    residuals), ``log_delta``, ``coefficient``, and the held-out error of the mapping
    (``median_abs_error``, ``p90_abs_error``, log-ratio units). ``evaluation`` is a :func:`held_out`
    result (default: the committed table with RTN).
    """
    if kind not in KINDS:
        raise HwdseError("accuracy proxy", "kind", f"use {' or '.join(KINDS)}, got {kind!r}")
    ev = _default_fit(weights_source) if evaluation is None else evaluation
    noise = proxy_noise(weights, activations, kv, quantize_pair=quantize_pair, weights_source=weights_source)
    base = proxy_noise(baseline[0], baseline[1], weights_source=weights_source)
    x = max(noise - base, 0.0)
    coef = ev.attrs[f"coefficient_{kind}"]
    lo, hi = ev.attrs[f"band_{kind}"]
    logs = (coef * x, coef * x * math.exp(lo), coef * x * math.exp(hi))
    rel = [math.expm1(v) if kind == "perplexity" else -math.expm1(-v) for v in logs]
    return {"proxy_db": -10 * math.log10(noise) if noise > 0 else math.inf, "noise": x, "kind": kind,
            "log_delta": logs[0], "delta": rel[0], "band": (rel[1], rel[2]), "coefficient": coef,
            "median_abs_error": ev.attrs[f"median_abs_error_{kind}"], "p90_abs_error": ev.attrs[f"p90_abs_error_{kind}"]}
