"""Retrieval evaluation over the whole catalogue (design §6), for the model and the baselines alike.

Two views of the same ranking:

* **top-K accuracy per transaction** — the TFRS ``FactorizedTopK`` definition: for every (query, bought
  article) pair, is the bought article among the K best of the *whole* catalogue for that query? Each pair's
  query is the retrieval row itself (the customer's state as of the purchase day). Ties count in the
  article's favour, as in ``tf.math.in_top_k``: it is in the top K when fewer than K articles score strictly
  higher.
* **recall@K per customer** — the customers who bought in the evaluation week, queried once at its start, and
  the distinct articles each bought that week (see :func:`recsys.training.metrics.recall_at_k`).

Everything works on embeddings and plain callables (``inputs -> [n, dim]`` arrays), so a Keras tower, a
reloaded SavedModel or a stub in a test are scored by the same code; nothing here imports TensorFlow.
Recommendations of every method share one type, :class:`Recommendations`, so that baselines and the model
are scored by the same metric code and the ranker reads candidates in one format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import faiss
import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, T_DAT
from recsys.features.common import cutoff
from recsys.training.metrics import recall_at_k, top_k_accuracy
from recsys.training.retrieval_data import (
    TowerFeatures,
    candidate_inputs,
    catalogue_rows,
    customer_attributes,
    queries_as_of,
    query_inputs,
)

ACCURACY_KS = (1, 10, 50, 100)
RECALL_KS = (12, 50, 100, 200)
Tower = Callable[[Mapping[str, np.ndarray]], np.ndarray]
_SCORE_CELLS = 1 << 24  # scores computed per chunk of queries: 16M floats (64 MB)


@dataclass(frozen=True)
class Recommendations:
    """Top-N article ids per customer, best first: ``article_ids[i]`` is for ``customer_ids[i]``."""

    customer_ids: np.ndarray  # [n_customers]
    article_ids: np.ndarray  # [n_customers, N]
    scores: np.ndarray | None = None  # [n_customers, N], when the method has scores

    def __post_init__(self) -> None:
        if self.article_ids.ndim != 2 or len(self.article_ids) != len(self.customer_ids):
            raise ValueError(f"article_ids must be [{len(self.customer_ids)}, N], got {self.article_ids.shape}")

    @property
    def n(self) -> int:
        return self.article_ids.shape[1]

    def to_frame(self) -> pl.DataFrame:
        """``customer_id``, ``article_ids`` (list, best first) and, when known, ``scores`` (list)."""
        columns = {CUSTOMER_ID: self.customer_ids, ARTICLE_ID + "s": list(self.article_ids)}
        if self.scores is not None:
            columns["scores"] = list(self.scores)
        return pl.DataFrame(columns)


def embed(tower: Tower, inputs: Mapping[str, np.ndarray], batch_size: int = 4096) -> np.ndarray:
    """Run ``tower`` over ``inputs`` in batches of rows; float32 [n, dim] (n may be 0)."""
    n = len(next(iter(inputs.values())))
    parts = [
        np.asarray(tower({k: v[start : start + batch_size] for k, v in inputs.items()}), dtype=np.float32)
        for start in range(0, max(n, 1), batch_size)
    ]
    return np.concatenate(parts)[:n]


def truth_ranks(
    queries: np.ndarray,
    candidates: np.ndarray,
    true_rows: np.ndarray,
    excluded: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """For each query: how many catalogue rows score strictly higher than its true row (-1 when it has none).

    Scores are dot products, computed in float32 chunks; the true row's score is read from the same score
    matrix, so an article never outranks itself through rounding. ``excluded`` holds (query index, catalogue
    row) pairs that never count as scoring higher, such as the articles a customer had already bought; a
    query's own true row is never excluded.
    """
    queries = np.ascontiguousarray(queries, np.float32)
    candidates = np.ascontiguousarray(candidates, np.float32)
    ranks = np.full(len(queries), -1, np.int64)
    if excluded is not None:
        order = np.argsort(excluded[0], kind="stable")
        excluded_queries, excluded_rows = np.asarray(excluded[0])[order], np.asarray(excluded[1])[order]
    chunk = max(1, _SCORE_CELLS // max(len(candidates), 1))
    for start in range(0, len(queries), chunk):
        rows = true_rows[start : start + chunk]
        valid = rows >= 0
        if not valid.any():
            continue
        scores = queries[start : start + chunk] @ candidates.T
        true = scores[np.arange(len(scores)), np.where(valid, rows, 0)]
        if excluded is not None:
            first, last = np.searchsorted(excluded_queries, [start, start + len(rows)])
            at, row = excluded_queries[first:last] - start, excluded_rows[first:last]
            keep = row != rows[at]
            scores[at[keep], row[keep]] = -np.inf
        ranks[start : start + chunk][valid] = (scores > true[:, None]).sum(axis=1)[valid]
    return ranks


def top_n(queries: np.ndarray, candidates: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact maximum-inner-product search (faiss ``IndexFlatIP``): scores and catalogue rows, [q, n] each."""
    if n > len(candidates):
        raise ValueError(f"asked for the top {n} of a catalogue of {len(candidates)}")
    index = faiss.IndexFlatIP(candidates.shape[1])
    index.add(np.ascontiguousarray(candidates, np.float32))
    scores, rows = index.search(np.ascontiguousarray(queries, np.float32), n)
    return scores, rows


def recommend(
    queries: np.ndarray, candidates: np.ndarray, customer_ids: np.ndarray, article_ids: np.ndarray, n: int
) -> Recommendations:
    """The ``n`` best catalogue articles for each query (``article_ids[j]`` is catalogue row j)."""
    scores, rows = top_n(queries, candidates, n)
    return Recommendations(np.asarray(customer_ids), np.asarray(article_ids)[rows], scores)


def top_k_accuracies(ranks: np.ndarray, ks: Sequence[int] = ACCURACY_KS) -> dict[str, float]:
    """``top_{k}_accuracy`` for every k from :func:`truth_ranks`."""
    return {f"top_{k}_accuracy": top_k_accuracy(ranks, k) for k in ks}


def recall(recs: Recommendations, truth: pl.DataFrame, ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """``recall@{k}`` per customer over the customers in ``truth`` (``customer_id``, ``article_id`` rows).

    A customer of ``truth`` without recommendations counts with recall 0.
    """
    pairs = truth.select(CUSTOMER_ID, ARTICLE_ID).unique()
    if pairs.height == 0:
        raise ValueError("recall of an empty truth set is undefined")
    rows = pl.DataFrame({CUSTOMER_ID: recs.customer_ids}).with_row_index("_row")
    known = pairs.join(rows, on=CUSTOMER_ID, how="inner")
    n_truth = pairs.get_column(CUSTOMER_ID).n_unique()
    n_known = known.get_column(CUSTOMER_ID).n_unique()
    out = {}
    for k in ks:
        value = 0.0
        if n_known:
            value = recall_at_k(
                recs.article_ids,
                known.get_column("_row").to_numpy().astype(np.int64),
                known.get_column(ARTICLE_ID).to_numpy(),
                k,
            )
        out[f"recall@{k}"] = value * n_known / n_truth
    return out


def retrieve(
    query_tower: Tower,
    schema: TowerFeatures,
    customers: pl.DataFrame,
    history: pl.DataFrame,
    articles: pl.DataFrame,
    catalogue: np.ndarray,
    as_of: datetime | date,
    n: int,
) -> Recommendations:
    """The top ``n`` catalogue articles for each of ``customers`` at ``as_of`` (their order is kept).

    ``customers`` has one row per customer with their attributes (e.g. the ``customers`` view, whose latest
    history is replaced by the history as of ``as_of`` from ``history``, the retrieval rows); ``catalogue`` is
    the candidate tower's embedding of ``articles`` (row j embeds ``articles[j]``). This is how candidates are
    generated for the ranker, one customer-week at a time, with the catalogue embedded once.
    """
    state = queries_as_of(customers, history, articles, as_of, schema)
    queries = embed(query_tower, query_inputs(state, schema, at=as_of))
    ids = articles.get_column(ARTICLE_ID).to_numpy()
    return recommend(queries, catalogue, state.get_column(CUSTOMER_ID).to_numpy(), ids, n)


def evaluate_retrieval(
    query_tower: Tower,
    candidate_tower: Tower,
    schema: TowerFeatures,
    history: pl.DataFrame,
    eval_rows: pl.DataFrame,
    articles: pl.DataFrame,
    *,
    customers: pl.DataFrame | None = None,
    as_of: datetime | date | None = None,
    accuracy_ks: Sequence[int] = ACCURACY_KS,
    recall_ks: Sequence[int] = RECALL_KS,
    n: int | None = None,
) -> tuple[dict[str, float], Recommendations]:
    """Top-K accuracy over ``eval_rows`` and recall@K of its customers queried at ``as_of``.

    ``history`` holds the retrieval rows before the evaluation period (their history feeds the as-of query
    state), ``articles`` the whole catalogue, ``customers`` the customers' attributes (default: from the
    retrieval rows). ``as_of`` defaults to the first day of ``eval_rows``; the truth of recall is every
    purchase in ``eval_rows`` from that day on. Returns the metrics and the top-``n`` recommendations
    (``n`` defaults to the largest recall K) for those customers.
    """
    start = cutoff(as_of or eval_rows.get_column(T_DAT).min())
    catalogue = embed(candidate_tower, candidate_inputs(articles, schema))
    pair_queries = embed(query_tower, query_inputs(eval_rows, schema))
    metrics = top_k_accuracies(truth_ranks(pair_queries, catalogue, catalogue_rows(eval_rows, articles)), accuracy_ks)
    truth = eval_rows.filter(pl.col(T_DAT) >= start).select(CUSTOMER_ID, ARTICLE_ID)
    attributes = customers if customers is not None else customer_attributes(history, eval_rows, schema=schema)
    who = truth.select(CUSTOMER_ID).unique(maintain_order=True).join(attributes, on=CUSTOMER_ID, how="left")
    recs = retrieve(query_tower, schema, who, history, articles, catalogue, start, n or max(recall_ks))
    return metrics | recall(recs, truth, recall_ks), recs
