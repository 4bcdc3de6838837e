"""The filter rules: recently bought (a window over the history row), unknown and inactive articles."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest

from recsys.serving.filters import allowed_rows, recently_bought, showable
from recsys.serving.options import ServingOptions

D = datetime
AT = D(2020, 9, 23, 10)


def test_recently_bought_is_the_head_of_the_history_when_the_last_purchase_is_recent() -> None:
    rows = [
        {"last_article_ids": [5, 4, 3, 5, 2], "last_purchase": D(2020, 9, 20)},  # 3 days ago
        {"last_article_ids": [9, 8], "last_purchase": "2020-08-01T00:00:00"},  # 53 days ago (ISO, from the wire)
        {"last_article_ids": None, "last_purchase": None},  # no history
        {},  # a customer the store does not know
    ]
    options = ServingOptions(bought_window_days=30, bought_last_n=4)
    assert recently_bought(rows, [AT] * 4, options) == [[5, 4, 3], [], [], []]
    assert recently_bought(rows, [AT] * 4, ServingOptions(bought_window_days=60)) == [[5, 4, 3, 2], [9, 8], [], []]
    assert recently_bought(rows, [AT] * 4, ServingOptions(filter_bought=False)) == [[], [], [], []]
    # the window counts whole days: bought on the 20th, asked on the 23rd = 3 days
    assert recently_bought(rows[:1], [AT], ServingOptions(bought_window_days=2)) == [[]]
    assert recently_bought(rows[:1], [AT], ServingOptions(bought_window_days=3)) == [[5, 4, 3, 2]]


def test_allowed_rows_masks_each_querys_own_list_then_keeps_the_first_rows() -> None:
    query, ids = np.array([0, 0, 0, 0, 1, 1, 2]), np.array([5, 4, 3, 2, 5, 3, 7])
    keep = allowed_rows(query, ids, [[5, 4], [], [7]])
    assert ids[keep].tolist() == [3, 2, 5, 3] and query[keep].tolist() == [0, 0, 1, 1]  # 5 is banned for 0 only
    assert ids[allowed_rows(query, ids, [[5, 4], [], [7]], keep_per_query=1)].tolist() == [3, 5]
    assert allowed_rows(query, ids, [[], [], []]).all()
    assert allowed_rows(query, ids, [[]], keep_per_query=2).tolist() == [True, True, False, False, True, True, True]
    strings = np.array(["a", "b"], dtype=object)
    assert allowed_rows(np.array([0, 0]), strings, [["b"]]).tolist() == [True, False]
    assert allowed_rows(np.zeros(0, np.int64), np.zeros(0, np.int64), [[1]]).shape == (0,)
    assert ids[allowed_rows(query, ids, [[None, 4], [], []])].tolist() == [5, 3, 2, 5, 3, 7]  # a null id: no ban
    # one instance, many ids and bans: np.isin's path, the same answer
    many = np.arange(5000)
    assert np.flatnonzero(~allowed_rows(np.zeros(5000, np.int64), many, [list(range(0, 5000, 7))])).tolist() == list(
        range(0, 5000, 7)
    )


@pytest.fixture
def articles() -> pl.DataFrame:
    """An online read: article 3 is unknown (all nulls), 4 is off sale, 5 sold nothing lately."""
    return pl.DataFrame(
        {
            "article_id": [1, 2, 3, 4, 5],
            "prod_name": ["a", "b", None, "d", "e"],
            "active": [1, None, None, 0, 1],
            "units_30d": [3, 1, None, 2, 0],
        }
    )


def test_unknown_and_inactive_articles_are_not_shown(articles: pl.DataFrame) -> None:
    assert showable(articles, ServingOptions())["article_id"].to_list() == [1, 2, 5]  # null flag = active
    assert showable(articles, ServingOptions(min_units_30d=1))["article_id"].to_list() == [1, 2]
    assert showable(articles, ServingOptions(inactive_column=""))["article_id"].to_list() == [1, 2, 4, 5]
    as_text = articles.with_columns(pl.col("active").cast(pl.String).replace({"0": "false", "1": "true"}))
    assert showable(as_text, ServingOptions())["article_id"].to_list() == [1, 2, 5]
    assert showable(articles.drop("active"), ServingOptions())["article_id"].to_list() == [1, 2, 4, 5]
