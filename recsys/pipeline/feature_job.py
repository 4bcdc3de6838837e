"""The feature pipeline (program 1): a raw data set -> validated feature groups -> feature views.

Two modes (design §3):

* :func:`backfill` recomputes every group from all history (up to ``until``) and *overwrites* it: one commit per
  group, the previous version readable by time travel. Running it twice gives the same tables.
* :func:`incremental` adds only the days after the newest stored transaction (the *watermark*), plus customers
  and articles whose attributes changed. Re-running it finds nothing new and writes nothing. Because history and
  popularity snapshots are computed from all stored transactions and only the snapshots dated after the
  watermark are kept, backfill up to day d followed by incremental runs equals one backfill up to their last day.
  A store backfilled with an older version of a snapshot group (``customer_history``, ``article_popularity``) has
  no rows in the current one: the run builds it whole from the stored transactions, as a backfill would, and
  leaves the older version as it was. Otherwise its ``n_last`` must be the one the stored history was written
  with (:mod:`recsys.pipeline.history_length`): it refuses another before writing anything.

Schemas come first: the groups' versions are fixed (:mod:`recsys.pipeline.groups`) and their columns by their first
write, so a data set whose spec was edited (a feature dropped or added, an id type changed) or another data set
does not fit a store written before. Every group a run will write is compared with the stored one before the first
write (:mod:`recsys.pipeline.schema_guard`): one error names all the differences, and nothing is written. Another
data set needs a fresh store (``--home``).

Validation comes next: every frame derived from the source is checked by the rules of its group before anything
is written. ``on_bad_rows="fail"`` stops at the first violation (naming group, rule, column and sample rows);
``"quarantine"`` keeps the good rows, writes the bad ones with the rules they broke to ``<group>_quarantine``, and
goes on (transactions of a quarantined customer or article are then quarantined too: their ids no longer join).
The snapshot groups are derived from validated rows; their own rules are invariants checked chunk by chunk. They
are written before the source groups (popularity first, to free its memory before history), so a failure there
leaves the source groups as they were.

Memory: the history snapshots are the largest table (at H&M scale tens of millions of rows with lists). They are
computed in chunks of whole customers against the market prices of all transactions and streamed into one
commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT, Dataset, FeatureSpec
from recsys.errors import DataError
from recsys.features import (
    article_features,
    article_popularity_events,
    customer_features,
    customer_history_event_chunks,
    market_prices,
    month_rules,
    rules_for,
    split_valid,
    transaction_features,
    validate,
    with_month_features,
)
from recsys.features.common import cutoff
from recsys.features.validation import REASON
from recsys.pipeline.groups import (
    ARTICLE_POPULARITY,
    ARTICLES,
    CUSTOMER_HISTORY,
    CUSTOMERS,
    TRANSACTIONS,
    GroupDef,
    quarantine_group,
)
from recsys.pipeline.history_length import N_LAST, check_n_last
from recsys.pipeline.prefetch import prefetched
from recsys.pipeline.recorded import uncovered_purchases
from recsys.pipeline.runlog import RunLog
from recsys.pipeline.schema_guard import BACKFILL_FIX, INCREMENTAL_FIX, check_fits
from recsys.pipeline.views import create_views
from recsys.store.base import FeatureStore, Project
from recsys.store.errors import NotFoundError
from recsys.store.schema import normalize_frame

OnBadRows = Literal["fail", "quarantine"]
ONE_DAY = timedelta(days=1)
HISTORY_SOURCE = (CUSTOMER_ID, ARTICLE_ID, T_DAT, QUANTITY, PRICE)


@dataclass(frozen=True)
class FeatureOptions:
    """Knobs of a feature pipeline run."""

    n_last: int = N_LAST  # length of the last-purchases list in customer_history
    on_bad_rows: OnBadRows = "fail"
    until: datetime | None = None  # use transactions up to and including this day (default: all)
    now: datetime | None = None  # "now" for the not-in-the-future rules (default: the wall clock)
    history_chunk_rows: int = 1_000_000  # daily purchases per chunk of whole customers for history snapshots


@dataclass
class FeatureRun:
    """What a run did: rows written per group, rows quarantined, the days it covered, its steps."""

    mode: str
    dataset: str
    log: RunLog
    written: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    first_day: datetime | None = None
    last_day: datetime | None = None


class Checker:
    """Runs a group's rules on a frame: stop on the first violation, or set bad rows aside for quarantine."""

    def __init__(self, on_bad_rows: OnBadRows, now: datetime) -> None:
        if on_bad_rows not in ("fail", "quarantine"):
            raise ValueError(f"on_bad_rows must be 'fail' or 'quarantine', not {on_bad_rows!r}")
        self.on_bad_rows = on_bad_rows
        self.now = now
        self.bad: dict[GroupDef, pl.DataFrame] = {}

    def __call__(self, group: GroupDef, df: pl.DataFrame, **rule_args: object) -> pl.DataFrame:
        rules = rules_for(group.name, df, now=self.now, **rule_args)  # type: ignore[arg-type]
        if self.on_bad_rows == "fail":
            return validate(df, group.name, rules)
        good, bad = split_valid(df, rules, group.name)
        if bad.height:
            self.bad[group] = bad
        return good

    def _rows(self, bad: pl.DataFrame, run: str) -> pl.DataFrame:
        """``bad`` as quarantine rows: with an id unique per run and the time they were set aside."""
        return bad.with_columns(
            (pl.lit(f"{run}-") + pl.int_range(pl.len()).cast(pl.String)).alias("quarantine_id"),
            pl.lit(self.now, dtype=pl.Datetime("us")).alias("quarantined_at"),
        )

    def quarantine_schemas(self) -> dict[GroupDef, pl.Schema]:
        """What :meth:`write_quarantine` will write, per quarantine group: checked before a run writes anything."""
        return {quarantine_group(group): self._rows(bad.head(0), "").schema for group, bad in self.bad.items()}

    def write_quarantine(self, fs: FeatureStore) -> dict[str, int]:
        """Append the bad rows to ``<group>_quarantine`` (ids unique per run); rows per group."""
        run = uuid.uuid4().hex[:12]
        counts = {}
        for group, bad in self.bad.items():
            quarantine_group(group).get_or_create(fs).insert(self._rows(bad, run))
            counts[group.name] = bad.height
        return counts


# ----------------------------------------------------------------------------------------------- computing


def _features_of(ds: Dataset, table: str) -> Mapping[str, FeatureSpec]:
    return ds.features.get(table, {})


def _until(transactions: pl.DataFrame, until: datetime | None) -> pl.DataFrame:
    return transactions if until is None else transactions.filter(pl.col(T_DAT) < cutoff(until) + ONE_DAY)


def _history_chunks(
    tx: pl.DataFrame,
    articles: pl.DataFrame,
    customer_ids: pl.Series,
    options: FeatureOptions,
    now: datetime,
    log: RunLog,
    *,
    market: pl.DataFrame | None = None,
    after: datetime | None = None,
) -> Iterator[pl.DataFrame]:
    """History snapshots in chunks of whole customers, validated; only those valid after ``after`` when given.

    ``market`` (default: from ``tx``) must come from all transactions when ``tx`` holds only some customers.
    """
    total, chunks = customer_history_event_chunks(
        tx, articles, rows_per_chunk=options.history_chunk_rows, n_last=options.n_last, market=market
    )
    for events in log.track(chunks, total, "customer history chunks"):
        if after is not None:
            events = events.filter(pl.col("as_of") > after)
        rules = rules_for(CUSTOMER_HISTORY.name, events, now=now, customer_ids=customer_ids, n_last=options.n_last)
        yield validate(events, CUSTOMER_HISTORY.name, rules)


def _counted(chunks: Iterator[pl.DataFrame], counter: list[int]) -> Iterator[pl.DataFrame]:
    for chunk in chunks:
        counter[0] += chunk.height
        if chunk.height:
            yield chunk


def _write_whole_history(fs: FeatureStore, chunks: Iterator[pl.DataFrame]) -> int:
    """Every history snapshot (``chunks`` of :func:`_history_chunks`) streamed into one overwriting commit: the next
    chunk is computed while this one is written (the two overlap on two cores). Returns the rows written."""
    counter = [0]
    CUSTOMER_HISTORY.get_or_create(fs).insert(_counted(prefetched(chunks), counter), overwrite=True)
    return counter[0]


def _with_recorded(
    fs: FeatureStore, tx: pl.DataFrame, customer_ids: pl.Series, article_ids: pl.Series, log: RunLog
) -> tuple[pl.DataFrame, pl.Series]:
    """The source's daily purchases (``HISTORY_SOURCE`` columns) with the site's recorded purchases it does not cover
    (:mod:`recsys.pipeline.recorded`), and the customer ids with the shop's new customers among their buyers.

    Histories count them, as :func:`~recsys.serving.actions.record_purchase` did: a snapshot without them, dated
    before theirs, could not replace the online row, which would keep missing the source's new days.
    """
    newest = tx.get_column(T_DAT).max()
    recorded = uncovered_purchases(fs, newest) if newest is not None else None
    if recorded is None or recorded.height == 0:
        return tx, customer_ids
    with log.step("recorded purchases after the source's newest day") as step:
        if any(recorded.schema[c] != tx.schema[c] for c in (CUSTOMER_ID, ARTICLE_ID)):
            step.note = "left out: their ids are of another data set's types"
            return tx, customer_ids
        known = recorded.filter(pl.col(ARTICLE_ID).is_in(article_ids.implode()))
        step.rows = known.height
        if known.height < recorded.height:
            step.note = f"{recorded.height - known.height} of articles not in the catalogue left out"
        tx = pl.concat([tx, known.select(HISTORY_SOURCE).cast(tx.schema)])
        return tx, pl.concat([customer_ids, known.get_column(CUSTOMER_ID).unique()]).unique()


Frames = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]


def _clean_sources(ds: Dataset, tx_source: pl.DataFrame, log: RunLog, *, month: bool = True) -> Frames:
    """Customers, articles and daily transactions as feature frames (not yet validated); ``month``: see
    :func:`~recsys.features.transaction_features`."""
    with log.step("customers: clean attributes") as step:
        customers = customer_features(ds.customers, _features_of(ds, "customers"))
        step.rows = customers.height
    with log.step("articles: clean attributes, descriptions") as step:
        articles = article_features(ds.articles, _features_of(ds, "articles"))
        step.rows = articles.height
    with log.step("transactions: daily purchases") as step:
        tx = transaction_features(tx_source, _features_of(ds, "transactions"), month=month)
        step.rows = tx.height
    return customers, articles, tx


def _popularity(
    tx: pl.DataFrame, last_day: datetime, now: datetime, article_ids: pl.Series, after: datetime | None = None
) -> pl.DataFrame:
    """Validated popularity snapshots up to the day after ``last_day`` (only those after ``after``, if given)."""
    popularity = article_popularity_events(tx, until=last_day + ONE_DAY, after=after)
    rules = rules_for(ARTICLE_POPULARITY.name, popularity, now=now, article_ids=article_ids)
    return validate(popularity, ARTICLE_POPULARITY.name, rules)


def _snapshot_schemas(
    tx: pl.DataFrame, articles: pl.DataFrame, last_day: datetime, options: FeatureOptions
) -> dict[GroupDef, pl.Schema]:
    """The snapshot groups' schemas, computed by the same functions from one article's and one customer's
    purchases in ``tx`` (not empty): their columns do not depend on the rows, so this costs a fraction of the full
    computation, which is only done (and written at once, for memory) once every group has been checked."""
    one_article = tx.filter(pl.col(ARTICLE_ID) == tx.item(0, ARTICLE_ID))
    popularity = article_popularity_events(one_article, until=last_day + ONE_DAY)
    one_customer = tx.select(HISTORY_SOURCE).filter(pl.col(CUSTOMER_ID) == tx.item(0, CUSTOMER_ID))
    _, chunks = customer_history_event_chunks(
        one_customer, articles, rows_per_chunk=options.history_chunk_rows, n_last=options.n_last
    )
    return {ARTICLE_POPULARITY: popularity.schema, CUSTOMER_HISTORY: next(chunks).schema}


def _every_transaction_bad(check: Checker) -> DataError:
    """The error of a quarantine run that set every transaction aside: how many, which rules, where they are."""
    bad = check.bad[TRANSACTIONS]
    rules = bad.get_column(REASON).str.split("; ").explode().value_counts(sort=True)
    counts = ", ".join(f"{rule} {n:,}" for rule, n in rules.iter_rows())
    kept = quarantine_group(TRANSACTIONS)
    return DataError(
        f"{TRANSACTIONS.name}: every one of the {bad.height:,} transactions broke a rule ({counts}); they are in "
        f"feature group '{kept.name}' v{kept.version} and no feature group was written: fix the data (or its spec) "
        "and run again"
    )


def _spec(ds: Dataset, table: str) -> dict[str, object]:
    """Rule arguments that need the spec: categorical columns must be non-empty strings."""
    return {"features": _features_of(ds, table)}


# ----------------------------------------------------------------------------------------------- backfill


def backfill(
    project: Project, ds: Dataset, options: FeatureOptions = FeatureOptions(), log: RunLog | None = None
) -> FeatureRun:
    """Recompute and overwrite every feature group from all transactions up to ``options.until``.

    The data set must have the stored groups' columns (:mod:`recsys.pipeline.schema_guard`): nothing is written
    otherwise. A quarantine run that sets every transaction aside writes only the quarantine groups, then stops."""
    log = log or RunLog()
    fs = project.feature_store
    now = options.now or datetime.now()
    check = Checker(options.on_bad_rows, now)
    run = FeatureRun("backfill", ds.name, log)
    # the month columns join the transactions only for their write: the history step does not need them
    customers, articles, tx = _clean_sources(ds, _until(ds.transactions, options.until), log, month=False)
    # The raw rows are not needed any more: a caller that does not keep the data set gets their memory back.
    ds = replace(ds, transactions=ds.transactions.clear())
    if tx.height == 0:
        raise DataError(f"{ds.name}: no transactions{'' if options.until is None else f' up to {options.until}'}")

    with log.step("validate customers, articles, transactions (rows set aside)") as step:
        customers = check(CUSTOMERS, customers, **_spec(ds, "customers"))
        articles = check(ARTICLES, articles, **_spec(ds, "articles"))
        ids = {"customer_ids": customers.get_column(CUSTOMER_ID), "article_ids": articles.get_column(ARTICLE_ID)}
        tx = check(TRANSACTIONS, tx, **ids, **_spec(ds, "transactions"))
        step.rows = sum(bad.height for bad in check.bad.values())
    run.first_day, run.last_day = tx.get_column(T_DAT).min(), tx.get_column(T_DAT).max()

    with log.step("check every group against the stored one"):
        month_columns = with_month_features(tx.head(0)).schema
        schemas = {CUSTOMERS: customers.schema, ARTICLES: articles.schema, TRANSACTIONS: month_columns}
        if run.last_day is not None:
            schemas |= _snapshot_schemas(tx, articles, run.last_day, options)
        check_fits(fs, schemas | check.quarantine_schemas(), BACKFILL_FIX)
    if run.last_day is None:
        # Quarantine set every transaction aside: no feature group can be computed, but the bad rows are kept
        # (what the quarantine group is for) so that the user can see why.
        with log.step("write quarantine") as step:
            run.quarantined = check.write_quarantine(fs)
            step.rows = sum(run.quarantined.values())
        raise _every_transaction_bad(check)

    # Snapshot groups first, each written as soon as it is computed (memory), then the source groups: a failure
    # in a snapshot group's invariants leaves the source groups untouched.
    with log.step("article popularity snapshots -> write") as step:
        popularity = _popularity(tx, run.last_day, now, ids["article_ids"])
        ARTICLE_POPULARITY.get_or_create(fs).insert(popularity, overwrite=True)
        step.rows = run.written[ARTICLE_POPULARITY.name] = popularity.height
        del popularity
    history_tx, buyers = _with_recorded(fs, tx.select(HISTORY_SOURCE), ids["customer_ids"], ids["article_ids"], log)
    with log.step("customer history snapshots -> write") as step:
        history = _history_chunks(history_tx, articles, buyers, options, now, log)
        step.rows = run.written[CUSTOMER_HISTORY.name] = _write_whole_history(fs, history)
    tx = validate(with_month_features(tx), TRANSACTIONS.name, month_rules())
    for group, frame in ((TRANSACTIONS, tx), (CUSTOMERS, customers), (ARTICLES, articles)):
        with log.step(f"write {group.name}") as step:
            group.get_or_create(fs).insert(frame, overwrite=True)
            step.rows = run.written[group.name] = frame.height
    _finish(fs, check, run)
    return run


def _finish(fs: FeatureStore, check: Checker, run: FeatureRun) -> None:
    if check.bad:
        with run.log.step("write quarantine") as step:
            run.quarantined = check.write_quarantine(fs)
            step.rows = sum(run.quarantined.values())
    with run.log.step("feature views: retrieval, customers, articles, ranking"):
        create_views(fs)


# ----------------------------------------------------------------------------------------------- incremental


def _changed(fresh: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``fresh`` that are new or differ from the stored row (compared in stored form)."""
    fresh = normalize_frame(fresh)
    if stored.height == 0:
        return fresh
    if fresh.schema != stored.schema:
        return fresh  # the columns changed: every row is new; the store's schema check names the difference
    seen = stored.hash_rows()
    return fresh.filter(~fresh.hash_rows().is_in(seen.implode()))


def _is_new(fs: FeatureStore, group: GroupDef) -> bool:
    """Whether this version of a snapshot group has no rows: a store backfilled by an older version."""
    try:
        stored = group.get(fs)
    except NotFoundError:
        return True
    return stored.select(list(group.primary_key)).read().height == 0


def _rebuild_step(group: GroupDef) -> str:
    return f"{group.name} v{group.version} is new in this store: snapshots from all transactions -> write"


def _watermark(fs: FeatureStore) -> tuple[pl.DataFrame, datetime]:
    """The stored transactions (the columns history needs) and the newest stored day."""
    try:
        group = TRANSACTIONS.get(fs)
    except NotFoundError:
        raise DataError(
            "the feature store has no transactions yet: run `python -m feature_pipeline backfill` first"
        ) from None
    stored = group.select(list(HISTORY_SOURCE)).read()
    if stored.height == 0:
        raise DataError("the transactions feature group is empty: run `python -m feature_pipeline backfill` first")
    return stored, stored.get_column(T_DAT).max()


def _check_backfill_finished(fs: FeatureStore, watermark: datetime) -> None:
    """Popularity's newest snapshot is the day after the newest stored transaction once a run has finished.

    A backfill writes its snapshot groups before the source groups, so one stopped in between (up to an earlier
    day than the stored one) leaves popularity, and maybe history, behind the transactions: an incremental run
    starts after the transactions and would never bring them back.
    """
    newest = ARTICLE_POPULARITY.get(fs).select(["as_of"]).read().get_column("as_of").max()
    if newest < watermark + ONE_DAY:
        raise DataError(
            f"{ARTICLE_POPULARITY.name} v{ARTICLE_POPULARITY.version} ends with {newest:%Y-%m-%d}, before the day "
            f"after the newest stored transaction ({watermark:%Y-%m-%d}): a backfill did not finish (it writes the "
            "snapshot groups first); run `python -m feature_pipeline backfill` again"
        )


def incremental(
    project: Project, ds: Dataset, options: FeatureOptions = FeatureOptions(), log: RunLog | None = None
) -> FeatureRun:
    """Add the transactions after the stored watermark (up to ``options.until``) and what they change."""
    log = log or RunLog()
    fs = project.feature_store
    now = options.now or datetime.now()
    check = Checker(options.on_bad_rows, now)
    run = FeatureRun("incremental", ds.name, log)
    with log.step("read watermark") as step:
        stored_tx, watermark = _watermark(fs)
        stored_customers = CUSTOMERS.get(fs).read()
        stored_articles = ARTICLES.get(fs).read()
        rebuild_history, rebuild_popularity = _is_new(fs, CUSTOMER_HISTORY), _is_new(fs, ARTICLE_POPULARITY)
        if not rebuild_popularity:
            _check_backfill_finished(fs, watermark)
        if not rebuild_history:  # a rebuilt history is written whole, at this run's n_last
            check_n_last(fs, stored_tx, options.n_last)
        step.rows = stored_tx.height
        step.note = f"newest stored day {watermark:%Y-%m-%d}"
    source = _until(ds.transactions.filter(pl.col(T_DAT) >= watermark + ONE_DAY), options.until)
    customers, articles, tx = _clean_sources(ds, source, log)
    with log.step("check customers, articles, transactions against the stored groups"):
        # before they meet the stored rows: another id type or column set would not even concatenate
        check_fits(
            fs, {CUSTOMERS: customers.schema, ARTICLES: articles.schema, TRANSACTIONS: tx.schema}, INCREMENTAL_FIX
        )

    with log.step("validate changed customers, articles, new transactions (rows set aside)") as step:
        # Checked whole (a duplicate hides among unchanged rows), then only the changes are written.
        customers = _changed(check(CUSTOMERS, customers, **_spec(ds, "customers")), stored_customers)
        articles = _changed(check(ARTICLES, articles, **_spec(ds, "articles")), stored_articles)
        customer_ids = pl.concat([stored_customers.get_column(CUSTOMER_ID), customers.get_column(CUSTOMER_ID)])
        article_ids = pl.concat([stored_articles.get_column(ARTICLE_ID), articles.get_column(ARTICLE_ID)])
        tx = check(TRANSACTIONS, tx, customer_ids=customer_ids, article_ids=article_ids, **_spec(ds, "transactions"))
        step.rows = sum(bad.height for bad in check.bad.values())
    all_articles = pl.concat(
        [stored_articles.filter(~pl.col(ARTICLE_ID).is_in(articles.get_column(ARTICLE_ID).implode())), articles]
    )

    all_tx = pl.concat([stored_tx, tx.select(HISTORY_SOURCE)])
    history_tx, buyers = _with_recorded(fs, all_tx, customer_ids, article_ids, log)
    with log.step("check the snapshot and quarantine groups against the stored ones"):
        schemas = check.quarantine_schemas()
        if tx.height or rebuild_popularity or rebuild_history:
            last_day = tx.get_column(T_DAT).max() if tx.height else watermark
            schemas |= _snapshot_schemas(all_tx, all_articles, last_day, options)
        check_fits(fs, schemas, INCREMENTAL_FIX)
    writes: list[tuple[GroupDef, pl.DataFrame]] = []
    # A new group version is written first, whole, as backfill writes it: a failure later leaves snapshots that
    # the rerun rewrites as they are (the store upserts on key and event time).
    if rebuild_popularity:
        with log.step(_rebuild_step(ARTICLE_POPULARITY)) as step:
            last_day = tx.get_column(T_DAT).max() if tx.height else watermark
            popularity = _popularity(all_tx, last_day, now, article_ids)
            ARTICLE_POPULARITY.get_or_create(fs).insert(popularity, overwrite=True)
            step.rows = run.written[ARTICLE_POPULARITY.name] = popularity.height
    if rebuild_history:
        with log.step(_rebuild_step(CUSTOMER_HISTORY)) as step:
            chunks = _history_chunks(history_tx, all_articles, buyers, options, now, log)
            step.rows = run.written[CUSTOMER_HISTORY.name] = _write_whole_history(fs, chunks)
    if tx.height:
        run.first_day, run.last_day = tx.get_column(T_DAT).min(), tx.get_column(T_DAT).max()
        after = watermark + ONE_DAY  # snapshots up to here are stored already
        if not rebuild_popularity:
            with log.step("article popularity snapshots") as step:
                popularity = _popularity(all_tx, run.last_day, now, article_ids, after=after)
                step.rows = popularity.height
            writes.append((ARTICLE_POPULARITY, popularity))
        if not rebuild_history:
            with log.step("customer history snapshots") as step:
                new_buyers = tx.get_column(CUSTOMER_ID).unique().implode()
                affected = history_tx.filter(pl.col(CUSTOMER_ID).is_in(new_buyers))
                market = market_prices(history_tx)
                chunks = _history_chunks(affected, all_articles, buyers, options, now, log, market=market, after=after)
                history = pl.concat(list(chunks))
                step.rows = history.height
            writes.append((CUSTOMER_HISTORY, history))
        writes.append((TRANSACTIONS, tx))
    writes += [(CUSTOMERS, customers), (ARTICLES, articles)]
    for group, frame in writes:
        if frame.height:
            with log.step(f"write {group.name}") as step:
                group.get(fs).insert(frame)
                step.rows = frame.height
        run.written[group.name] = frame.height
    _finish(fs, check, run)
    return run
