"""recall@K against a plain Python computation."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.training.metrics import recall_at_k, top_k_accuracy


def brute_recall(top: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int) -> float:
    truth: dict[int, set[int]] = {}
    for r, i in zip(rows.tolist(), items.tolist(), strict=True):
        truth.setdefault(r, set()).add(i)
    per_row = [len(set(top[r, :k].tolist()) & bought) / len(bought) for r, bought in truth.items()]
    return sum(per_row) / len(per_row)


def test_recall_hand_computed() -> None:
    top = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    rows = np.array([0, 0, 0, 1, 1])  # customer 0 bought 1, 9 and 1 again; customer 1 bought 6; row 2 nothing
    items = np.array([1, 9, 1, 6, 5])
    # customer 0: distinct {1, 9}, top-2 {1, 2} -> 1/2; customer 1: {6, 5}, top-2 {4, 5} -> 1/2
    assert recall_at_k(top, rows, items, 2) == pytest.approx(0.5)
    # top-3: customer 0 -> 1/2, customer 1 -> 2/2
    assert recall_at_k(top, rows, items, 3) == pytest.approx(0.75)


def test_recall_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    top = np.stack([rng.permutation(200)[:50] for _ in range(300)])
    rows = rng.integers(0, 300, 2_000)
    items = rng.integers(0, 200, 2_000)
    for k in (1, 12, 50):
        assert recall_at_k(top, rows, items, k) == pytest.approx(brute_recall(top, rows, items, k), abs=1e-12)


def test_recall_of_string_ids_equals_the_recall_of_their_integer_codes() -> None:
    rng = np.random.default_rng(1)
    top = np.stack([rng.permutation(200)[:50] for _ in range(300)])
    rows, items = rng.integers(0, 300, 2_000), rng.integers(0, 200, 2_000)
    named = np.array([f"m{i} – ñ" for i in range(200)])  # a data set's article ids may be any strings
    for k in (1, 12, 50):
        assert recall_at_k(named[top], rows, named[items], k) == recall_at_k(top, rows, items, k)


def test_recall_rejects_short_lists() -> None:
    with pytest.raises(ValueError, match="recall@5"):
        recall_at_k(np.zeros((2, 3), dtype=int), np.array([0]), np.array([1]), 5)


def test_top_k_accuracy_hand_computed() -> None:
    # ranks = how many items score strictly higher than the true one; -1 = true item not in the catalogue
    ranks = np.array([0, 3, 9, -1])
    assert top_k_accuracy(ranks, 1) == pytest.approx(0.25)  # only rank 0
    assert top_k_accuracy(ranks, 4) == pytest.approx(0.5)  # ranks 0 and 3
    assert top_k_accuracy(ranks, 100) == pytest.approx(0.75)  # the missing one never counts
    with pytest.raises(ValueError, match="no pairs"):
        top_k_accuracy(np.array([], dtype=int), 1)
