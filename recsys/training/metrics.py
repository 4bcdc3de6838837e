"""Ranking metrics over whole catalogues, vectorised with numpy.

Recommendations are a matrix ``top`` of item ids (one row per customer, best first); the truth is a list of
(row, item) pairs. Each metric is checked in the tests against a plain Python computation.
"""

from __future__ import annotations

import numpy as np


def _distinct_pairs(rows: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.unique(np.stack([np.asarray(rows, np.int64), np.asarray(items, np.int64)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def hits_per_pair(top: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """For each (row, item) pair: is ``item`` among the first ``k`` entries of ``top[row]``?"""
    return (top[rows, :k] == items[:, None]).any(axis=1)


def recall_at_k(top: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int) -> float:
    """Mean over customers of |top-k ∩ bought| / |bought| (distinct items), customers with truth only."""
    if k > top.shape[1]:
        raise ValueError(f"recall@{k} needs at least {k} recommendations per row, got {top.shape[1]}")
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
