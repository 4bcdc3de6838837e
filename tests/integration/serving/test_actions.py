"""Purchases written back: the transaction offline, the recomputed history online, read by the next request."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from tinyrun import TinyRun

from recsys.data.dataset import CUSTOMER_ID
from recsys.features.customer_history import customer_history_as_of
from recsys.pipeline.views import CUSTOMERS_VIEW
from recsys.serving.actions import ActionError, record_click, record_purchase


def test_purchase_updates_the_history_the_next_request_reads(tiny_run: TinyRun) -> None:
    project = tiny_run.project
    fs = project.feature_store
    customer = tiny_run.recent_buyers(1, skip=10)[0]
    view = fs.get_feature_view(*CUSTOMERS_VIEW)
    before = view.get_feature_vector({CUSTOMER_ID: customer}).row(0, named=True)
    fresh = tiny_run.articles.filter(~pl.col("article_id").is_in(before["last_article_ids"])).row(0, named=True)
    when = tiny_run.request_time - timedelta(hours=2)

    first = record_purchase(project, customer, fresh["article_id"], when, price=0.02)
    second = record_purchase(project, customer, fresh["article_id"], when, quantity=2, price=0.05)
    assert (first.quantity, second.quantity) == (1, 3)  # one day, one row: quantities add up
    assert first.history_as_of == first.day + timedelta(days=1)  # like a pipeline snapshot: the next day

    tx = fs.get_feature_group("transactions", 1).read()
    day = tx.filter((pl.col(CUSTOMER_ID) == customer) & (pl.col("article_id") == fresh["article_id"]))
    assert day.select("quantity", "price").rows() == [(3, pytest.approx((0.02 + 2 * 0.05) / 3))]

    after = view.get_feature_vector({CUSTOMER_ID: customer}).row(0, named=True)
    assert after["last_article_ids"][0] == fresh["article_id"]
    assert after["n_purchases"] == before["n_purchases"] + 1 and after["n_units"] == before["n_units"] + 3
    # the same row the feature pipeline computes from all transactions
    expected = customer_history_as_of(tx, tiny_run.articles, first.history_as_of).filter(
        pl.col(CUSTOMER_ID) == customer
    )
    assert expected.row(0, named=True)["last_article_ids"] == after["last_article_ids"]
    assert expected.row(0, named=True)["price_index"] == pytest.approx(after["price_index"])


def test_unknown_article_and_clicks(tiny_run: TinyRun) -> None:
    with pytest.raises(ActionError, match="not in the catalogue"):
        record_purchase(tiny_run.project, "someone", 424242, tiny_run.request_time)
    record_click(tiny_run.project, "someone", 424242, tiny_run.request_time)
    clicks = tiny_run.project.feature_store.get_feature_group("clicks", 1).read()
    assert clicks.select("customer_id", "article_id").rows() == [("someone", 424242)]
