"""Candidate generation over a real (local, temporary) vector index and popularity table."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.config import load_settings
from recsys.serving.retrieve import MODEL_TIER, POPULAR_TIER, Popularity, for_queries, retrieve
from recsys.store import EmbeddingIndex, Project, connect


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return connect(load_settings(backend="local", home=tmp_path / "home"))


def test_nearest_articles_per_query(project: Project) -> None:
    group = project.feature_store.get_or_create_feature_group(
        "candidate_embeddings", 1, ["article_id"], online_enabled=True, embedding_index=EmbeddingIndex(dimension=2)
    )
    vectors = [[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]
    group.insert(pl.DataFrame({"article_id": [10, 11, 12, 13], "embedding": vectors}))
    # the batch holds the embeddings of queries 1 and 3 of the request (query 0 and 2 had no signal)
    out = retrieve(group, np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), np.array([1, 3]), k=2)
    assert out.select("query", "article_id", "retrieval_rank").rows() == [
        (1, 10, 0),
        (1, 11, 1),
        (3, 12, 0),
        (3, 11, 1),
    ]
    assert out["retrieval_score"].dtype == pl.Float32 and out["tier"].unique().to_list() == [MODEL_TIER]
    empty = retrieve(group, np.zeros((0, 2), np.float32), np.array([], dtype=np.int64), k=2)
    assert empty.height == 0 and empty.schema == out.schema


def test_popularity_tier_is_cached(project: Project) -> None:
    group = project.feature_store.get_or_create_feature_group(
        "article_popularity", 1, ["article_id"], event_time="as_of", online_enabled=True
    )
    as_of = datetime(2020, 9, 1)
    group.insert(
        pl.DataFrame(
            {"article_id": [1, 2, 3, 4], "as_of": [as_of] * 4, "units_7d": [5, 9, 5, 0], "units_30d": [6, 9, 8, 1]}
        )
    )
    described: list[list[int]] = []

    def describe(ids: pl.Series) -> pl.DataFrame:  # the showable rows: article 3 is off sale
        described.append(ids.to_list())
        return pl.DataFrame({"article_id": ids}).filter(pl.col("article_id") != 3).with_columns(name=pl.lit("x"))

    popularity = Popularity(group, n=3, refresh_s=3600, describe=describe)
    tier = popularity.tier()
    assert tier.select("article_id", "retrieval_score", "retrieval_rank").rows() == [(2, 9.0, 0), (1, 5.0, 2)]
    assert tier["tier"].unique().to_list() == [POPULAR_TIER] and "name" in tier.columns
    assert popularity.tier() is tier and described == [[2, 3, 1]]  # read once, then cached
    assert for_queries(tier, 1)["query"].to_list() == [0, 0]
    group.insert(pl.DataFrame({"article_id": [4], "as_of": [as_of], "units_7d": [20], "units_30d": [20]}))
    popularity.refresh_s = 0.0  # stale: the next call still answers at once, a background thread re-reads
    assert popularity.tier() is tier
    popularity.refresh_s = 3600.0
    deadline = time.monotonic() + 10
    while popularity.tier() is tier and time.monotonic() < deadline:
        time.sleep(0.01)
    assert popularity.tier()["article_id"].to_list()[0] == 4
    assert for_queries(tier, 3).group_by("query").len().sort("query").rows() == [(0, 2), (1, 2), (2, 2)]
