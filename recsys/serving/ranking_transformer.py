"""The ranking transformer: retrieve, filter and read features before the ranker; order after it.

Its request comes from the query transformer: per instance the query embedding (null without signal), the
customer's online row as the query transformer saw it (with the features the request sent), ``top_k`` and the
request time, each checked by :mod:`~recsys.serving.ranking_request` (a bad one is a 400 naming it). Preprocess,
for every instance of the request at once:

1. *retrieve* — the articles not to show again (:func:`~recsys.serving.filters.recently_bought`) and the
   nearest articles of the embedding in the run's vector index, over-fetched by the number of excluded articles;
2. *filter* — in the in-memory catalogue (:mod:`~recsys.serving.catalogue`, re-read from the online store in the
   background), which holds only the articles that may be shown: the first ``retrieve_k`` hits not excluded,
   without unknown and inactive ones, then recent popularity as a lower tier (less the excluded articles), as
   rows of the catalogue (which also holds the ranker's article features, prepared once per refresh);
3. *features* — the ranker's rows, the very values of training's
   :func:`~recsys.training.ranking_features.candidate_features`, sent to the ranking predictor as columns: read
   from the customer rows and the catalogue's prepared arrays (:mod:`~recsys.serving.request_columns`), or, for
   inputs only frames read, built by :func:`~recsys.serving.request_features.request_features` (tests hold all
   three equal).

Postprocess puts the scores back on the candidates and orders them (:func:`~recsys.serving.order.order_arrays`), then
returns article ids, scores and display fields per instance. An instance without an embedding (no signal) is
answered from the popularity tier only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
from kserve import Model
from kserve.errors import InferenceError

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.pipeline.groups import ARTICLES
from recsys.pipeline.views import CUSTOMERS_VIEW, RANKING_VIEW
from recsys.serving.catalogue import UNITS_7D, UNITS_30D, CatalogueSnapshot, Refreshing
from recsys.serving.customers import online_schema, rows_from_wire
from recsys.serving.filters import recently_bought, showable
from recsys.serving.model_set import (
    RANKING_SERVICE,
    check_ranker_inputs,
    embeddings_group,
    query_schema,
    ranker_schema,
    view,
)
from recsys.serving.options import ServingOptions
from recsys.serving.order import SCORE, order_arrays
from recsys.serving.ranking_request import CustomerColumns, parse_ranking_request
from recsys.serving.request_columns import serving_features
from recsys.serving.request_features import request_features
from recsys.serving.requests import Instance, utc_now
from recsys.serving.retrieve import MODEL_TIER, POPULAR_TIER, QUERY, Candidates, neighbours
from recsys.serving.wire import Hop, Payload, Timings, frame_to_columns, listed, rounded, timed
from recsys.store.base import Project
from recsys.training.ranking_features import RETRIEVAL_RANK, RETRIEVAL_SCORE
from recsys.training.runs import Run

SOURCES = {MODEL_TIER: "model", POPULAR_TIER: "popularity"}
logger = logging.getLogger(__name__)


@dataclass
class RankingPlan:
    """One request between preprocess and postprocess."""

    instances: list[Instance]
    has_embedding: np.ndarray
    catalogue: CatalogueSnapshot  # the one the candidates' rows refer to (a refresh may swap it meanwhile)
    candidates: Candidates  # the model tier's rows are the ones sent to the ranker, in order
    wire: Payload
    started: float
    timings: Timings = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)


class RankingTransformer(Model):
    """Embeddings → candidates → filtered → ranker rows; scores → ordered answers."""

    def __init__(
        self,
        project: Project,
        run: Run,
        options: ServingOptions,
        *,
        predictor: Hop | None = None,
        name: str = RANKING_SERVICE,
    ) -> None:
        super().__init__(name)
        self.project, self.run, self.options = project, run, options
        self._predictor = predictor

    def load(self) -> bool:
        self.schema = ranker_schema(self.run)
        self.customers = view(self.project, CUSTOMERS_VIEW)
        tower = query_schema(self.run)
        self.id_kind = tower.customer_id_kind
        self.customer_schema = online_schema(self.customers, CUSTOMER_ID, tower.customer_id_kind)
        self.customer_columns = CustomerColumns.of(self.customer_schema)  # what a request's customer row may hold
        self.articles = view(self.project, RANKING_VIEW)
        self.article_schema = online_schema(self.articles, ARTICLE_ID, tower.article_id_kind)
        check_ranker_inputs(self.run, self.schema, self.customers, self.articles)
        self.index = embeddings_group(self.project, self.run)
        self.dimension = self.index.embedding_index.dimension if self.index.embedding_index else None
        have = self.articles.query.features
        self.display = [c for c in self.options.display_columns if c in have]
        # what the order stage reads besides the scores: the display fields and the product and type columns
        wanted = (*self.display, self.options.group_column, self.options.type_column)
        self.carried = [c for c in dict.fromkeys(wanted) if c and c in have]
        keys = (self.options.group_column, self.options.type_column)
        self.coded = [c for c in dict.fromkeys(keys) if c and c in have]  # the order stage's keys, also as codes
        self.catalogue = Refreshing(self._read_catalogue, self.options.popularity_refresh_s)
        self.catalogue.get()
        self._warm_up()
        self.ready = True
        return self.ready

    def _read_catalogue(self) -> CatalogueSnapshot:
        """Every article's ``ranking`` row (one batched online read) that may be shown, with the columns the
        stages read: the ranker's article inputs, the carried columns and the popularity counts."""
        ids = ARTICLES.get(self.project.feature_store).read(online=True).get_column(ARTICLE_ID)
        if ids.len():
            rows = self.articles.get_feature_vectors(ids.to_frame(), allow_missing=True)
        else:  # the store refuses an empty batch
            rows = self.article_schema.to_frame()
        rows = showable(rows, self.options)
        wanted = (*self.schema.article_columns(), *self.carried, UNITS_7D, UNITS_30D)
        rows = rows.select(ARTICLE_ID, *(c for c in dict.fromkeys(wanted) if c in rows.columns))
        extra = self.options.bought_last_n if self.options.filter_bought else 0
        snapshot = CatalogueSnapshot.of(rows, self.options.retrieve_k + extra, self.carried, self.coded)
        features = serving_features(snapshot.rows, self.schema, self.customer_schema)
        if features is None:
            logger.info("the ranker's features are built as frames: a column's dtype is one the row path does not read")
        return replace(snapshot, features=features)

    def _warm_up(self) -> None:
        """Load the vector index now rather than on the first request."""
        if self.dimension:
            self.index.find_neighbors(np.zeros(self.dimension, np.float32), k=1)

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> RankingPlan:  # type: ignore[override]
        started = time.perf_counter()
        timings: Timings = {}
        request = parse_ranking_request(
            payload,
            self.run.run_id,
            self.options,
            dimension=self.dimension,
            id_kind=self.id_kind,
            customers=self.customer_columns,
        )
        instances, embeddings, rows = request.instances, request.embeddings, request.rows
        n = len(instances)
        times = [i.request_time for i in instances]
        has_embedding = np.array([e is not None for e in embeddings], dtype=bool)
        with timed(timings, "retrieve"):
            exclude = recently_bought(rows, times, self.options)
            queries = np.flatnonzero(has_embedding)
            matrix = np.asarray([embeddings[q] for q in queries] if len(queries) else np.zeros((0, 1)), np.float32)
            # over-fetch by the longest exclusion list, so that k remain after the filter
            k = self.options.retrieve_k + max(len(e) for e in exclude)
            hits = neighbours(self.index, matrix, queries, k)
        with timed(timings, "filter"):
            catalogue = self.catalogue.get()
            candidates = catalogue.candidates(hits, n, exclude, self.options.retrieve_k)
        with timed(timings, "features"):
            m = candidates.n_model
            model = (candidates.query[:m], candidates.at[:m], candidates.score[:m], candidates.rank[:m])
            columns = catalogue.features.columns(rows, times, *model) if catalogue.features else None
            if columns is None:  # inputs only the frame path reads
                columns = frame_to_columns(
                    self._frame_features(rows, catalogue, candidates, times), self.schema.features
                )
            wire = {"inputs": columns, "run_id": self.run.run_id}
        return RankingPlan(instances, has_embedding, catalogue, candidates, wire, started, timings)

    def _frame_features(
        self, rows: list[dict[str, Any]], catalogue: CatalogueSnapshot, candidates: Candidates, times: list[datetime]
    ) -> pl.DataFrame:
        """The ranker's rows of the model tier through frames (:func:`request_features`)."""
        customers = rows_from_wire(rows, self.customer_schema)
        m, n = candidates.n_model, len(rows)
        ids = customers.get_column(CUSTOMER_ID)
        to_rank = (
            pl.Series(QUERY, candidates.query[:m])
            .to_frame()
            .hstack(
                [
                    ids.new_from_index(0, m) if n == 1 else ids[pl.Series(candidates.query[:m], dtype=pl.UInt32)],
                    catalogue.article_ids(candidates.at[:m]),
                    pl.Series(RETRIEVAL_SCORE, candidates.score[:m]),
                    pl.Series(RETRIEVAL_RANK, candidates.rank[:m]),
                ]
            )
        )
        return self._features(to_rank, customers, catalogue.model_rows(candidates), times)

    def _features(
        self, to_rank: pl.DataFrame, customers: pl.DataFrame, articles: pl.DataFrame, times: list[datetime]
    ) -> pl.DataFrame:
        """The ranker's rows (those of ``to_rank``, in order), computed as of each instance's request time (usually
        one time per request)."""
        if len(set(times)) <= 1 or to_rank.height == 0:
            return request_features(to_rank, customers, articles, times[0] if times else utc_now(), self.schema)
        day = np.array(times, dtype=object)[to_rank.get_column(QUERY).to_numpy()]
        parts, rows = [], []
        for as_of in sorted(set(times)):
            at = np.flatnonzero(day == as_of)
            part = to_rank[pl.Series(at, dtype=pl.UInt32)]
            parts.append(request_features(part, customers, articles, as_of, self.schema))
            rows.append(at)
        return pl.concat(parts)[pl.Series(np.argsort(np.concatenate(rows)), dtype=pl.UInt32)]

    async def predict(self, plan: RankingPlan, headers: dict[str, str] | None = None) -> RankingPlan:  # type: ignore[override]
        if plan.candidates.n_model == 0:
            return plan
        with timed(plan.timings, "rank"):
            if self._predictor is not None:
                response = await self._predictor(plan.wire, headers)
            else:  # KServe's own call to --predictor_host, whose encoder takes no numpy arrays
                response = await super().predict({**plan.wire, "inputs": listed(plan.wire["inputs"])}, headers)
        if response.get("run_id") != self.run.run_id:
            raise InferenceError(
                f"the ranking predictor serves run {response.get('run_id')!r}, not {self.run.run_id!r}"
            )
        plan.scores = response["predictions"]
        plan.timings |= {f"rank.{k}": v for k, v in response.get("timings_ms", {}).items()}
        return plan

    async def postprocess(  # type: ignore[override]
        self, plan: RankingPlan, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Payload:
        with timed(plan.timings, "order"):
            predictions = self._predictions(plan, *self._order(plan))
        plan.timings["total"] = (time.perf_counter() - plan.started) * 1000
        return {"predictions": predictions, "run_id": self.run.run_id, "timings_ms": rounded(plan.timings)}

    def _order(self, plan: RankingPlan) -> tuple[np.ndarray, np.ndarray]:
        """The answer's candidate rows (in query, position order) and their scores: the ranker's on the model
        tier, else the retrieval score (the popular tier keeps its own, also for an article the model tier holds
        too: the order stage drops that one)."""
        candidates, catalogue = plan.candidates, plan.catalogue
        score = candidates.score.astype(np.float64)
        if len(plan.scores) != candidates.n_model:
            raise InferenceError(f"the ranking predictor sent {len(plan.scores)} scores for {candidates.n_model} rows")
        score[: candidates.n_model] = plan.scores
        at, options = candidates.at, self.options
        rows, _ = order_arrays(
            candidates.query,
            candidates.tier,
            score,
            candidates.rank,
            catalogue.id_keys(at),
            catalogue.codes(options.group_column, at),
            catalogue.codes(options.type_column, at) if options.max_per_type > 0 else None,
            np.array([i.top_k for i in plan.instances]),
            options,
        )
        return rows, score[rows]

    def _predictions(self, plan: RankingPlan, rows: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        """The JSON answer of each instance (``rows``: the answer's candidate rows, in query, position order)."""
        at = plan.candidates.at[rows]
        shown = plan.catalogue.carried[pl.Series(at, dtype=pl.UInt32)]
        fields = [ARTICLE_ID, *self.display]
        columns = [shown.get_column(name).to_list() for name in fields]
        queries, tiers = plan.candidates.query[rows].tolist(), plan.candidates.tier[rows].tolist()
        answers: list[list[dict[str, Any]]] = [[] for _ in plan.instances]
        for row, (q, score, tier) in enumerate(zip(queries, scores.tolist(), tiers, strict=True)):
            item = {name: values[row] for name, values in zip(fields, columns, strict=True)}
            item[SCORE] = round(score, 6)
            item["source"] = SOURCES[tier]
            answers[q].append(item)
        return [
            {
                "customer_id": instance.customer_id,
                "source": SOURCES[MODEL_TIER] if plan.has_embedding[q] else SOURCES[POPULAR_TIER],
                "article_ids": [item[ARTICLE_ID] for item in answers[q]],
                "scores": [item[SCORE] for item in answers[q]],
                "articles": answers[q],
                "run_id": self.run.run_id,
            }
            for q, instance in enumerate(plan.instances)
        ]
