"""One basis per result: every system of a comparison runs in one mode, and the result says which."""

import inspect

import pytest

from hwdse import evaluate, serve, serve_disaggregated
from hwdse._errors import HwdseError
from hwdse.cli.main import evaluate as cli_evaluate
from hwdse.cli.serve import serve as cli_serve
from hwdse.hardware import load_arch, with_overrides
from hwdse.hardware._base import DEFAULT_MODE, resolve_mode, weakest
from hwdse.perf.format_selection import format_selection
from hwdse.report.pim_study import pim_vs_gpu
from hwdse.search.spec import StudySpec


@pytest.mark.parametrize("name, basis", [("h100-sxm", "calibrated"), ("dgx-h100", "calibrated"),
                                         ("groq-lpu", "calibrated"), ("mi300x", "transferred"),
                                         ("a6000", "transferred"), ("graphcore-bow", None), ("hbm3-pim", "derived"),
                                         ("gddr6-aim", "derived"), ("a100-hbm3-pim", "derived"),
                                         ("dgx-a100-attacc", "derived"), ("decode-accel", None)])
def test_each_kind_names_its_achieved_basis(name: str, basis: str | None) -> None:
    assert load_arch(name).achieved_basis == basis


def test_auto_is_achieved_only_when_every_system_has_a_basis() -> None:
    h100, mi300x, pim = load_arch("h100-sxm"), load_arch("mi300x"), load_arch("hbm3-pim")
    assert resolve_mode("auto", h100) == resolve_mode("auto", h100, mi300x) == "achieved"
    assert resolve_mode("auto", h100, pim) == "achieved"  # the PIM units: derived from DRAM timing
    assert resolve_mode("roofline", h100, pim) == "roofline"
    untimed = with_overrides(pim, {"memory.technology": "lpddr5x"})  # no DRAM timing in arch/dram-timing/
    assert untimed.achieved_basis is None and resolve_mode("auto", h100, untimed) == "roofline"
    with pytest.raises(HwdseError, match="hbm3-pim"):
        resolve_mode("achieved", h100, untimed)


def test_a_system_rests_on_its_weakest_part() -> None:
    assert weakest("calibrated", "derived") == weakest("transferred", "derived") == "derived"
    assert weakest("calibrated", "transferred") == "transferred" and weakest("calibrated") == "calibrated"
    assert weakest("calibrated", None) is None
    mi300x_pim = with_overrides(load_arch("dgx-a100-attacc"), {"xpu": "mi300x"})
    assert mi300x_pim.achieved_basis == "derived"


def test_a_gpu_prefill_pool_and_a_pim_decode_pool_share_one_basis() -> None:
    ds = serve_disaggregated("llama-2-7b", "dgx-h100", "dgx-a100-attacc", concurrency=32, isl=2048, osl=256,
                             prefill_instances=2)
    assert ds.attrs["mode"] == "achieved" and ds.attrs["basis"] == "calibrated/derived"  # prefill / decode pool
    assert ds.attrs["prefill_basis"] == "calibrated" and ds.attrs["decode_basis"] == "derived"
    alone = serve("llama-2-7b", "dgx-h100", concurrency=32, isl=2048, osl=256)
    assert alone.attrs["basis"] == "calibrated"  # the same GPU system alone keeps its calibration


def test_an_h100_beside_an_mi300x_is_compared_on_one_basis() -> None:
    """The MI300X has no kernel data: it takes the efficiencies transferred from the calibrated GPUs, so
    both run achieved (never a calibrated H100 beside a roofline MI300X); a PIM system beside them runs
    achieved too (its units on their DRAM-timing-derived efficiency), one basis recorded per system."""
    data = pim_vs_gpu([1, 8], [512], 16, models=["llama-2-7b"],
                      systems={"H100": ("h100-sxm", "bf16"), "MI300X": ("mi300x", "bf16")})
    assert data.attrs["mode"] == "achieved" and list(data.basis.values) == ["calibrated", "transferred"]
    with_pim = pim_vs_gpu([1], [512], 16, models=["llama-2-7b"],
                          systems={"H100": ("h100-sxm", "bf16"), "MI300X": ("mi300x", "bf16"),
                                   "AttAcc": ("dgx-a100-attacc", "fp16")})
    assert with_pim.attrs["mode"] == "achieved"
    assert list(with_pim.basis.values) == ["calibrated", "transferred", "derived"]


def test_a_study_resolves_one_mode_over_its_design_and_baselines() -> None:
    from hwdse.search import load_study

    assert load_study("decode-dse").spec.mode == "roofline"        # a PE accelerator: no achieved basis
    assert load_study("serving-goodput").spec.mode == "achieved"   # H100 designs only


def _default(func, name: str = "mode"):
    param = inspect.signature(func).parameters[name]
    default = param.default
    return getattr(default, "default", default)  # typer's Annotated options keep the plain default


def test_api_cli_and_studies_share_one_default_mode() -> None:
    defaults = {f.__qualname__: _default(f) for f in (evaluate, serve, serve_disaggregated, format_selection,
                                                      pim_vs_gpu, cli_evaluate, cli_serve)}
    defaults["StudySpec"] = StudySpec.model_fields["mode"].default
    assert set(defaults.values()) == {DEFAULT_MODE}, defaults
    assert evaluate("llama-2-7b", "h100-sxm", batch=1, prompt=512, gen=16).attrs["basis"] == "calibrated"
