"""``inference_pipeline batch``: every customer's top-K, scored in bulk, into the ``recommendations`` group.

The nightly job of design §7: the same loaded objects as the in-process chain (one consistent run: query tower,
vector index, ranker, popularity tier, filter and order rules), driven over large batches of customers instead of
one request at a time. Every customer means every customer served online (:func:`customer_ids`): those of the
``customers`` group, and the shop's new buyers, who have a ``customer_history`` row but no attributes (the query
transformer reads them as it reads a customer the store has only a history of). Per batch of customers, with no
Python work per customer:

1. one batched online read of the ``customers`` view (as the query transformer does per request; a customer with
   no ``customers`` row gets null attributes beside their history, as there);
2. the query tower's inputs with training's vectorised :func:`~recsys.training.retrieval_data.query_inputs` (the
   values serving builds row by row in :mod:`recsys.serving.tower_inputs`; the tests hold them equal), then the
   tower over the whole batch;
3. one FAISS search for the batch, over-fetched by the longest already-bought list, and the filters of
   :mod:`recsys.serving.filters` as anti-joins: already bought in the window, unknown or inactive articles;
4. the ranker's rows by :func:`~recsys.training.ranking_features.candidate_features` and CatBoost over the block;
5. :func:`recsys.serving.order.order` for every customer at once (model tier first, one article per
   ``product_code``, ``top_k``).

The answers are the chain's answers for the same run and request time (a test compares them). The showable
articles and the popular tier are the ranking transformer's in-memory catalogue (:mod:`recsys.serving.catalogue`).

The group holds one row per customer and computation time (primary key ``customer_id``, event time
``computed_at``): a rerun at the same ``computed_at`` upserts those rows, a later one adds a snapshot offline and
replaces the online row, which is what a client reads (``overwrite`` replaces the whole group instead). An
earlier one adds its snapshot offline only: online, the newest ``computed_at`` wins, so the job warns. That is
also why a request time after tomorrow is refused: its rows would shadow every later run until that day.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.errors import RecsysError
from recsys.features.common import cutoff, naive_utc
from recsys.features.customer_history import LAST_ARTICLES
from recsys.pipeline.groups import CUSTOMER_HISTORY, CUSTOMERS, GroupDef
from recsys.serving.chain import InProcessChain
from recsys.serving.filters import LAST_PURCHASE
from recsys.serving.options import ServingOptions
from recsys.serving.order import CODE, POSITION, SCORE, order
from recsys.serving.requests import utc_now
from recsys.serving.retrieve import MODEL_TIER, POPULAR_TIER, QUERY, TIER, retrieve
from recsys.store.base import Project
from recsys.store.errors import NotFoundError
from recsys.training.ranking_features import RETRIEVAL_RANK, RETRIEVAL_SCORE, candidate_features
from recsys.training.retrieval_data import query_inputs
from recsys.training.retrieval_eval import embed

COMPUTED_AT, RUN_ID, ARTICLE_IDS, SCORES, SOURCE = "computed_at", "run_id", "article_ids", "scores", "source"
RECOMMENDATIONS = GroupDef(
    "recommendations",
    1,
    (CUSTOMER_ID,),
    COMPUTED_AT,
    True,
    "Top-K articles per customer from the batch job: run id, ranked article ids and their scores.",
)
SOURCES = {MODEL_TIER: "model", POPULAR_TIER: "popularity"}
STAGES = ("load", "customers", "query_tower", "retrieve", "features", "rank", "order", "write")
Progress = Callable[[int, int], None]  # (customers done, customers in all)


class BatchError(RecsysError):
    """A batch job argument is out of range (the message names it)."""


@dataclass(frozen=True)
class BatchResult:
    run_id: str
    customers: int
    computed_at: datetime
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def customers_per_second(self) -> float:
        return self.customers / self.seconds if self.seconds else 0.0


class BatchScorer:
    """The chain's loaded objects, applied to a block of customers at one request time."""

    def __init__(self, chain: InProcessChain, request_time: datetime) -> None:
        self.chain, self.when = chain, request_time
        self.options: ServingOptions = chain.ranking_transformer.options
        self.stage_seconds = dict.fromkeys(STAGES, 0.0)
        ranking = chain.ranking_transformer
        # what order() reads besides scores (display fields are not stored, so they are not carried)
        wanted = [self.options.group_column, self.options.type_column if self.options.max_per_type else ""]
        self.carried = [c for c in dict.fromkeys(wanted) if c and c in ranking.carried]
        # the order stage's keys are carried as integer codes too: the snapshot's, for both tiers
        carried = [*self.carried, *(c + CODE for c in ranking.coded if c in self.carried)]
        catalogue = ranking.catalogue.get()
        self.articles = catalogue.rows
        self.shown = catalogue.carried.select(ARTICLE_ID, *carried)
        self.popular = catalogue.popular.select(ARTICLE_ID, RETRIEVAL_SCORE, RETRIEVAL_RANK, TIER, *carried)
        attributes = [c for c in chain.query_transformer.attributes if c != CUSTOMER_ID]
        self.signal = pl.any_horizontal(pl.col(attributes).is_not_null()) if attributes else pl.lit(False)

    def _timed(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.stage_seconds[stage] += now - started
        return now

    def score(self, customer_ids: pl.Series, top_k: int) -> pl.DataFrame:
        """``customer_id``, ``article_ids``, ``scores``, ``source`` for a block of customers (in their order)."""
        chain, options, n = self.chain, self.options, customer_ids.len()
        t = time.perf_counter()
        customers = chain.query_transformer.customers.get_feature_vectors(
            customer_ids.alias(CUSTOMER_ID).to_frame(), allow_missing=True
        )
        history = pl.col(LAST_ARTICLES).list.len().fill_null(0) > 0 if LAST_ARTICLES in customers.columns else False
        signal = customers.select((self.signal | history).fill_null(False)).to_series().to_numpy()
        queries = np.flatnonzero(signal)
        t = self._timed("customers", t)

        tower = chain.query_predictor.tower
        inputs = query_inputs(customers.filter(pl.Series(signal)), chain.query_transformer.schema, at=self.when)
        vectors = embed(tower, inputs, batch_size=max(len(queries), 1)) if len(queries) else np.zeros((0, 1))
        t = self._timed("query_tower", t)

        banned = self._recently_bought(customers)
        longest = banned.group_by(QUERY).len().get_column("len").max() if banned.height else 0
        index = chain.ranking_transformer.index
        model = retrieve(index, vectors.astype(np.float32), queries, options.retrieve_k + int(longest or 0))
        if banned.height:
            banned = banned.with_columns(pl.col(ARTICLE_ID).cast(model.schema[ARTICLE_ID]))
            model = model.join(banned, on=[QUERY, ARTICLE_ID], how="anti", maintain_order="left")
        model = model.filter(pl.int_range(pl.len()).over(QUERY) < options.retrieve_k)
        model = model.join(self.shown, on=ARTICLE_ID, how="inner", maintain_order="left")
        t = self._timed("retrieve", t)

        to_rank = model.select(
            QUERY,
            customer_ids.alias(CUSTOMER_ID).gather(model.get_column(QUERY)),
            ARTICLE_ID,
            RETRIEVAL_SCORE,
            RETRIEVAL_RANK,
        )
        schema = chain.ranking_transformer.schema
        features = candidate_features(to_rank, customers, self.articles, self.when, schema)
        t = self._timed("features", t)

        scores = chain.ranking_predictor.ranker.score(features.select(schema.features))
        t = self._timed("rank", t)

        model = model.with_columns(pl.Series(SCORE, scores, dtype=pl.Float64))
        if not model.select(QUERY, ARTICLE_ID).equals(features.select(QUERY, ARTICLE_ID)):
            raise AssertionError("candidate_features changed the order of the candidate rows")
        answer = self._order(model, banned, n, top_k)
        lists = answer.group_by(QUERY, maintain_order=True).agg(
            pl.col(ARTICLE_ID).alias(ARTICLE_IDS), pl.col(SCORE).alias(SCORES)
        )
        source = np.where(signal, SOURCES[MODEL_TIER], SOURCES[POPULAR_TIER])
        out = (
            pl.DataFrame({QUERY: np.arange(n, dtype=np.int64), CUSTOMER_ID: customer_ids, SOURCE: source})
            .join(lists, on=QUERY, how="left", maintain_order="left")
            .select(CUSTOMER_ID, ARTICLE_IDS, SCORES, SOURCE)
        )
        self._timed("order", t)
        return out

    def _order(self, model: pl.DataFrame, banned: pl.DataFrame, n: int, top_k: int) -> pl.DataFrame:
        """:func:`order` over the model's candidates and, below them, the popular tier (as the ranking
        transformer does), with the popular tier joined only where it can matter.

        The order stage puts every model row before every popular row and keeps rows first come first served,
        so where the model's rows alone fill ``top_k`` the popular rows can never enter the answer. Only the
        other customers (no signal, or a model list that filtering left short) get the popular tier; it keeps
        its popularity score, as in the chain (a popular article the model also ranked is a duplicate of the
        model's row, which comes first).
        """
        top = np.full(n, top_k)
        answer = order(model, top, self.options)
        counts = np.bincount(answer.get_column(QUERY).to_numpy(), minlength=n)
        short = np.flatnonzero(counts < top_k)
        if not len(short):
            return answer
        popular = pl.DataFrame({QUERY: short.astype(np.int64)}).join(self.popular, how="cross")
        if banned.height:
            popular = popular.join(banned, on=[QUERY, ARTICLE_ID], how="anti", maintain_order="left")
        popular = popular.with_columns(pl.col(RETRIEVAL_SCORE).cast(pl.Float64).alias(SCORE))
        redo = pl.concat([model.filter(pl.col(QUERY).is_in(short)), popular.select(model.columns)])
        kept = answer.filter(~pl.col(QUERY).is_in(short))
        return pl.concat([kept, order(redo, top, self.options)]).sort(QUERY, POSITION)

    def _recently_bought(self, customers: pl.DataFrame) -> pl.DataFrame:
        """Rows ``query``, ``article_id`` not to show again: :func:`recsys.serving.filters.recently_bought`'s
        rule (the first ``bought_last_n`` of the last purchases, when the latest is within the window), in bulk."""
        options = self.options
        empty = pl.DataFrame(schema={QUERY: pl.Int64, ARTICLE_ID: pl.Int64})
        if not options.filter_bought or options.bought_last_n == 0 or LAST_ARTICLES not in customers.columns:
            return empty
        if LAST_PURCHASE not in customers.columns:
            return empty
        age = (pl.lit(cutoff(self.when), pl.Datetime("us")) - pl.col(LAST_PURCHASE).dt.truncate("1d")).dt.total_days()
        return (
            customers.select(
                pl.int_range(pl.len(), dtype=pl.Int64).alias(QUERY),
                pl.col(LAST_ARTICLES).list.head(options.bought_last_n).list.unique(maintain_order=True),
                (age <= options.bought_window_days).fill_null(False).alias("_recent"),
            )
            .filter(pl.col("_recent"))
            .select(QUERY, pl.col(LAST_ARTICLES).alias(ARTICLE_ID))
            .explode(ARTICLE_ID)
            .drop_nulls(ARTICLE_ID)
        )


def check_request_time(when: datetime, name: str = "request_time", now: datetime | None = None) -> datetime:
    """``when`` as naive UTC, unless it lies after tomorrow: a nightly job may compute tomorrow's answers ahead."""
    try:
        when = naive_utc(when)
    except OverflowError:  # an offset that moves year 1 or 9999 out of the calendar
        raise BatchError(f"{name}: out of range once converted to UTC: {when.isoformat()!r}") from None
    limit = cutoff(now or utc_now()) + timedelta(days=2)
    if when >= limit:
        raise BatchError(
            f"{name} {when.isoformat()} is later than tomorrow: the online rows keep the newest computed_at, "
            "so no later run would reach clients until then"
        )
    return when


def newest_computed_at(project: Project) -> datetime | None:
    """The newest ``computed_at`` stored, from the offline group's one column (the online rows hold lists)."""
    try:
        group = RECOMMENDATIONS.get(project.feature_store)
    except NotFoundError:
        return None
    return group.select([COMPUTED_AT]).read().get_column(COMPUTED_AT).max()


def customer_ids(project: Project) -> pl.Series:
    """Every customer served online, sorted and unique, in the ``customers`` group's id type: those of that group
    and those with only a ``customer_history`` row (the shop's new buyers: a purchase writes their history, never
    attributes; a request gets them a personalised answer, so the batch job must too)."""
    fs = project.feature_store
    known = CUSTOMERS.get(fs).select([CUSTOMER_ID]).read(online=True).get_column(CUSTOMER_ID)
    # online, not offline: on Hopsworks a purchase reaches the offline table only with the next materialisation;
    # the key column only: the history's other columns hold lists
    buyers = CUSTOMER_HISTORY.get(fs).select([CUSTOMER_ID]).read(online=True).get_column(CUSTOMER_ID)
    return pl.concat([known, buyers.cast(known.dtype)]).unique().sort()


def batch_recommend(
    project: Project,
    run_id: str | None = None,
    *,
    top_k: int = 12,
    batch_size: int = 8192,
    request_time: datetime | None = None,
    options: ServingOptions | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] = print,
) -> BatchResult:
    """Score every customer served online (:func:`customer_ids`: the ``customers`` group's and the shop's new
    buyers) with run ``run_id`` (default: the newest complete run) and write their top ``top_k`` to the
    ``recommendations`` group; ``request_time`` (naive UTC, default now) is the time the answers are for and their
    ``computed_at``."""
    options = options or ServingOptions()
    if not 1 <= top_k <= options.max_top_k:
        raise BatchError(f"top_k must be between 1 and {options.max_top_k} (serving_max_top_k), not {top_k}")
    if batch_size < 1:
        raise BatchError(f"batch_size must be at least 1, not {batch_size}")
    when = check_request_time(request_time or utc_now()).replace(microsecond=0)
    started = time.perf_counter()
    with InProcessChain(project, run_id, options) as chain:
        scorer = BatchScorer(chain, when)
        t = scorer._timed("load", started)  # the run's models, index and catalogue: once per job, whatever its size
        ids = customer_ids(project)
        scorer._timed("customers", t)
        parts = []
        for start in range(0, ids.len(), batch_size):
            parts.append(scorer.score(ids.slice(start, batch_size), top_k))
            if progress is not None:
                progress(min(start + batch_size, ids.len()), ids.len())
        run = chain.run_id
    t = time.perf_counter()
    frame = pl.concat(parts) if parts else pl.DataFrame(schema={CUSTOMER_ID: ids.dtype})
    frame = frame.select(
        CUSTOMER_ID,
        pl.lit(when, pl.Datetime("us")).alias(COMPUTED_AT),
        pl.lit(run).alias(RUN_ID),
        pl.exclude(CUSTOMER_ID),
    )
    newest = None if overwrite or not frame.height else newest_computed_at(project)
    if newest is not None and newest > when:
        log(
            f"warning: {RECOMMENDATIONS.name} has rows computed at {newest.isoformat()}, after this run's "
            f"{when.isoformat()}: the customers they cover keep them online (the newest computed_at wins), this "
            "run's rows are stored offline only; overwrite (--overwrite) replaces the whole group"
        )
    if frame.height:
        RECOMMENDATIONS.get_or_create(project.feature_store).insert(frame, overwrite=overwrite)
    scorer.stage_seconds["write"] = time.perf_counter() - t
    seconds = time.perf_counter() - started
    result = BatchResult(run, frame.height, when, seconds, dict(scorer.stage_seconds))
    log(
        f"recommended top {top_k} for {result.customers:,} customers with run {run} → {RECOMMENDATIONS.name} "
        f"v{RECOMMENDATIONS.version} in {seconds:.1f} s ({result.customers_per_second:,.0f} customers/s)"
    )
    return result
