"""Point in time through the whole pipeline: a purchase never sees itself, its own day, or anything later."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from recsys.pipeline.feature_job import backfill
from recsys.pipeline.groups import ARTICLE_POPULARITY, TRANSACTIONS
from recsys.pipeline.views import RETRIEVAL_VIEW
from recsys.store import Project
from tests.integration.pipeline.conftest import hand_made

D = datetime


def rows_by_purchase(frame: pl.DataFrame) -> dict[tuple[str, int, datetime], dict]:
    return {(r["customer_id"], r["article_id"], r["t_dat"]): r for r in frame.iter_rows(named=True)}


def test_retrieval_rows_see_only_earlier_days(project: Project) -> None:
    backfill(project, hand_made())
    view = project.feature_store.get_feature_view(*RETRIEVAL_VIEW)
    rows = rows_by_purchase(view.training_data()[0])
    first = rows["c1", 1, D(2020, 1, 1)]
    assert first["last_article_ids"] is None and first["n_purchases"] is None  # nothing before the first day
    for article in (2, 3):  # two purchases on one day: neither sees itself nor the other
        same_day = rows["c1", article, D(2020, 1, 3)]
        assert same_day["last_article_ids"] == [1]
        assert same_day["n_purchases"] == 1 and same_day["avg_price"] == 10.0
    later = rows["c1", 1, D(2020, 1, 10)]
    assert later["last_article_ids"] == [3, 2, 1]  # most recent first, one day's articles by id descending
    assert later["n_purchases"] == 3 and later["product_type_name_values"] == ["Dress", "Sweater"]
    assert rows["c2", 2, D(2020, 1, 3)]["n_purchases"] is None  # c2's two units on Jan 3 are one row
    assert rows["c2", 2, D(2020, 1, 3)]["quantity"] == 2


def test_popularity_joined_to_a_purchase_counts_only_earlier_days(project: Project) -> None:
    backfill(project, hand_made())
    fs = project.feature_store
    query = (
        TRANSACTIONS.get(fs)
        .select_all()
        .join(
            ARTICLE_POPULARITY.get(fs).select(["units_7d", "units_30d", "units_prev_7d", "article_price"]),
            on=["article_id"],
        )
    )
    rows = rows_by_purchase(query.read())
    # a2 first sells on Jan 3 (c1: 1 unit, c2: 2 units): nobody buying on Jan 3 sees those sales.
    assert rows["c1", 2, D(2020, 1, 3)]["units_30d"] is None
    assert rows["c2", 2, D(2020, 1, 3)]["units_30d"] is None
    assert rows["c1", 2, D(2020, 1, 3)]["article_price"] is None
    # a1 sold 1 unit on Jan 1; on Jan 10 that is outside the last 7 days [Jan 3, Jan 10) and inside the 30 days.
    # A leak of the Jan 10 purchase itself would make units_30d 2.
    jan10 = rows["c1", 1, D(2020, 1, 10)]
    assert (jan10["units_7d"], jan10["units_30d"], jan10["units_prev_7d"]) == (0, 1, 1)
    assert jan10["article_price"] == 10.0  # Jan 1's price; with Jan 10's own 12.0 it would be 11.0
