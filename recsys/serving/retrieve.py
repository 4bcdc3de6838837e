"""Candidate generation: nearest articles from the vector index, and recent popularity below them.

Candidates are rows ``query`` (the instance's position in the request), ``article_id``, ``retrieval_score``
(Float32), ``retrieval_rank`` (Int32, 0 = best, the ranker's convention) and ``tier``: 0 for the model's
candidates, 1 for popular articles. Every instance gets the popular tier, below the model's: the order stage
uses it to answer instances without signal and to fill an answer that filtering left shorter than ``top_k``, so
an answer is never short while the catalogue has articles to show.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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
    return hits.select(
        pl.Series(QUERY, queries.astype(np.int64)[rows]),
        pl.col(ARTICLE_ID),
        pl.col("score").cast(pl.Float32).alias(RETRIEVAL_SCORE),
        pl.int_range(pl.len(), dtype=pl.Int32).over(QUERY).alias(RETRIEVAL_RANK),
        pl.lit(MODEL_TIER, pl.Int8).alias(TIER),
    )


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


class Popularity:
    """The most sold articles of the last 7 days (ties: 30 days, then id) as the popularity tier.

    Read from the ``article_popularity`` online table — the whole table, so it is cached rather than read per
    request (H&M: 105k rows, tens of milliseconds). ``describe`` turns the top ids into their showable article
    rows (the filter and display columns), cached alike. Once ``refresh_s`` seconds old, the tier is re-read in a
    background thread while requests keep the previous one: a refresh never delays a request.
    """

    def __init__(
        self, group: FeatureGroup, n: int, refresh_s: float, describe: Callable[[pl.Series], pl.DataFrame]
    ) -> None:
        self.group, self.n, self.refresh_s, self.describe = group, n, refresh_s, describe
        self._tier: pl.DataFrame | None = None
        self._read_at = 0.0
        self._refreshing = threading.Lock()

    def tier(self) -> pl.DataFrame:
        """``article_id``, ``retrieval_score`` (units sold in 7 days), ``retrieval_rank``, ``tier`` + article rows."""
        if self._tier is None:
            with self._refreshing:
                if self._tier is None:
                    self._refresh()
        elif time.monotonic() - self._read_at > self.refresh_s and self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh_then_release, daemon=True, name="popularity-refresh").start()
        assert self._tier is not None
        return self._tier

    def _refresh_then_release(self) -> None:
        try:
            self._refresh()
        finally:
            self._refreshing.release()

    def _refresh(self) -> None:
        top = (
            self.group.read(online=True)
            .sort(["units_7d", "units_30d", ARTICLE_ID], descending=[True, True, False])
            .head(self.n)
            .select(
                ARTICLE_ID,
                pl.col("units_7d").cast(pl.Float32).alias(RETRIEVAL_SCORE),
                pl.int_range(pl.len(), dtype=pl.Int32).alias(RETRIEVAL_RANK),
                pl.lit(POPULAR_TIER, pl.Int8).alias(TIER),
            )
        )
        rows = self.describe(top.get_column(ARTICLE_ID))
        self._tier = top.join(rows, on=ARTICLE_ID, how="inner", maintain_order="left")
        self._read_at = time.monotonic()
