"""Serving: continuous batching, chunked prefill, queueing and SLOs on any system kind (above ``perf``)."""

from hwdse.serving.disagg import serve_disaggregated
from hwdse.serving.engine import Engine, engine_names, load_engine
from hwdse.serving.harness import SERVER, Harness
from hwdse.serving.speculative import Speculative
from hwdse.serving.steady import kv_limit, serve, serve_record
from hwdse.serving.step import StepModel

__all__ = ["serve", "serve_record", "serve_disaggregated", "kv_limit", "Engine", "load_engine", "engine_names",
           "StepModel", "Harness", "SERVER", "Speculative"]
