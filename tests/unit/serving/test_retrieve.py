"""Candidate generation over a real (local, temporary) vector index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.config import load_settings
from recsys.serving.retrieve import MODEL_TIER, retrieve
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
