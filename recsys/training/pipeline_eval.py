"""The whole pipeline scored as a recommender (design §6): MAP@12, NDCG@12, recall@12 and catalogue coverage.

Every method — retrieval order, retrieval + ranker, the baselines, the oracle on synthetic data — is a
:class:`~recsys.training.retrieval_eval.Recommendations` and is scored by the same code against the same truth
(the test week's purchases), so the table compares like with like.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.training.metrics import coverage, ranking_metrics
from recsys.training.ranking import Ranker
from recsys.training.ranking_features import RETRIEVAL_RANK
from recsys.training.retrieval_eval import Recommendations

K = 12


def rerank(candidates: pl.DataFrame, ranker: Ranker, n: int | None = None) -> Recommendations:
    """Each customer's candidates ordered by the ranker's score (ties: retrieval order), the best ``n`` kept.

    ``candidates`` are rows of one point in time (one row per customer and article) with the ranker's features.
    ``n`` defaults to the smallest number of candidates a customer has. Customers come out sorted by id.
    """
    if candidates.height == 0:
        raise ValueError("rerank: no candidates")
    return order_candidates(candidates, ranker.score(candidates), n)


def order_candidates(candidates: pl.DataFrame, scores: np.ndarray, n: int | None = None) -> Recommendations:
    """:func:`rerank` with the candidates' scores given (e.g. an oracle's), one per row of ``candidates``."""
    scored = candidates.select(CUSTOMER_ID, ARTICLE_ID, RETRIEVAL_RANK).with_columns(pl.Series("_score", scores))
    ordered = scored.sort([CUSTOMER_ID, "_score", RETRIEVAL_RANK], descending=[False, True, False])
    lists = ordered.group_by(CUSTOMER_ID, maintain_order=True).agg(ARTICLE_ID, "_score")
    shortest = int(lists.get_column(ARTICLE_ID).list.len().min())  # type: ignore[arg-type]
    n = shortest if n is None else n
    if n > shortest:
        raise ValueError(f"rerank: asked for {n} articles but a customer has only {shortest} candidates")
    head = lists.select(CUSTOMER_ID, pl.col(ARTICLE_ID, "_score").list.head(n))
    return Recommendations(
        head.get_column(CUSTOMER_ID).to_numpy(),
        head.get_column(ARTICLE_ID).explode().to_numpy().reshape(head.height, n),
        head.get_column("_score").explode().to_numpy().reshape(head.height, n),
    )


def evaluate(recs: Recommendations, truth: pl.DataFrame, catalogue_size: int, k: int = K) -> dict[str, float]:
    """``map@k``, ``ndcg@k``, ``recall@k`` over the customers of ``truth`` and ``coverage@k`` of their lists.

    A customer of ``truth`` without a list counts with 0 everywhere (as in retrieval recall).
    """
    pairs = truth.select(CUSTOMER_ID, ARTICLE_ID).unique()
    if pairs.height == 0:
        raise ValueError("evaluation against an empty truth set is undefined")
    rows = pl.DataFrame({CUSTOMER_ID: pl.Series(recs.customer_ids).cast(pairs.schema[CUSTOMER_ID])})
    known = pairs.join(rows.with_row_index("_row"), on=CUSTOMER_ID, how="inner")
    n_truth, n_known = pairs.get_column(CUSTOMER_ID).n_unique(), known.get_column(CUSTOMER_ID).n_unique()
    out = {f"map@{k}": 0.0, f"ndcg@{k}": 0.0, f"recall@{k}": 0.0, f"coverage@{k}": 0.0}
    if n_known:
        row = known.get_column("_row").to_numpy().astype(np.int64)
        values = ranking_metrics(recs.article_ids, row, known.get_column(ARTICLE_ID).to_numpy(), k)
        out |= {name: value * n_known / n_truth for name, value in values.items()}
        out[f"coverage@{k}"] = coverage(recs.article_ids[np.unique(row)], catalogue_size, k)
    return out


def evaluate_pipeline(
    methods: Mapping[str, Recommendations], truth: pl.DataFrame, catalogue_size: int, k: int = K
) -> pl.DataFrame:
    """One row per method: ``method``, ``map@k``, ``ndcg@k``, ``recall@k``, ``coverage@k`` (input order)."""
    if not methods:
        raise ValueError("evaluate_pipeline: no methods to evaluate")
    rows = [{"method": name, **evaluate(recs, truth, catalogue_size, k)} for name, recs in methods.items()]
    return pl.DataFrame(rows, schema={"method": pl.String} | {c: pl.Float64 for c in rows[0] if c != "method"})
