"""``inference_pipeline embed``: the candidate tower over every article → the ``candidate_embeddings`` group.

Every article of the catalogue is embedded, including those no one bought in training: the candidate tower
reads their attributes and description, so a new article gets a meaningful vector (its id goes to the
out-of-vocabulary bucket). The group's version is the run's candidate tower version (see :mod:`runs`), so the
index serving searches always comes from the same tower as the query embeddings it is searched with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.pipeline.views import ARTICLES_VIEW
from recsys.store.base import FeatureGroup, Project
from recsys.store.embedding import EmbeddingIndex
from recsys.training.retrieval_data import candidate_inputs
from recsys.training.retrieval_eval import embed
from recsys.training.runs import CANDIDATE_MODEL, EMBEDDINGS_GROUP, RETRIEVAL_MODELS, Run, find_run
from recsys.training.two_tower import load_tower_artifacts

EMBEDDING = "embedding"
EXACT_UP_TO = 2_000_000  # a full scan up to this many articles; IVF-PQ beyond (design §4)
# From this many articles the scan reads half-precision vectors: at H&M's 105k a search takes 0.5 ms instead of
# 1 ms (one request's budget is 5) and finds 99.9% of the exact top 120; smaller catalogues stay exact.
HALF_PRECISION_FROM = 50_000


@dataclass(frozen=True)
class EmbedResult:
    run_id: str
    group_version: int
    articles: int
    dimension: int
    seconds: float


def embeddings_group(project: Project, run: Run, dimension: int | None = None, n: int = 0) -> FeatureGroup:
    """The run's ``candidate_embeddings`` group (created when ``dimension`` is given)."""
    fs = project.feature_store
    if dimension is None:
        return fs.get_feature_group(EMBEDDINGS_GROUP, run.embeddings_version)
    kind = "flat" if n < HALF_PRECISION_FROM else "fp16" if n <= EXACT_UP_TO else "ivfpq"
    index = EmbeddingIndex(EMBEDDING, dimension, "ip", kind)
    return fs.get_or_create_feature_group(
        EMBEDDINGS_GROUP,
        run.embeddings_version,
        primary_key=[ARTICLE_ID],
        online_enabled=True,
        description=f"candidate tower embeddings of every article, run {run.run_id}",
        embedding_index=index,
    )


def catalogue_embeddings(project: Project, run: Run, batch_size: int = 8192) -> pl.DataFrame:
    """``article_id``, ``embedding`` (float32 list) for every article the ``articles`` view holds."""
    tower, schema = load_tower_artifacts(run.model(CANDIDATE_MODEL).download())
    articles, _ = project.feature_store.get_feature_view(*ARTICLES_VIEW).training_data()
    vectors = embed(tower, candidate_inputs(articles, schema), batch_size).astype(np.float32)
    return pl.DataFrame(
        {ARTICLE_ID: articles.get_column(ARTICLE_ID), EMBEDDING: pl.Series(EMBEDDING, vectors)},
    ).with_columns(pl.col(EMBEDDING).cast(pl.List(pl.Float32)))


def embed_catalogue(project: Project, run_id: str | None = None, log: Callable[[str], None] = print) -> EmbedResult:
    """Embed the whole catalogue with the run's candidate tower (default: the newest run that has one)."""
    started = time.perf_counter()
    run = find_run(project.model_registry, run_id, need=RETRIEVAL_MODELS)
    frame = catalogue_embeddings(project, run)
    dimension = len(frame.get_column(EMBEDDING)[0])
    group = embeddings_group(project, run, dimension, frame.height)
    group.insert(frame, overwrite=True)
    seconds = time.perf_counter() - started
    log(
        f"embedded {frame.height:,} articles ({dimension} dims) with run {run.run_id} → "
        f"{EMBEDDINGS_GROUP} v{run.embeddings_version} in {seconds:.1f} s"
    )
    return EmbedResult(run.run_id, run.embeddings_version, frame.height, dimension, seconds)
