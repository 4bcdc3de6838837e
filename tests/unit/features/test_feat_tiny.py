"""Every feature function on the synthetic ``tiny`` preset: shapes, invariants, both forms agree, rules pass."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from recsys.data.dataset import Dataset
from recsys.data.spec import load_spec, read_dataset
from recsys.data.synthetic import generate
from recsys.features import (
    article_features,
    article_popularity_as_of,
    article_popularity_events,
    customer_features,
    customer_history_as_of,
    customer_history_events,
    days_since_last_purchase,
    rules_for,
    transaction_features,
    validate,
)
from recsys.features.article_popularity import EMPTY

N_LAST = 5  # small, so that many customers hit the limit
DATES = [datetime(2019, 1, 1), datetime(2020, 3, 15, 18), datetime(2020, 9, 23)]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    folder: Path = generate("tiny", seed=42).write(tmp_path_factory.mktemp("tiny"))
    return read_dataset(load_spec(folder / "dataset.yaml"))


@pytest.fixture(scope="module")
def history_events(ds: Dataset) -> pl.DataFrame:
    return customer_history_events(ds.transactions, ds.articles, n_last=N_LAST)


@pytest.fixture(scope="module")
def popularity_events(ds: Dataset) -> pl.DataFrame:
    return article_popularity_events(ds.transactions)


def test_customers_and_articles_one_row_each_and_valid(ds: Dataset) -> None:
    customers = customer_features(ds.customers, ds.features["customers"])
    articles = article_features(ds.articles, ds.features["articles"])
    assert customers["customer_id"].to_list() == ds.customers["customer_id"].to_list()
    assert articles["article_id"].to_list() == ds.articles["article_id"].to_list()
    assert customers["fashion_news_frequency"].null_count() == 0
    assert (customers["age_group"] == "unknown").sum() == ds.customers["age"].null_count()
    assert articles["description"].str.len_chars().min() > 20
    validate(customers, "customers", rules_for("customers", customers, features=ds.features["customers"]))
    validate(articles, "articles", rules_for("articles", articles, features=ds.features["articles"]))


def test_transactions_keep_every_unit_and_reference_known_ids(ds: Dataset) -> None:
    out = transaction_features(ds.transactions, ds.features["transactions"])
    assert out["quantity"].sum() == ds.transactions["quantity"].sum()
    assert out.height == ds.transactions.select(pl.struct("customer_id", "article_id", "t_dat").n_unique()).item()
    rules = rules_for(
        "transactions",
        out,
        now=datetime(2020, 9, 23),
        customer_ids=ds.customers["customer_id"],
        article_ids=ds.articles["article_id"],
    )
    validate(out, "transactions", rules)


@pytest.mark.parametrize("as_of", DATES)
def test_history_counts_match_a_direct_count_and_the_events_form(
    ds: Dataset, history_events: pl.DataFrame, as_of: datetime
) -> None:
    out = customer_history_as_of(ds.transactions, ds.articles, as_of, n_last=N_LAST)
    before = ds.transactions.filter(pl.col("t_dat") < datetime(as_of.year, as_of.month, as_of.day))
    direct = before.group_by("customer_id").agg(pl.col("quantity").sum().alias("units"), pl.col("t_dat").max())
    joined = out.join(direct, on="customer_id", how="full", coalesce=True)
    assert joined["units"].to_list() == joined["n_units"].to_list()  # every customer, every unit
    assert joined["t_dat"].to_list() == joined["last_purchase"].to_list()
    assert out["last_article_ids"].list.len().max() <= N_LAST
    assert (out["last_article_ids"].list.len() == out["n_purchases"].clip(upper_bound=N_LAST)).all()
    for col in ("index_group_name", "product_type_name", "colour_group_name"):
        assert out[f"{col}_shares"].list.sum().is_between(1 - 1e-9, 1 + 1e-9).all()
    validate(out, "customer_history", rules_for("customer_history", out, now=as_of, n_last=N_LAST))

    at = out.select("customer_id", pl.col("as_of").alias("t"))
    from_events = (
        at.join_asof(
            history_events.sort("as_of"), left_on="t", right_on="as_of", by="customer_id", check_sortedness=False
        )
        .with_columns(days_since_last_purchase(pl.col("t")), pl.col("t").alias("as_of"))
        .select(out.columns)
    )
    assert_frame_equal(from_events, out)


def test_history_events_are_valid_snapshots(ds: Dataset, history_events: pl.DataFrame) -> None:
    pairs = ds.transactions.select("customer_id", pl.col("t_dat").dt.truncate("1d")).unique()
    assert history_events.height == pairs.height  # one per (customer, purchase day)
    assert (history_events["as_of"] - history_events["last_purchase"] == timedelta(days=1)).all()
    rules = rules_for(
        "customer_history",
        history_events,
        now=datetime(2020, 9, 23),
        n_last=N_LAST,
        customer_ids=ds.customers["customer_id"],
    )
    validate(history_events, "customer_history", rules)


@pytest.mark.parametrize("as_of", DATES)
def test_popularity_matches_a_direct_count_and_the_events_form(
    ds: Dataset, popularity_events: pl.DataFrame, as_of: datetime
) -> None:
    out = article_popularity_as_of(ds.transactions, ds.articles, as_of)
    assert out.height == ds.articles.height
    day = datetime(as_of.year, as_of.month, as_of.day)
    week = ds.transactions.filter(pl.col("t_dat").is_between(day - timedelta(days=7), day, closed="left"))
    assert out["units_7d"].sum() == week["quantity"].sum()
    validate(out, "article_popularity", rules_for("article_popularity", out, article_ids=ds.articles["article_id"]))

    from_events = (
        out.select("article_id", pl.col("as_of").alias("t"))
        .join_asof(
            popularity_events.sort("as_of"), left_on="t", right_on="as_of", by="article_id", check_sortedness=False
        )
        .with_columns(pl.col(k).fill_null(v) for k, v in EMPTY.items())
        .with_columns(pl.col("t").alias("as_of"))
        .select(out.columns)
    )
    assert_frame_equal(from_events, out)


def test_popularity_events_only_on_change_days(ds: Dataset, popularity_events: pl.DataFrame) -> None:
    sales_days = ds.transactions.select("article_id", "t_dat").unique().height
    assert popularity_events.height <= 4 * sales_days  # at most four change days per (article, sale day)
    assert popularity_events.select(pl.struct("article_id", "as_of").is_unique().all()).item()
    validate(popularity_events, "article_popularity", rules_for("article_popularity", popularity_events))
