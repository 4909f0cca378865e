"""The public API is small and pinned (like pydantic's test_exports)."""

import hwdse


def test_public_names():
    assert set(hwdse.__all__) >= {"load_arch", "load_model", "evaluate", "roofline", "evaluate_mix", "Scenario",
                                  "scenario", "with_overrides", "load_memory", "__version__", "serve",
                                  "serve_disaggregated"}
    for name in hwdse.__all__:
        assert hasattr(hwdse, name), name
