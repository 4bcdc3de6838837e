"""Ranking metrics over whole catalogues, vectorised with numpy.

Recommendations are a matrix ``top`` of item ids (one row per customer, best first); the truth is a list of
(row, item) pairs. Each metric is checked in the tests against a plain Python computation.
"""

from __future__ import annotations

import numpy as np


def _distinct_pairs(rows: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (row, item) pairs of integer rows and integer item codes (:func:`_codes`)."""
    pairs = np.unique(np.stack([np.asarray(rows, np.int64), np.asarray(items, np.int64)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def hits_per_pair(top: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """For each (row, item) pair: is ``item`` among the first ``k`` entries of ``top[row]``?"""
    return (top[rows, :k] == items[:, None]).any(axis=1)


def recall_at_k(top: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int) -> float:
    """Mean over customers of |top-k ∩ bought| / |bought| (distinct items), customers with truth only."""
    if k > top.shape[1]:
        raise ValueError(f"recall@{k} needs at least {k} recommendations per row, got {top.shape[1]}")
    top, items = _codes(top[:, :k], items)  # a data set's ids may be strings
    rows, items = _distinct_pairs(rows, items)
    if len(rows) == 0:
        raise ValueError("recall@k of an empty truth set is undefined")
    hit = hits_per_pair(top, rows, items, k).astype(np.float64)
    hits = np.bincount(rows, hit, minlength=top.shape[0])
    bought = np.bincount(rows, None, minlength=top.shape[0])
    has_truth = bought > 0
    return float(np.mean(hits[has_truth] / bought[has_truth]))


def top_k_accuracy(ranks: np.ndarray, k: int) -> float:
    """Share of (query, true item) pairs whose true item is among the top ``k`` (TFRS ``FactorizedTopK``).

    ``ranks[i]`` is the number of catalogue items that score strictly higher than pair i's true item (so ties
    count in the item's favour, as in ``tf.math.in_top_k``), or -1 when the true item is not in the catalogue
    (a miss).
    """
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        raise ValueError("top-k accuracy of no pairs is undefined")
    return float(np.mean((ranks >= 0) & (ranks < k)))


# -- pipeline metrics (design §6): MAP@12, NDCG@12, recall@12, coverage ----------------------------------------
#
# Everything is derived from one boolean *hit matrix*: ``hits[i, j]`` says that entry j of row i's list is one of
# row i's truth items (the first time it appears in the list: a repeated recommendation never counts twice).


def _codes(top: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ids of any type (ints are their own codes), shared by the lists and the truth."""
    top, items = np.asarray(top), np.asarray(items)
    if np.issubdtype(top.dtype, np.integer) and np.issubdtype(items.dtype, np.integer):
        return top.astype(np.int64), items.astype(np.int64)
    vocab = np.unique(np.concatenate([top.ravel(), items]))
    return np.searchsorted(vocab, top), np.searchsorted(vocab, items)


def hit_matrix(top: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``hits`` [n_rows, min(k, N)] and the number of distinct truth items per row.

    ``top`` holds each row's list, best first; the truth is (row, item) pairs, duplicates allowed.
    """
    top, items = _codes(top[:, :k], items)
    rows, items = _distinct_pairs(rows, items)
    n_truth = np.bincount(rows, minlength=top.shape[0])
    order = np.argsort(top, axis=1, kind="stable")  # equal ids keep their list order: the first one is first
    ordered = np.take_along_axis(top, order, axis=1)
    repeat = np.zeros(top.shape, bool)
    np.put_along_axis(repeat, order, np.c_[np.zeros((len(top), 1), bool), ordered[:, 1:] == ordered[:, :-1]], axis=1)
    pair, col = np.nonzero((top[rows] == items[:, None]) & ~repeat[rows])
    hits = np.zeros(top.shape, bool)
    hits[rows[pair], col] = True
    return hits, n_truth


def average_precisions(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """AP@k per row (H&M Kaggle): Σ_j P(j)·rel(j) / min(n_truth, k); 0 for rows without truth."""
    hits = hits[:, :k].astype(np.float64)
    precision = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return (precision * hits).sum(axis=1) / np.maximum(np.minimum(n_truth, k), 1)


def ndcgs(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per row, binary relevance: DCG / the DCG of min(n_truth, k) hits at the top; 0 without truth."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discount[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal = np.r_[1.0, np.cumsum(discount)][np.minimum(n_truth, k)]  # ideal[0] = 1 avoids 0/0
    return dcg / ideal


def ranking_metrics(top: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int = 12) -> dict[str, float]:
    """``map@k``, ``ndcg@k`` and ``recall@k``, each the mean over rows with at least one truth item.

    Lists may be shorter than ``k`` (missing entries are misses). Recall is :func:`recall_at_k`'s: distinct items,
    |top-k ∩ truth| / |truth|.
    """
    hits, n_truth = hit_matrix(top, rows, items, k)
    has = n_truth > 0
    if not has.any():
        raise ValueError("ranking metrics of an empty truth set are undefined")
    recall = hits.sum(axis=1) / np.maximum(n_truth, 1)
    return {
        f"map@{k}": float(average_precisions(hits, n_truth, k)[has].mean()),
        f"ndcg@{k}": float(ndcgs(hits, n_truth, k)[has].mean()),
        f"recall@{k}": float(recall[has].mean()),
    }


def coverage(top: np.ndarray, catalogue_size: int, k: int = 12) -> float:
    """Catalogue coverage: distinct articles in the first ``k`` entries of all lists / catalogue size."""
    if catalogue_size < 1:
        raise ValueError("coverage needs a catalogue of at least one article")
    return float(len(np.unique(np.asarray(top)[:, :k])) / catalogue_size)
