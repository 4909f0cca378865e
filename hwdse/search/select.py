"""Selecting what a study reports: duplicates merged, an epsilon front, one best design by a stated rule.

* **Duplicates**: rows with the same design (every searched value equal) after the first are flagged
  ``duplicate`` and never on the front.
* **Epsilon front** (:func:`epsilon_front`): each objective's value is placed in a box of relative
  width ``epsilon`` (log scale; linear boxes of ``epsilon`` x the largest magnitude for a column with
  a value <= 0); a row is on the front when no other row's box vector is at least as good in every
  objective and better in one, and it is its box's representative (the lexicographic pick within the
  box). Values closer than epsilon are ties: the front holds one design per box.
* **Best** (:func:`best_index`): ``lexicographic``: the best first objective, ties within its epsilon
  broken by the next objectives in order; ``balanced``: the front row nearest the ideal point, each
  objective scaled to the front's range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwdse.search.operating import lexicographic
from hwdse.search.points import pareto_mask

__all__ = ["duplicates", "epsilon_front", "best_index"]


def duplicates(keys: Sequence[tuple]) -> np.ndarray:
    """True for every row whose key appeared in an earlier row."""
    seen: set[tuple] = set()
    out = np.zeros(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        out[i] = key in seen
        seen.add(key)
    return out


def _boxes(values: np.ndarray, valid: np.ndarray, epsilon: Sequence[float], signs: np.ndarray) -> np.ndarray:
    """Integer box coordinates (smaller is better) of signed objective ``values`` (n x k)."""
    raw = values * signs  # back to the metric's own sign
    out = np.zeros(values.shape, dtype=float)
    for j, eps in enumerate(epsilon):
        col = raw[valid, j]
        if col.size and np.all(col > 0):
            box = np.floor(np.log(np.where(raw[:, j] > 0, raw[:, j], np.nan)) / np.log1p(eps))
        else:
            width = eps * (np.max(np.abs(col)) if col.size and np.max(np.abs(col)) > 0 else 1.0)
            box = np.floor(raw[:, j] / width)
        out[:, j] = box * signs[j]
    return out


def epsilon_front(values: np.ndarray, valid: np.ndarray, epsilon: Sequence[float], signs: np.ndarray,
                  keep: int | None = None) -> np.ndarray:
    """Rows on the epsilon front of signed ``values`` (n x k, smaller is better) among ``valid`` rows;
    ``signs`` (+1 minimize, -1 maximize) recover each metric's own sign for its boxes; ``keep``: a row
    that represents its box whatever the within-box pick (the selected best)."""
    ok = valid & np.all(np.isfinite(values), axis=1)
    if not ok.any():
        return np.zeros(len(values), dtype=bool)
    boxes = _boxes(values, ok, epsilon, signs)
    _, box_id = np.unique(np.where(ok[:, None], boxes, 0), axis=0, return_inverse=True)
    box_id = box_id.reshape(-1)
    rep = np.zeros(len(values), dtype=bool)
    for b in np.unique(box_id[ok]):
        members = ok & (box_id == b)
        if keep is not None and members[keep]:
            rep[keep] = True
        else:
            rep[int(lexicographic(values, members, epsilon))] = True
    return pareto_mask(boxes, ["minimize"] * values.shape[1], rep) & rep


def best_index(values: np.ndarray, valid: np.ndarray, epsilon: Sequence[float], rule: str) -> int | None:
    """Row of the best design among ``valid`` rows of signed ``values`` (None: none valid)."""
    ok = valid & np.all(np.isfinite(values), axis=1)
    if not ok.any():
        return None
    if rule == "lexicographic" or values.shape[1] == 1:
        return int(lexicographic(values, ok, epsilon))
    front = pareto_mask(values, ["minimize"] * values.shape[1], ok)
    v = values[front]
    span = np.ptp(v, axis=0)
    scaled = (v - v.min(axis=0)) / np.where(span > 0, span, 1.0)
    return int(np.flatnonzero(front)[np.argmin(np.linalg.norm(scaled, axis=1))])
