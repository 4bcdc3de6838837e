"""The ranker's dataset: the retrieval model's own candidates for each customer-week, labelled by what was bought.

For a week starting at ``w`` (design §5):

* the customers are those who bought anything in ``[w, w + 7 days)``;
* their candidates are the run's top-N retrieval results as of ``w`` (a :data:`CandidateGenerator`);
* a candidate is labelled 1 when the customer bought it that week, else 0. Purchases retrieval missed are *not*
  added: the ranker learns to order what retrieval gives it, and at serving time it only ever sees that;
* features come from :func:`~recsys.training.ranking_features.candidate_features` over the customer's history
  and the articles' popularity **as of** ``w`` (only days before it), exactly as serving computes them from the
  online rows; the label is attached afterwards, so positives and negatives go through one code path.

Weeks follow the evaluation protocol (design §6): test = the last 7 days, validation = the 7 days before,
training = the ``n_train_weeks`` weeks before that (one where retrieval found none of the purchases is skipped:
it has nothing to learn from). A group is one customer-week (``customer_id``, ``week``);
every row also carries ``n_truth``, the customer's distinct purchases that week (missed ones included), so that
MAP@12 over candidates equals the pipeline's MAP@12. ``n_truth`` and ``label`` are targets, never features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, T_DAT, FeatureSpec
from recsys.errors import RecsysError
from recsys.features.article_popularity import ARTICLE_PRICE, article_popularity_as_of
from recsys.features.common import cutoff
from recsys.features.customer_history import AS_OF, customer_history_as_of, market_prices
from recsys.training.ranking_features import (
    DAYS_SINCE,
    RETRIEVAL_RANK,
    RETRIEVAL_SCORE,
    RankerSchema,
    candidate_features,
    ranker_schema,
)
from recsys.training.retrieval_eval import Recommendations
from recsys.training.splits import Split

WEEK, LABEL, N_TRUTH = "week", "label", "n_truth"
WEEK_DAYS = 7
# (the week's customers: attributes + history as of its start, transactions before it, week start, n) -> top-n each
CandidateGenerator = Callable[[pl.DataFrame, pl.DataFrame, datetime, int], Recommendations]


class RankingDataError(RecsysError):
    """A week cannot give ranking rows: no purchases in it, or none of them among the candidates."""


@dataclass(frozen=True)
class RankingWeeks:
    """Start days of the training weeks (oldest first), the validation week and the test week."""

    train: tuple[datetime, ...]
    validation: datetime
    test: datetime

    @classmethod
    def ending(cls, last_day: datetime | date, n_train_weeks: int = 4) -> RankingWeeks:
        """Test = the 7 days ending with ``last_day``, validation = the 7 before, then the training weeks."""
        if n_train_weeks < 1:
            raise ValueError(f"n_train_weeks must be at least 1, got {n_train_weeks}")
        test = cutoff(last_day) - timedelta(days=WEEK_DAYS - 1)
        validation = test - timedelta(days=WEEK_DAYS)
        train = tuple(validation - timedelta(days=WEEK_DAYS * i) for i in range(n_train_weeks, 0, -1))
        return cls(train, validation, test)

    @classmethod
    def of_split(cls, split: Split, n_train_weeks: int = 4) -> RankingWeeks:
        """The weeks of a time split: its validation and test weeks, and the training weeks before them.

        The ranker is validated and tested on the very weeks the towers were (their training never saw them), so
        its table sits beside theirs; a split by rows has no such weeks (its towers trained on rows of every week).
        """
        if split.per_row:
            raise RankingDataError(
                f"a {split.describe()} has no week the towers did not train on, so the ranker could only be "
                "validated and tested in sample: rank a run trained on the time split"
            )
        week = timedelta(days=WEEK_DAYS)
        if split.end - split.test_start != week or split.test_start - split.val_start != week:
            raise RankingDataError(f"the ranker needs 7-day validation and test weeks, not {split.describe()}")
        return cls.ending(split.end - timedelta(days=1), n_train_weeks)


@dataclass(frozen=True)
class RankingData:
    """Ranking rows per split (keys, ``retrieval_*``, features, ``label``, ``n_truth``) and the schema."""

    train: pl.DataFrame
    validation: pl.DataFrame
    test: pl.DataFrame
    schema: RankerSchema
    weeks: RankingWeeks
    skipped: tuple[datetime, ...] = ()  # training weeks without positives among their candidates, left out


def week_state(
    transactions: pl.DataFrame,
    customers: pl.DataFrame,
    articles: pl.DataFrame,
    as_of: datetime | date,
    *,
    n_last: int = 20,
    prices: bool = True,
    customer_ids: pl.Series | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``customers`` and ``articles`` inputs of :func:`candidate_features` as of ``as_of`` (point in time).

    ``customers`` holds attributes (any history columns in it, e.g. the view's latest, are replaced by the
    history as of ``as_of``); ``articles`` the cleaned catalogue. Only transactions before ``as_of``'s day count.
    ``n_last`` must be the feature pipeline's, so that the repurchase features see the list serving sees.
    ``customer_ids`` limits the customers rows to those (in that order, unknown ones with nulls): their
    history alone is computed, against the market prices of everyone, so the values do not change.
    """
    own = transactions
    if customer_ids is not None:
        customers = pl.DataFrame({CUSTOMER_ID: customer_ids}).join(
            customers, on=CUSTOMER_ID, how="left", maintain_order="left"
        )
        own = transactions.join(customers.select(CUSTOMER_ID), on=CUSTOMER_ID, how="semi")
    market = market_prices(transactions.filter(pl.col(T_DAT) < cutoff(as_of)))
    history = customer_history_as_of(own, articles, as_of, n_last=n_last, market=market).drop(AS_OF)
    stale = [c for c in (*history.columns, DAYS_SINCE, AS_OF) if c != CUSTOMER_ID and c in customers.columns]
    state = customers.drop(stale).join(history, on=CUSTOMER_ID, how="left", maintain_order="left")
    unused = (AS_OF,) if prices else (AS_OF, ARTICLE_PRICE)
    popularity = article_popularity_as_of(transactions, articles, as_of).drop(unused)
    catalogue = articles.join(popularity, on=ARTICLE_ID, how="left", maintain_order="left")
    return state, catalogue


def candidate_rows(recs: Recommendations) -> pl.DataFrame:
    """Recommendations as rows: ``customer_id``, ``article_id``, ``retrieval_score`` (Float32), ``retrieval_rank``."""
    n_customers, n = recs.article_ids.shape
    scores = np.full(recs.article_ids.shape, np.nan, np.float32) if recs.scores is None else recs.scores
    return pl.DataFrame(
        {
            CUSTOMER_ID: pl.Series(recs.customer_ids).gather(np.repeat(np.arange(n_customers), n)),
            ARTICLE_ID: recs.article_ids.ravel(),
            RETRIEVAL_SCORE: pl.Series(np.asarray(scores, np.float32).ravel()).fill_nan(None),
            RETRIEVAL_RANK: pl.Series(np.tile(np.arange(n, dtype=np.int32), n_customers)),
        }
    )


def ranking_week(
    generate: CandidateGenerator,
    transactions: pl.DataFrame,
    customers: pl.DataFrame,
    articles: pl.DataFrame,
    week_start: datetime | date,
    schema: RankerSchema,
    *,
    n: int = 100,
    n_last: int = 20,
) -> pl.DataFrame:
    """Labelled candidate rows of one week (see the module docstring), sorted by customer and retrieval rank."""
    start = cutoff(week_start)
    end = start + timedelta(days=WEEK_DAYS)
    bought = transactions.filter((pl.col(T_DAT) >= start) & (pl.col(T_DAT) < end)).select(CUSTOMER_ID, ARTICLE_ID)
    truth = bought.unique()
    if truth.height == 0:
        raise RankingDataError(f"week starting {start:%Y-%m-%d}: no purchases in it, so no ranking rows")
    who = truth.select(CUSTOMER_ID).unique().sort(CUSTOMER_ID)
    # the week's customers as of its start (attributes + history); one who is not in `customers` has nulls
    state, catalogue = week_state(
        transactions, customers, articles, start, n_last=n_last, prices=schema.price, customer_ids=who[CUSTOMER_ID]
    )
    recs = generate(state, transactions.filter(pl.col(T_DAT) < start), start, n)
    rows = candidate_rows(recs).with_columns(pl.lit(start, pl.Datetime("us")).alias(WEEK))
    rows = candidate_features(rows, state, catalogue, start, schema)
    # labels join only now, on the keys: feature values cannot depend on them
    labels = truth.with_columns(pl.lit(1, pl.Int8).alias(LABEL))
    counts = truth.group_by(CUSTOMER_ID).agg(pl.len().cast(pl.Int32).alias(N_TRUTH))
    rows = (
        rows.join(labels, on=[CUSTOMER_ID, ARTICLE_ID], how="left", maintain_order="left")
        .join(counts, on=CUSTOMER_ID, how="left", maintain_order="left")
        .with_columns(pl.col(LABEL).fill_null(0), pl.col(N_TRUTH).fill_null(0))
    )
    if rows.get_column(LABEL).sum() == 0:
        raise RankingDataError(
            f"week starting {start:%Y-%m-%d}: none of the {truth.height} purchases of its {who.height} customers is "
            f"among their top-{n} candidates; nothing to learn from (more candidates or a better retrieval model?)"
        )
    return rows.sort(CUSTOMER_ID, RETRIEVAL_RANK)


def ranking_dataset(
    generate: CandidateGenerator,
    transactions: pl.DataFrame,
    customers: pl.DataFrame,
    articles: pl.DataFrame,
    features: Mapping[str, Mapping[str, FeatureSpec]],
    *,
    weeks: RankingWeeks | None = None,
    n_train_weeks: int = 4,
    n: int = 100,
    n_last: int = 20,
    prices: bool = True,
    log: Callable[[str], None] = print,
) -> RankingData:
    """Training, validation and test rows for the ranker.

    ``transactions`` holds every purchase (e.g. the ``retrieval`` view rows, or the raw transactions with
    ``customer_id``, ``article_id``, ``t_dat``, ``quantity``, ``price``); ``customers`` the customer attributes
    (e.g. the ``customers`` view); ``articles`` the cleaned catalogue (the ``articles`` view); ``features`` the
    spec's feature types (``Dataset.features``). ``weeks`` default to :meth:`RankingWeeks.ending` at the last
    purchase day. ``prices`` adds :data:`~recsys.training.ranking_features.ARTICLE_PRICE` (serving must then
    supply it too).
    """
    weeks = weeks or RankingWeeks.ending(transactions.get_column(T_DAT).max(), n_train_weeks)
    # the schema depends on the columns of the week state only: build an empty one to read them
    state, catalogue = week_state(
        transactions.head(0), customers.head(1), articles.head(1), weeks.validation, n_last=n_last, prices=prices
    )
    schema = ranker_schema(features, state, catalogue)

    def week(start: datetime) -> pl.DataFrame:
        rows = ranking_week(generate, transactions, customers, articles, start, schema, n=n, n_last=n_last)
        positives = int(rows.get_column(LABEL).sum())
        log(f"ranking week {start:%Y-%m-%d}: {rows.height:,} rows, {positives:,} positives")
        return rows

    # a training week without positives teaches nothing but need not stop the run (sparse data sets such as
    # MovieLens have quiet weeks); the validation and test weeks must have positives, and one training week
    train, skipped = [], []
    for start in weeks.train:
        try:
            train.append(week(start))
        except RankingDataError as exc:
            log(f"ranking week {start:%Y-%m-%d} skipped: {exc}")
            skipped.append((start, str(exc)))
    if not train:
        raise RankingDataError("no training week has ranking rows: " + "; ".join(why for _, why in skipped))
    return RankingData(
        train=pl.concat(train),
        validation=week(weeks.validation),
        test=week(weeks.test),
        schema=schema,
        weeks=weeks,
        skipped=tuple(start for start, _ in skipped),
    )
