"""Bad source rows: a clear error naming group, rule, column and rows, and a store exactly as it was.

Each case breaks one rule that raw data can break (the cleaning steps make the other rules invariants, which the
unit tests of ``recsys.features.validation`` cover). With ``on_bad_rows="quarantine"`` the run goes on without
the bad rows and keeps them, with the rules they broke, in ``<group>_quarantine``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import polars as pl
import pytest

from recsys.data.dataset import Dataset
from recsys.errors import DataError
from recsys.features import FeatureValidationError
from recsys.pipeline.feature_job import FeatureOptions, backfill, incremental
from recsys.pipeline.groups import TRANSACTIONS, quarantine_group
from recsys.pipeline.views import RETRIEVAL_VIEW
from recsys.store import NotFoundError, Project
from tests.integration.pipeline.conftest import assert_unchanged, hand_made, snapshot

NOW = datetime(2020, 2, 1)


def with_table(table: str, change: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Dataset], Dataset]:
    return lambda ds: replace(ds, **{table: change(getattr(ds, table))})


def set_last(column: str, value: object, dtype: pl.DataType | None = None) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Break the last row: for transactions that is the Jan 10 purchase, a new day for an incremental run."""

    def change(df: pl.DataFrame) -> pl.DataFrame:
        last = pl.int_range(pl.len()) == pl.len() - 1
        return df.with_columns(pl.when(last).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(column)).alias(column))

    return change


def extra_row(**values: object) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda df: pl.concat([df, df.head(1).with_columns(pl.lit(v).alias(k) for k, v in values.items())])


CASES = {
    "customer id missing": (
        with_table("customers", set_last("customer_id", None, pl.String)),
        "customers",
        "customer_id_not_null",
    ),
    "customer listed twice": (with_table("customers", extra_row(age=50.0)), "customers", "primary_key_unique"),
    "article id missing": (
        with_table("articles", set_last("article_id", None, pl.Int64)),
        "articles",
        "article_id_not_null",
    ),
    "article listed twice": (
        with_table("articles", extra_row(colour_group_name="Red")),
        "articles",
        "primary_key_unique",
    ),
    "purchase without customer": (
        with_table("transactions", set_last("customer_id", None, pl.String)),
        "transactions",
        "customer_id_not_null",
    ),
    "purchase of an unknown article": (
        with_table("transactions", set_last("article_id", 99, pl.Int64)),
        "transactions",
        "article_id_in_articles",
    ),
    "purchase by an unknown customer": (
        with_table("transactions", set_last("customer_id", "ghost")),
        "transactions",
        "customer_id_in_customers",
    ),
    "negative price": (with_table("transactions", set_last("price", -5.0)), "transactions", "price_in_range"),
    "zero quantity": (
        with_table("transactions", set_last("quantity", 0, pl.Int64)),
        "transactions",
        "quantity_in_range",
    ),
    "purchase in the future": (
        with_table("transactions", set_last("t_dat", datetime(2030, 1, 1), pl.Datetime("us"))),
        "transactions",
        "t_dat_not_future",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_bad_row_stops_the_run_with_a_clear_error_and_writes_nothing(project: Project, case: str) -> None:
    corrupt, group, rule = CASES[case]
    backfill(project, hand_made(), FeatureOptions(now=NOW, until=datetime(2020, 1, 5)))
    before = snapshot(project)
    for run in (backfill, incremental):  # incremental: the Jan 10 purchase is new, customers/articles re-checked
        with pytest.raises(FeatureValidationError) as info:
            run(project, corrupt(hand_made()), FeatureOptions(now=NOW))
        message = str(info.value)
        assert message.startswith(f"{group}: rule {rule!r} failed on column {info.value.column!r}"), message
        assert "sample rows: {" in message and info.value.rows.height >= 1
        assert_unchanged(project, before)


def test_quarantine_keeps_good_rows_and_sets_the_bad_ones_aside(project: Project) -> None:
    ds = hand_made()
    bad_tx = ds.transactions.with_columns(
        pl.when(pl.col("article_id") == 3).then(pl.lit(-1.0)).otherwise(pl.col("price")).alias("price")
    )
    run = backfill(project, replace(ds, transactions=bad_tx), FeatureOptions(now=NOW, on_bad_rows="quarantine"))
    assert run.quarantined == {"transactions": 1}
    fs = project.feature_store
    stored = TRANSACTIONS.get(fs).read()
    assert 3 not in stored["article_id"].to_list() and stored.height == 4
    kept = quarantine_group(TRANSACTIONS).get(fs).read()
    assert kept.select("article_id", "price", "reason").rows() == [(3, -1.0, "price_in_range")]
    history = fs.get_feature_view(*RETRIEVAL_VIEW).training_data()[0]
    assert history.filter(pl.col("t_dat") == datetime(2020, 1, 10))["last_article_ids"].to_list() == [[2, 1]]


def test_quarantine_of_a_customer_quarantines_their_purchases(project: Project) -> None:
    ds = hand_made()
    dup = pl.concat([ds.customers, ds.customers.filter(pl.col("customer_id") == "c2")])
    run = backfill(project, replace(ds, customers=dup), FeatureOptions(now=NOW, on_bad_rows="quarantine"))
    assert run.quarantined == {"customers": 2, "transactions": 1}  # both copies: which one is right is unknown
    fs = project.feature_store
    assert TRANSACTIONS.get(fs).read()["customer_id"].unique().to_list() == ["c1"]
    reasons = quarantine_group(TRANSACTIONS).get(fs).read()["reason"].to_list()
    assert reasons == ["customer_id_in_customers"]


def test_a_clean_run_creates_no_quarantine(project: Project) -> None:
    backfill(project, hand_made(), FeatureOptions(now=NOW, on_bad_rows="quarantine"))
    with pytest.raises(NotFoundError):
        quarantine_group(TRANSACTIONS).get(project.feature_store)


def all_in_the_future(ds: Dataset) -> Dataset:
    return replace(ds, transactions=ds.transactions.with_columns(pl.col("t_dat").dt.offset_by("10y")))


def test_quarantine_of_every_transaction_keeps_them_and_writes_no_feature_group(project: Project) -> None:
    backfill(project, hand_made(), FeatureOptions(now=NOW))
    before = snapshot(project)
    with pytest.raises(DataError) as info:
        backfill(project, all_in_the_future(hand_made()), FeatureOptions(now=NOW, on_bad_rows="quarantine"))
    assert str(info.value) == (
        "transactions: every one of the 5 transactions broke a rule (t_dat_not_future 5); they are in feature group "
        "'transactions_quarantine' v1 and no feature group was written: fix the data (or its spec) and run again"
    )
    kept = quarantine_group(TRANSACTIONS).get(project.feature_store).read()
    assert kept.height == 5 and set(kept["reason"]) == {"t_dat_not_future"}  # there to see why
    assert_unchanged(project, before)


def test_incremental_with_every_new_transaction_bad_writes_only_their_quarantine(project: Project) -> None:
    backfill(project, hand_made(), FeatureOptions(now=NOW, until=datetime(2020, 1, 5)))
    before = snapshot(project)
    future = with_table("transactions", set_last("t_dat", datetime(2030, 1, 1), pl.Datetime("us")))(hand_made())
    run = incremental(project, future, FeatureOptions(now=NOW, on_bad_rows="quarantine"))
    assert run.quarantined == {"transactions": 1} and run.last_day is None  # no new day: nothing else to write
    assert quarantine_group(TRANSACTIONS).get(project.feature_store).read()["reason"].to_list() == ["t_dat_not_future"]
    assert_unchanged(project, before)
