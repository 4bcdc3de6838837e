"""MAP@12, NDCG@12, recall@12 and coverage against plain Python, and the pipeline table built from them."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from recsys.training.metrics import coverage, hit_matrix, ranking_metrics, recall_at_k
from recsys.training.pipeline_eval import evaluate, evaluate_pipeline, rerank
from recsys.training.retrieval_eval import Recommendations


def brute(top: list[list], truth: dict[int, set], k: int) -> dict[str, float]:
    """The textbook definitions, one customer at a time (Kaggle's apk: a repeated recommendation counts once)."""
    aps, ndcgs, recalls = [], [], []
    for row, actual in truth.items():
        predicted = top[row][:k]
        hits, score, dcg = 0, 0.0, 0.0
        for i, p in enumerate(predicted):
            if p in actual and p not in predicted[:i]:
                hits += 1
                score += hits / (i + 1)
                dcg += 1 / math.log2(i + 2)
        aps.append(score / min(len(actual), k))
        ndcgs.append(dcg / sum(1 / math.log2(i + 2) for i in range(min(len(actual), k))))
        recalls.append(hits / len(actual))
    n = len(truth)
    return {f"map@{k}": sum(aps) / n, f"ndcg@{k}": sum(ndcgs) / n, f"recall@{k}": sum(recalls) / n}


def truth_dict(rows: np.ndarray, items: np.ndarray) -> dict[int, set]:
    out: dict[int, set] = {}
    for r, i in zip(rows.tolist(), items.tolist(), strict=True):
        out.setdefault(r, set()).add(i)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_brute_force_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows, n_items, width = 200, 60, int(rng.integers(5, 20))  # some lists shorter than 12
    top = rng.integers(0, n_items, (n_rows, width))  # repeats inside a list happen
    rows = rng.integers(0, n_rows - 20, 700)  # the last 20 rows have no truth
    items = rng.integers(0, n_items, 700)  # duplicate (row, item) pairs happen
    got = ranking_metrics(top, rows, items, 12)
    expected = brute(top.tolist(), truth_dict(rows, items), 12)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got["map@12"] < got["recall@12"] < 1  # a non-trivial case
    assert coverage(top, n_items, 12) == len({i for r in top.tolist() for i in r[:12]}) / n_items


def test_recall_is_the_existing_recall_at_k() -> None:
    rng = np.random.default_rng(1)
    top = np.stack([rng.permutation(100)[:30] for _ in range(50)])
    rows, items = rng.integers(0, 50, 300), rng.integers(0, 100, 300)
    assert ranking_metrics(top, rows, items, 12)["recall@12"] == pytest.approx(recall_at_k(top, rows, items, 12))


def test_hand_computed() -> None:
    top = np.array([[5, 1, 7, 2], [3, 4, 5, 6], [9, 9, 8, 1]])
    rows = np.array([0, 0, 1, 1, 2, 2, 2])
    items = np.array([1, 2, 8, 8, 9, 8, 9])
    # row 0: truth {1, 2}, hits at 2 and 4 -> AP (1/2 + 2/4) / 2 = 0.5, recall 1
    # row 1: truth {8}, no hit -> 0, 0
    # row 2: truth {9, 8}, hits at 1 and 3 (the second 9 is a repeat) -> AP (1 + 2/3) / 2, recall 1
    got = ranking_metrics(top, rows, items, 12)
    assert got["map@12"] == pytest.approx((0.5 + 0 + (1 + 2 / 3) / 2) / 3)
    assert got["recall@12"] == pytest.approx(2 / 3)
    d = [1 / math.log2(i + 2) for i in range(4)]
    assert got["ndcg@12"] == pytest.approx(((d[1] + d[3]) / (d[0] + d[1]) + 0 + (d[0] + d[2]) / (d[0] + d[1])) / 3)
    hits, n_truth = hit_matrix(top, rows, items, 2)  # cut at k
    assert hits.tolist() == [[False, True], [False, False], [True, False]] and n_truth.tolist() == [2, 1, 2]


def test_edge_cases() -> None:
    top = np.array([[1, 2, 3]])
    assert ranking_metrics(top, np.array([0]), np.array([9]), 12) == {"map@12": 0, "ndcg@12": 0, "recall@12": 0}
    # more than 12 truths: AP and NDCG are normalised by 12, not by the number of truths
    many = np.arange(20)[None, :]
    got = ranking_metrics(many, np.zeros(20, int), np.arange(20), 12)
    assert got == pytest.approx({"map@12": 1.0, "ndcg@12": 1.0, "recall@12": 12 / 20})
    # string ids work like integers
    strings = ranking_metrics(np.array([["a", "b"]]), np.array([0]), np.array(["b"]), 12)
    assert strings["map@12"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="empty truth"):
        ranking_metrics(top, np.array([], int), np.array([], int), 12)
    with pytest.raises(ValueError, match="catalogue"):
        coverage(top, 0)


def test_evaluate_counts_customers_without_a_list_as_zero() -> None:
    recs = Recommendations(np.array(["a", "b"]), np.array([[1, 2], [3, 4]]))
    truth = pl.DataFrame({"customer_id": ["a", "b", "c", "a"], "article_id": [1, 4, 1, 1]})
    got = evaluate(recs, truth, catalogue_size=10, k=12)
    # a: AP 1, b: AP 1/2 (hit at 2), c: no list -> 0
    assert got["map@12"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert got["recall@12"] == pytest.approx(2 / 3)
    assert got["coverage@12"] == pytest.approx(4 / 10)

    table = evaluate_pipeline(
        {"model": recs, "nothing": Recommendations(np.array(["z"]), np.array([[1, 2]]))}, truth, 10
    )
    assert table.columns == ["method", "map@12", "ndcg@12", "recall@12", "coverage@12"]
    assert table.get_column("method").to_list() == ["model", "nothing"]
    assert table.row(1)[1:] == (0.0, 0.0, 0.0, 0.0)


class _Scores:
    """A stand-in ranker: scores are a column of the frame."""

    def score(self, frame: pl.DataFrame) -> np.ndarray:
        return frame.get_column("s").to_numpy()


def test_rerank_orders_each_customers_candidates_by_score() -> None:
    frame = pl.DataFrame(
        {
            "customer_id": ["b", "b", "b", "a", "a", "a"],
            "article_id": [1, 2, 3, 4, 5, 6],
            "retrieval_rank": [0, 1, 2, 0, 1, 2],
            "s": [0.1, 0.9, 0.1, 0.5, 0.2, 0.7],
        }
    )
    recs = rerank(frame, _Scores())  # type: ignore[arg-type]
    assert recs.customer_ids.tolist() == ["a", "b"]
    # b: 2 first, then the tie 1 / 3 in retrieval order
    assert recs.article_ids.tolist() == [[6, 4, 5], [2, 1, 3]]
    assert recs.scores is not None and recs.scores[0].tolist() == [0.7, 0.5, 0.2]
    assert rerank(frame, _Scores(), n=2).article_ids.tolist() == [[6, 4], [2, 1]]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only 3 candidates"):
        rerank(frame, _Scores(), n=4)  # type: ignore[arg-type]
