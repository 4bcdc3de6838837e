"""Purchases written back: the purchase offline, the recomputed history online, read by the next request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import polars as pl
import pytest
from tinyrun import TinyRun

from recsys.data.dataset import CUSTOMER_ID
from recsys.features.customer_history import customer_history_as_of
from recsys.pipeline.groups import CUSTOMER_HISTORY, TRANSACTIONS, GroupDef
from recsys.pipeline.views import CUSTOMERS_VIEW
from recsys.serving.actions import CLICKS, PURCHASES, ActionError, record_click, record_purchase
from recsys.store import NotFoundError, Project


def test_purchase_updates_the_history_the_next_request_reads(tiny_run: TinyRun) -> None:
    project = tiny_run.project
    fs = project.feature_store
    customer = tiny_run.recent_buyers(1, skip=10)[0]
    view = fs.get_feature_view(*CUSTOMERS_VIEW)
    source = TRANSACTIONS.get(fs).read()
    before = view.get_feature_vector({CUSTOMER_ID: customer}).row(0, named=True)
    fresh = tiny_run.articles.filter(~pl.col("article_id").is_in(before["last_article_ids"])).row(0, named=True)
    when = tiny_run.request_time - timedelta(hours=2)

    first = record_purchase(project, customer, fresh["article_id"], when, price=0.02)
    second = record_purchase(project, customer, fresh["article_id"], when, quantity=2, price=0.05)
    assert (first.quantity, second.quantity) == (1, 3)  # one day, one row: quantities add up
    assert first.history_as_of == first.day + timedelta(days=1)  # like a pipeline snapshot: the next day

    recorded = PURCHASES.get(fs).read()
    day = recorded.filter((pl.col(CUSTOMER_ID) == customer) & (pl.col("article_id") == fresh["article_id"]))
    assert day.select("quantity", "price").rows() == [(3, pytest.approx((0.02 + 2 * 0.05) / 3))]
    # the source data's group is left as it was: the pipeline's watermark and training's split stay on it
    assert TRANSACTIONS.get(fs).read().equals(source)

    after = view.get_feature_vector({CUSTOMER_ID: customer}).row(0, named=True)
    assert after["last_article_ids"][0] == fresh["article_id"]
    assert after["n_purchases"] == before["n_purchases"] + 1 and after["n_units"] == before["n_units"] + 3
    # the same row the feature pipeline computes from all transactions once the source data has the purchase
    tx = pl.concat([source, recorded])
    expected = customer_history_as_of(tx, tiny_run.articles, first.history_as_of).filter(
        pl.col(CUSTOMER_ID) == customer
    )
    assert expected.row(0, named=True)["last_article_ids"] == after["last_article_ids"]
    assert expected.row(0, named=True)["price_index"] == pytest.approx(after["price_index"])


def test_unknown_article_and_clicks(tiny_run: TinyRun) -> None:
    with pytest.raises(ActionError, match="not in the catalogue"):
        record_purchase(tiny_run.project, "someone", 424242, tiny_run.request_time)
    known = tiny_run.recent_buyers(1, skip=40)[0]
    article = tiny_run.articles.get_column("article_id")[1]
    at = tiny_run.request_time - timedelta(hours=1)
    record_click(tiny_run.project, known, article, at)
    # a visitor the store does not know may click (stored as naive UTC, like every time in the store)
    record_click(tiny_run.project, "someone-new", article, at.replace(tzinfo=timezone(timedelta(hours=2))))
    rows = read_or_empty(tiny_run.project, CLICKS).rows()
    assert (known, article, at) in rows and ("someone-new", article, at - timedelta(hours=2)) in rows


def read_or_empty(project: Project, group: GroupDef) -> pl.DataFrame:
    """The rows of an action's group, none before its first write creates it."""
    try:
        return group.get(project.feature_store).read()
    except NotFoundError:
        return pl.DataFrame()


BAD_CLICKS = {
    "empty customer": ({"customer_id": ""}, "customer_id must be a non-empty string"),
    "numeric customer": ({"customer_id": 5}, "customer_id must be a non-empty string in this store, got 5"),
    "text article": ({"article_id": "abc"}, "article_id must be an integer in this store, got 'abc'"),
    "boolean article": ({"article_id": True}, "article_id must be an integer in this store, got True"),
    "huge article": ({"article_id": 2**70}, "article_id must be between"),
    "unknown article": ({"article_id": 424242}, "article 424242 is not in the catalogue"),
    "tomorrow": ({"when": datetime.now(UTC) + timedelta(days=1)}, "is in the future"),
    "year 9999": ({"when": datetime(9999, 1, 1)}, "when (9999-01-01 00:00:00) is in the future"),
    "year 1, aware": ({"when": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))}, "when is out of range"),
    "text when": ({"when": "2020-09-01"}, "when must be a datetime"),
    "empty when": ({"when": ""}, "when must be a datetime"),
    "a day, no time": ({"when": date(2020, 9, 1)}, "when must be a datetime"),
}


@pytest.mark.parametrize("change", BAD_CLICKS.values(), ids=BAD_CLICKS.keys())
def test_a_bad_click_argument_is_named_and_nothing_is_written(
    tiny_run: TinyRun, change: tuple[dict[str, Any], str]
) -> None:
    project = tiny_run.project
    before = read_or_empty(project, CLICKS)
    click = {
        "customer_id": tiny_run.recent_buyers(1, skip=50)[0],
        "article_id": tiny_run.articles.get_column("article_id")[2],
        "when": tiny_run.request_time,
    }
    overrides, message = change
    with pytest.raises(ActionError) as info:
        record_click(project, **(click | overrides))
    assert message in str(info.value)
    after = read_or_empty(project, CLICKS)
    assert before.equals(after)


def stored(project: Project) -> list[pl.DataFrame]:
    """What a purchase could write: the transactions, the recorded purchases, and the history offline and online."""
    fs = project.feature_store
    history = CUSTOMER_HISTORY.get(fs)
    return [TRANSACTIONS.get(fs).read(), read_or_empty(project, PURCHASES), history.read(), history.read(online=True)]


BAD_PURCHASES = {
    "negative price": ({"price": -5.0}, "price=-5.0 breaks the transactions rule 'price_in_range'"),
    "NaN price": ({"price": float("nan")}, "price=nan breaks"),
    "infinite price": ({"price": float("inf")}, "price=inf breaks"),
    "text price": ({"price": "abc"}, "price must be a number"),
    "fractional quantity": ({"quantity": 1.5}, "quantity must be an integer, got 1.5"),
    "text quantity": ({"quantity": "2"}, "quantity must be an integer"),
    "boolean quantity": ({"quantity": True}, "quantity must be an integer"),
    "negative quantity": ({"quantity": -1}, "quantity=-1 breaks the transactions rule 'quantity_in_range'"),
    "huge quantity": ({"quantity": 2**40}, "quantity must be at most"),
    "huge article": ({"article_id": 2**70}, "article_id must be between"),
    "empty customer": ({"customer_id": ""}, "customer_id must be a non-empty string"),
    "numeric customer": ({"customer_id": 5}, "customer_id must be a non-empty string in this store, got 5"),
    "text article": ({"article_id": "abc"}, "article_id must be an integer"),
    "year 9999": ({"when": datetime(9999, 1, 1)}, "when=datetime.datetime(9999, 1, 1, 0, 0) breaks"),
    "tomorrow": ({"when": datetime.now(UTC) + timedelta(days=1)}, "'t_dat_not_future'"),
    "year 1": ({"when": datetime(1, 1, 1)}, "when (0001-01-01) is not after the source data's newest day"),
    "year 1, aware": ({"when": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))}, "when is out of range"),
    "text when": ({"when": "2020-09-01"}, "when must be a datetime"),
    "empty when": ({"when": ""}, "when must be a datetime"),
    "bad extra": ({"extra": {"sales_channel_id": [1]}}, "extra {'sales_channel_id': [1]} does not fit"),
}


@pytest.mark.parametrize("change", BAD_PURCHASES.values(), ids=BAD_PURCHASES.keys())
def test_a_bad_argument_is_named_and_nothing_is_written(tiny_run: TinyRun, change: tuple[dict[str, Any], str]) -> None:
    """Each bad argument alone, on a purchase that adds to a row recorded that day (where a sum or a mean of the
    day's row would hide a bad quantity or price)."""
    project = tiny_run.project
    customer = tiny_run.recent_buyers(1, skip=20)[0]
    article = tiny_run.articles.get_column("article_id")[3]
    purchase = {"customer_id": customer, "article_id": article, "when": tiny_run.request_time, "price": 0.03}
    record_purchase(project, **purchase)  # the row of the day (again for each case: quantities add up)
    before = stored(project)
    overrides, message = change
    with pytest.raises(ActionError) as info:
        record_purchase(project, **(purchase | overrides))
    assert message in str(info.value)
    after = stored(project)
    assert all(a.equals(b) for a, b in zip(before, after, strict=True))


def test_a_purchase_on_a_source_day_or_before_the_customers_latest_is_refused(tiny_run: TinyRun) -> None:
    """Late purchases go through the source data; a customer's online history never goes back in time."""
    project = tiny_run.project
    customer = tiny_run.recent_buyers(1, skip=30)[0]
    article = tiny_run.articles.get_column("article_id")[0]
    newest = TRANSACTIONS.get(project.feature_store).read().get_column("t_dat").max()
    before = stored(project)
    with pytest.raises(ActionError, match=r"\(\d{4}-\d\d-\d\d\) is not after the source data's newest day"):
        record_purchase(project, "first-time-buyer", article, newest + timedelta(hours=23))
    assert all(a.equals(b) for a, b in zip(before, stored(project), strict=True))
    record_purchase(project, customer, article, newest + timedelta(days=3))
    before = stored(project)
    with pytest.raises(ActionError, match=r"before customer .* latest recorded purchase"):
        record_purchase(project, customer, article, newest + timedelta(days=2))
    assert all(a.equals(b) for a, b in zip(before, stored(project), strict=True))
    record_purchase(project, "first-time-buyer", article, newest + timedelta(days=2))  # others' purchases do not count
