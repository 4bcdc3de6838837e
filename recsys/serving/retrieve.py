"""Candidate generation: nearest articles from the vector index, and recent popularity below them.

Candidates are rows ``query`` (the instance's position in the request), ``article_id``, ``retrieval_score``
(Float32), ``retrieval_rank`` (Int32, 0 = best, the ranker's convention) and ``tier``: 0 for the model's
candidates, 1 for popular articles. Every instance gets the popular tier, below the model's: the order stage
uses it to answer instances without signal and to fill an answer that filtering left shorter than ``top_k``, so
an answer is never short while the catalogue has articles to show. The batch job holds them as a frame
(:func:`retrieve`); a serving request as arrays over the in-memory catalogue's rows (:class:`Candidates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.store.base import FeatureGroup
from recsys.training.ranking_features import RETRIEVAL_RANK, RETRIEVAL_SCORE

QUERY, TIER = "query", "tier"
MODEL_TIER, POPULAR_TIER = 0, 1


class Neighbours(NamedTuple):
    """The vector index's answer as arrays, best first within each query: the instance of each row, the article
    ids (numpy, or a polars Series for ids numpy does not hold natively) and the scores."""

    query: np.ndarray
    ids: np.ndarray | pl.Series
    scores: np.ndarray


@dataclass(frozen=True)
class Candidates:
    """A request's candidate rows as arrays, the model tier's first: ``at`` is each row's article as a row of the
    catalogue snapshot that made them (:meth:`~recsys.serving.catalogue.CatalogueSnapshot.candidates`)."""

    query: np.ndarray  # int64
    at: np.ndarray  # int64
    score: np.ndarray  # float32, the retrieval score
    rank: np.ndarray  # int32, the retrieval rank
    tier: np.ndarray  # int8
    n_model: int  # rows of the model tier


def neighbours(group: FeatureGroup, embeddings: np.ndarray, queries: np.ndarray, k: int) -> Neighbours:
    """The ``k`` nearest articles of each embedding (row i of ``embeddings`` is query ``queries[i]``)."""
    if len(queries) == 0:
        ids = pl.Series(ARTICLE_ID, [], dtype=group_id_dtype(group))
        return Neighbours(np.zeros(0, np.int64), ids, np.zeros(0, np.float32))
    hits = group.find_neighbors(embeddings, k=k)
    found = hits.get_column(ARTICLE_ID)
    ids = found.to_numpy() if found.dtype.is_integer() else found
    scores = hits.get_column("score")
    scores = (scores if scores.dtype == pl.Float32 else scores.cast(pl.Float32)).to_numpy()
    return Neighbours(queries.astype(np.int64)[hits.get_column(QUERY).to_numpy()], ids, scores)


def retrieve(group: FeatureGroup, embeddings: np.ndarray, queries: np.ndarray, k: int) -> pl.DataFrame:
    """:func:`neighbours` as the model tier's candidate rows."""
    hits = neighbours(group, embeddings, queries, k)
    if len(hits.query) == 0:
        return empty_candidates(group_id_dtype(group))
    return pl.DataFrame(
        {
            QUERY: hits.query,
            ARTICLE_ID: hits.ids,
            RETRIEVAL_SCORE: hits.scores,
            RETRIEVAL_RANK: positions(hits.query).astype(np.int32),  # hits come best first within each query
            TIER: np.full(len(hits.query), MODEL_TIER, np.int8),
        }
    )


def positions(queries: np.ndarray) -> np.ndarray:
    """The position of each row within its run of equal ``queries`` (sorted): 0, 1, 2, ... per query."""
    n = len(queries)
    if n == 0 or queries[0] == queries[-1]:  # one run: a request of one instance
        return np.arange(n)
    starts = np.concatenate(([0], np.flatnonzero(queries[1:] != queries[:-1]) + 1))
    return np.arange(n) - np.repeat(starts, np.diff(starts, append=n))


def group_id_dtype(group: FeatureGroup) -> pl.DataType:
    schema = getattr(group, "schema", None)
    return schema[ARTICLE_ID] if schema is not None and ARTICLE_ID in schema else pl.Int64()


def empty_candidates(id_dtype: pl.DataType) -> pl.DataFrame:
    columns = {QUERY: pl.Int64, ARTICLE_ID: id_dtype, RETRIEVAL_SCORE: pl.Float32, RETRIEVAL_RANK: pl.Int32}
    return pl.DataFrame(schema={**columns, TIER: pl.Int8})
