"""hwdse: hardware design-space exploration for LLM inference."""

from hwdse._version import __version__
from hwdse.hardware import load_arch, load_memory, with_overrides
from hwdse.perf import evaluate, evaluate_mix, roofline
from hwdse.serving import serve, serve_disaggregated
from hwdse.workload import Scenario, load_model, scenario

__all__ = ["__version__", "load_arch", "load_memory", "load_model", "evaluate", "evaluate_mix", "roofline",
           "Scenario", "scenario", "with_overrides", "serve", "serve_disaggregated",
           "load_study", "run_study"]


def __getattr__(name: str):  # studies import Optuna: load them on first use only
    if name in ("load_study", "run_study"):
        import hwdse.search

        return getattr(hwdse.search, name)
    raise AttributeError(f"module 'hwdse' has no attribute {name!r}")

