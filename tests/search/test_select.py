"""Selection on constructed fronts: epsilon boxes, merged duplicates, the best by its stated rule."""

from __future__ import annotations

import numpy as np

from hwdse.search.select import best_index, duplicates, epsilon_front

MIN2 = np.array([1.0, 1.0])


def test_points_closer_than_epsilon_share_one_box_and_the_secondary_picks() -> None:
    # TPOT (ms) and area (mm^2), both minimized: three designs tie on TPOT within 1 %
    v = np.array([[7.948, 420.0], [7.949, 409.0], [7.950, 418.0], [9.0, 300.0], [12.0, 250.0], [12.05, 260.0]])
    valid = np.ones(len(v), dtype=bool)
    front = epsilon_front(v, valid, [0.01, 0.01], MIN2)
    assert front.tolist() == [False, True, False, True, True, False]  # one per tie; 12.05/260 is dominated
    assert best_index(v, valid, [0.01, 0.01], "lexicographic") == 1  # tie on TPOT, least area
    assert best_index(v, valid, [1e-6, 0.01], "lexicographic") == 0  # no tie: the fastest


def test_a_finer_epsilon_keeps_more_of_the_front() -> None:
    t = np.linspace(1.0, 2.0, 201)
    v = np.stack([t, 1.0 / t], axis=1)  # every point non-dominated
    valid = np.ones(len(t), dtype=bool)
    coarse = epsilon_front(v, valid, [0.05, 0.05], MIN2).sum()
    fine = epsilon_front(v, valid, [0.005, 0.005], MIN2).sum()
    assert 10 <= coarse < fine <= 201


def test_maximized_objectives_and_invalid_rows() -> None:
    signs = np.array([-1.0, 1.0])  # maximize goodput, minimize TPOT: values arrive signed (smaller is better)
    raw = np.array([[100.0, 0.02], [99.5, 0.01], [50.0, 0.005], [200.0, 0.001]])
    valid = np.array([True, True, True, False])  # the best-looking row is infeasible
    v = raw * signs
    assert best_index(v, valid, [0.01, 0.01], "lexicographic") == 1  # 99.5 ties 100 and has the lower TPOT
    assert not epsilon_front(v, valid, [0.01, 0.01], signs)[3]
    assert best_index(v, np.zeros(4, dtype=bool), [0.01, 0.01], "lexicographic") is None


def test_balanced_picks_the_point_nearest_the_ideal() -> None:
    v = np.array([[1.0, 10.0], [2.0, 2.5], [10.0, 1.0], [3.0, 9.0]])
    assert best_index(v, np.ones(4, dtype=bool), [0.01, 0.01], "balanced") == 1


def test_duplicates_after_the_first_are_flagged() -> None:
    keys = [("384", "'hbm3e'"), ("256", "'hbm3'"), ("384", "'hbm3e'"), ("384", "'hbm3e'")]
    assert duplicates(keys).tolist() == [False, False, True, True]
