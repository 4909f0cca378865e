"""MoE serving rows of the dev set, scored (never fitted) with the committed engine terms."""

import numpy as np
import pytest

from hwdse.calibration.moe import _layout, moe_error_table, moe_rows, predict_moe


def test_layouts_map_to_attention_dp_and_expert_groups():
    base = {"pp_size": "1"}
    assert _layout({**base, "tp_size": "8", "attention_dp_size": "1", "moe_tp_size": "8", "moe_ep_size": "1"}) == (8, 1, 1)
    assert _layout({**base, "tp_size": "8", "attention_dp_size": "", "moe_tp_size": "1", "moe_ep_size": "8"}) == (8, 1, 8)
    assert _layout({**base, "tp_size": "1", "attention_dp_size": "8", "moe_tp_size": "1", "moe_ep_size": "8"}) == (8, 8, 8)
    assert _layout({**base, "tp_size": "16", "attention_dp_size": "1", "moe_tp_size": "4", "moe_ep_size": "4"}) == (16, 1, 4)
    assert _layout({**base, "tp_size": "2", "attention_dp_size": "", "moe_tp_size": "4", "moe_ep_size": "1"}) is None
    assert _layout({"pp_size": "2", "tp_size": "4", "attention_dp_size": "", "moe_tp_size": "4",
                    "moe_ep_size": "1"}) is None


def test_a_layout_beyond_a_node_joins_nodes_by_their_nics():
    import hwdse
    from hwdse.calibration.moe import _system

    system = _system(hwdse.load_arch("b200"), 64, 1, 8)
    assert (system.tp, system.ep, system.attention_dp, system.node_devices) == (64, 8, 1, 8)
    assert system.scale_out.link == "ib-ndr" and _system(hwdse.load_arch("b200"), 8, 8, 8).node_devices is None


@pytest.fixture(scope="module")
def scored():
    rows, skipped = moe_rows()
    return rows, skipped, predict_moe(rows)


def test_moe_rows_are_scored_on_the_catalog_models(scored):
    rows, skipped, (ttft, tpot) = scored
    assert {r.model for r in rows} == {"deepseek-v3", "qwen3-235b-a22b", "gpt-oss-120b"} and len(rows) > 900
    assert skipped > 0
    assert np.isfinite(ttft).all() and np.isfinite(tpot).all() and any(r.ep > 1 for r in rows)


def test_moe_held_out_tpot_error(scored):
    """What the data determine with the dense fit's engine terms: MoE TPOT median |error| 23.4 % (DeepSeek),
    16.2 % (Qwen3-235B), 16.6 % (gpt-oss-120b); TTFT is not yet modelled well for MoE (median 72 / 27 / 125 %)."""
    rows, _, (ttft, tpot) = scored
    totals = {t["model"]: t for t in moe_error_table(rows, ttft, tpot) if t["system"] == "all"}
    assert all(totals[m]["tpot_median"] < 0.25 for m in ("deepseek-v3", "qwen3-235b-a22b", "gpt-oss-120b"))
