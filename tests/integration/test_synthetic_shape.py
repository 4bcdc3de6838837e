"""The `small` preset looks like retail data: long tail, heavy buyers, repurchases, seasons, weekly rhythm."""

from __future__ import annotations

import datetime as dt
import time

import polars as pl
import pytest

from recsys.data.synthetic import SyntheticData, generate


@pytest.fixture(scope="module")
def small() -> tuple[SyntheticData, float]:
    started = time.perf_counter()
    data = generate("small", seed=42)
    return data, time.perf_counter() - started


def test_size_and_speed(small: tuple[SyntheticData, float]) -> None:
    data, seconds = small
    assert data.customers.height == 50_000 and data.articles.height == 15_000
    assert 1_450_000 < data.transactions.height < 1_550_000
    assert seconds < 20.0


def test_top_one_percent_of_articles_takes_15_to_35_percent_of_sales(small: tuple[SyntheticData, float]) -> None:
    data, _ = small
    sales = data.transactions.group_by("article_id").len().sort("len", descending=True)["len"]
    share = sales.head(data.articles.height // 100).sum() / data.transactions.height
    assert 0.15 <= share <= 0.35


def test_most_customers_buy_few_times_a_few_very_often(small: tuple[SyntheticData, float]) -> None:
    data, _ = small
    per_customer = data.transactions.group_by("customer_id").len()["len"].sort(descending=True)
    assert per_customer.median() <= 0.5 * per_customer.mean()
    assert per_customer.quantile(0.99) >= 10 * per_customer.median()
    top_tenth = per_customer.head(len(per_customer) // 10).sum() / per_customer.sum()
    assert top_tenth > 0.4  # the busiest 10% of customers make over 40% of purchases


def test_repurchases_are_5_to_25_percent(small: tuple[SyntheticData, float]) -> None:
    tx = small[0].transactions
    first = tx.group_by("customer_id", "article_id").agg(first=pl.col("t_dat").min())
    repeats = tx.join(first, on=["customer_id", "article_id"]).filter(pl.col("t_dat") > pl.col("first")).height
    assert 0.05 <= repeats / tx.height <= 0.25


def month_share(data: SyntheticData, product_type: str) -> dict[int, float]:
    by_month = (
        data.transactions.join(data.articles.select("article_id", "product_type_name"), on="article_id")
        .group_by(month=pl.col("t_dat").dt.month())
        .agg(share=(pl.col("product_type_name") == product_type).mean())
    )
    return dict(zip(by_month["month"].to_list(), by_month["share"].to_list(), strict=True))


def test_seasons_shift_category_shares(small: tuple[SyntheticData, float]) -> None:
    data, _ = small
    swim, coats = month_share(data, "Swimwear bottom"), month_share(data, "Coat")
    assert swim[7] > 4 * swim[1]
    assert coats[1] > 4 * coats[7]


def test_weekly_rhythm(small: tuple[SyntheticData, float]) -> None:
    by_day = small[0].transactions.group_by(dow=pl.col("t_dat").dt.weekday()).len()
    count = dict(zip(by_day["dow"].to_list(), by_day["len"].to_list(), strict=True))
    assert count[6] > 1.15 * count[2]  # Saturday is busier than Tuesday


def test_articles_launch_during_the_data(small: tuple[SyntheticData, float]) -> None:
    data, _ = small
    first_sale = data.transactions.group_by("article_id").agg(first=pl.col("t_dat").min())
    launched_in_last_month = first_sale.filter(pl.col("first") > dt.date(2020, 8, 22)).height
    assert launched_in_last_month > 50  # new articles keep arriving, so retrieval must handle unseen ones
