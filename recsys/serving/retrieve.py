"""Candidate generation: nearest articles from the vector index, and recent popularity below them.

Candidates are rows ``query`` (the instance's position in the request), ``article_id``, ``retrieval_score``
(Float32), ``retrieval_rank`` (Int32, 0 = best, the ranker's convention) and ``tier``: 0 for the model's
candidates, 1 for popular articles. Every instance gets the popular tier, below the model's: the order stage
uses it to answer instances without signal and to fill an answer that filtering left shorter than ``top_k``, so
an answer is never short while the catalogue has articles to show.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.store.base import FeatureGroup
from recsys.training.ranking_features import RETRIEVAL_RANK, RETRIEVAL_SCORE

QUERY, TIER = "query", "tier"
MODEL_TIER, POPULAR_TIER = 0, 1


def retrieve(group: FeatureGroup, embeddings: np.ndarray, queries: np.ndarray, k: int) -> pl.DataFrame:
    """The ``k`` nearest articles of each embedding (row i of ``embeddings`` is query ``queries[i]``)."""
    if len(queries) == 0:
        return empty_candidates(group_id_dtype(group))
    hits = group.find_neighbors(embeddings, k=k)
    rows = hits.get_column(QUERY).to_numpy()
    return pl.DataFrame(
        {
            QUERY: queries.astype(np.int64)[rows],
            ARTICLE_ID: hits.get_column(ARTICLE_ID),
            RETRIEVAL_SCORE: hits.get_column("score").cast(pl.Float32),
            RETRIEVAL_RANK: positions(rows).astype(np.int32),  # hits come best first within each query
            TIER: np.full(len(rows), MODEL_TIER, np.int8),
        }
    )


def positions(queries: np.ndarray) -> np.ndarray:
    """The position of each row within its run of equal ``queries`` (sorted): 0, 1, 2, ... per query."""
    n = len(queries)
    if n == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, queries[1:] != queries[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def group_id_dtype(group: FeatureGroup) -> pl.DataType:
    schema = getattr(group, "schema", None)
    return schema[ARTICLE_ID] if schema is not None and ARTICLE_ID in schema else pl.Int64()


def empty_candidates(id_dtype: pl.DataType) -> pl.DataFrame:
    columns = {QUERY: pl.Int64, ARTICLE_ID: id_dtype, RETRIEVAL_SCORE: pl.Float32, RETRIEVAL_RANK: pl.Int32}
    return pl.DataFrame(schema={**columns, TIER: pl.Int8})


def for_queries(tier: pl.DataFrame, n: int) -> pl.DataFrame:
    """The same candidate rows (without ``query``) for each of queries 0..n-1."""
    if n == 1:
        return tier.select(pl.lit(0, pl.Int64).alias(QUERY), pl.all())
    return pl.DataFrame({QUERY: np.arange(n, dtype=np.int64)}).join(tier, how="cross")
