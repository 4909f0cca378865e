"""LLM workloads: model configs, scenarios and per-phase operator tables."""

from hwdse.workload.config import ModelConfig, from_hf_config, load_model
from hwdse.workload.ops import OPS_PER_ELEMENT, Op, Phase, operator_table
from hwdse.workload.scenario import Scenario, named_scenarios, scenario

__all__ = ["ModelConfig", "from_hf_config", "load_model", "Op", "Phase", "operator_table", "OPS_PER_ELEMENT",
           "Scenario", "named_scenarios", "scenario"]
