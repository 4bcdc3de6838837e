"""Retrieval metrics over the whole catalogue, against plain loops and against TFRS's own FactorizedTopK."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.training import retrieval_eval
from recsys.training.retrieval_eval import (
    Recommendations,
    embed,
    recall,
    recommend,
    top_k_accuracies,
    truth_ranks,
)


def _random(n_queries: int, n_items: int, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(n_queries, dim)).astype(np.float32)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    return queries, items, rng.integers(0, n_items, n_queries)


def brute_top_k_accuracy(queries: np.ndarray, items: np.ndarray, true_rows: np.ndarray, k: int) -> float:
    hits = 0
    for q, true in zip(queries.tolist(), true_rows.tolist(), strict=True):
        if true < 0:
            continue
        scores = [sum(a * b for a, b in zip(q, item, strict=True)) for item in items.tolist()]
        best = sorted(range(len(scores)), key=lambda j: -scores[j])[:k]
        hits += true in best
    return hits / len(queries)


def test_top_k_accuracy_matches_a_plain_loop() -> None:
    queries, items, true_rows = _random(60, 300)
    true_rows[:5] = -1  # bought articles missing from the catalogue are misses
    ranks = truth_ranks(queries, items, true_rows)
    got = top_k_accuracies(ranks, (1, 10, 50, 100))
    for k in (1, 10, 50, 100):
        assert got[f"top_{k}_accuracy"] == pytest.approx(brute_top_k_accuracy(queries, items, true_rows, k))


def test_truth_ranks_by_hand() -> None:
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], np.float32)
    queries = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    # query 0 scores items 1, 0, 0.7: item 2 has one better (item 0); query 1 scores 0, 1, 0.7: item 0 has two
    assert truth_ranks(queries, items, np.array([2, 0])).tolist() == [1, 2]
    assert top_k_accuracies(np.array([1, 2]), (1, 2, 3)) == {
        "top_1_accuracy": 0.0,
        "top_2_accuracy": 0.5,
        "top_3_accuracy": 1.0,
    }


@pytest.mark.parametrize("chunk", [7, 1000])
def test_excluded_rows_never_outrank_the_true_row_as_in_a_plain_loop(chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(retrieval_eval, "_SCORE_CELLS", chunk * 300)  # queries scored `chunk` at a time
    queries, items, true_rows = _random(70, 300, seed=3)
    true_rows[:4] = -1
    rng = np.random.default_rng(4)
    pairs = np.unique(np.stack([rng.integers(0, 70, 2_000), rng.integers(0, 300, 2_000)], axis=1), axis=0)
    pairs = np.concatenate([pairs, np.stack([np.arange(10, 20), true_rows[10:20]], axis=1)])  # a query's own row
    at, row = pairs[::-1, 0].copy(), pairs[::-1, 1].copy()  # any order
    gone = {(i, j) for i, j in zip(at.tolist(), row.tolist(), strict=True)}
    expected = []
    for i, (q, true) in enumerate(zip(queries.tolist(), true_rows.tolist(), strict=True)):
        if true < 0:
            expected.append(-1)
            continue
        scores = [sum(a * b for a, b in zip(q, item, strict=True)) for item in items.tolist()]
        expected.append(sum(s > scores[true] for j, s in enumerate(scores) if (i, j) not in gone or j == true))
    got = truth_ranks(queries, items, true_rows, excluded=(at, row))
    assert got.tolist() == expected
    whole = truth_ranks(queries, items, true_rows)
    assert (got <= whole).all() and (got < whole).any()


def test_top_k_accuracy_matches_tfrs_factorized_top_k() -> None:
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    items, _, true_rows = _random(500, 500, seed=1)
    rng = np.random.default_rng(1)
    queries = items[true_rows[:200]] + rng.normal(scale=1.5, size=(200, 8)).astype(np.float32)  # noisy hints
    true_rows = true_rows[:200]
    ks = (1, 10, 50, 100)
    index = tfrs.layers.factorized_top_k.BruteForce(k=max(ks))
    index.index(tf.constant(items), tf.range(len(items), dtype=tf.int64))
    metric = tfrs.metrics.FactorizedTopK(candidates=index, ks=ks)
    # id-based evaluation: TFRS's score-based mode compares an elementwise dot product with matmul scores, and
    # rounding can make the true article outrank itself (it did here, at k=1)
    metric.update_state(tf.constant(queries), tf.constant(items[true_rows]), true_candidate_ids=tf.constant(true_rows))
    tfrs_values = [float(v) for v in metric.result()]
    ours = top_k_accuracies(truth_ranks(queries, items, true_rows), ks)
    print("TFRS FactorizedTopK", tfrs_values, "ours", ours)
    assert tfrs_values == pytest.approx([ours[f"top_{k}_accuracy"] for k in ks], abs=1e-6)
    assert tfrs_values[0] > 0.0 and tfrs_values[-1] < 1.0  # a non-trivial case


def test_recommend_returns_the_best_articles_in_order() -> None:
    queries, items, _ = _random(20, 100, seed=2)
    article_ids = np.arange(1000, 1100)
    recs = recommend(queries, items, np.arange(20), article_ids, n=10)
    expected = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(recs.article_ids, article_ids[expected])
    assert recs.scores is not None and (np.diff(recs.scores, axis=1) <= 1e-6).all()
    frame = recs.to_frame()
    assert frame.columns == ["customer_id", "article_ids", "scores"] and frame.height == 20


def test_recall_counts_customers_without_recommendations_as_misses() -> None:
    recs = Recommendations(np.array(["a", "b"]), np.array([[1, 2], [3, 4]]))
    truth = pl.DataFrame({"customer_id": ["a", "a", "b", "c"], "article_id": [1, 9, 4, 1]})
    # a: 1 of {1, 9} -> 1/2; b: 1 of {4}; c has no recommendations -> 0
    assert recall(recs, truth, (2,)) == {"recall@2": pytest.approx((0.5 + 1.0 + 0.0) / 3)}
    assert recall(recs, truth, (1,)) == {"recall@1": pytest.approx((0.5 + 0.0 + 0.0) / 3)}


def test_embed_batches_rows() -> None:
    calls: list[int] = []

    def tower(batch: dict[str, np.ndarray]) -> np.ndarray:
        calls.append(len(batch["x"]))
        return batch["x"][:, None] * np.ones((1, 3))

    out = embed(tower, {"x": np.arange(10.0)}, batch_size=4)
    assert calls == [4, 4, 2] and out.shape == (10, 3) and out[9, 2] == 9.0
    assert embed(tower, {"x": np.zeros(0)}).shape == (0, 3)
