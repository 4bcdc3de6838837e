"""The transactions group: one row per (customer, article, day), quantity, weighted price, month sin/cos."""

from __future__ import annotations

import math
from datetime import datetime

import polars as pl
import pytest
from featdata import day, transactions
from polars.testing import assert_frame_equal

from recsys.data.dataset import FeatureSpec
from recsys.features import transaction_features, with_month_features
from recsys.features.transactions import month_features

CHANNEL = {"sales_channel_id": FeatureSpec("categorical")}


@pytest.mark.parametrize(
    ("month", "sin", "cos"),
    [
        (1, 0.0, 1.0),  # angle 2π·0/12 = 0
        (2, 0.5, math.sqrt(3) / 2),  # angle π/6
        (4, 1.0, 0.0),  # angle 2π·3/12 = π/2
        (7, 0.0, -1.0),  # angle π
        (10, -1.0, 0.0),  # angle 3π/2
        (12, -0.5, math.sqrt(3) / 2),  # angle 11π/6: next to January
    ],
)
def test_month_sin_cos_by_hand(month: int, sin: float, cos: float) -> None:
    ts = pl.DataFrame({"t": [datetime(2020, month, 17, 13)]})
    got = ts.select(month_features(pl.col("t"))).row(0)
    assert got == pytest.approx((sin, cos), abs=1e-12)


def test_rows_of_one_day_become_one_row_with_summed_quantity_and_weighted_price() -> None:
    tx = transactions(
        [
            ("c1", 1, day(1, hour=8), 2, 10.0),  # 2 units at 10
            ("c1", 1, day(1, hour=17), 1, 16.0),  # 1 unit at 16 -> 3 units, (2·10 + 16) / 3 = 12
            ("c1", 1, day(2), 1, None),  # next day: its own row; no price at all -> null
            ("c1", 2, day(1), 1, None),  # a row without price does not count in the mean ...
            ("c1", 2, day(1), 1, 4.0),  # ... so the price is 4, over 2 units
            ("c2", 1, day(1), 1, 7.0),
        ]
    )
    out = transaction_features(tx)
    assert out.columns == ["customer_id", "article_id", "t_dat", "quantity", "price", "month_sin", "month_cos"]
    assert out.schema["t_dat"] == pl.Datetime("us") and out.schema["quantity"] == pl.Int32
    # sorted by t_dat, customer_id, article_id; t_dat at midnight
    assert out.select("customer_id", "article_id", "t_dat", "quantity", "price").rows() == [
        ("c1", 1, day(1), 3, 12.0),
        ("c1", 2, day(1), 2, 4.0),
        ("c2", 1, day(1), 1, 7.0),
        ("c1", 1, day(2), 1, None),
    ]
    assert out.select(pl.struct("customer_id", "article_id", "t_dat").is_unique().all()).item()
    assert out["month_sin"].to_list() == [0.0] * 4  # January


def test_categorical_feature_keeps_the_most_frequent_value_ties_to_the_smallest() -> None:
    tx = transactions(
        [
            ("c1", 1, day(1)),
            ("c1", 1, day(1)),
            ("c1", 1, day(1)),  # "2", "2", "1" -> "2" (most frequent, though "1" is smaller)
            ("c1", 2, day(1)),
            ("c1", 2, day(1)),  # "2", "1" -> tie -> "1"
            ("c1", 3, day(1)),  # " 2 " alone -> "2" (cleaned)
            ("c1", 4, day(1)),
            ("c1", 4, day(1)),  # null, "2" -> "2": nulls are not a value
        ],
        sales_channel_id=["2", "2", "1", "2", "1", " 2 ", None, "2"],
    )
    out = transaction_features(tx, CHANNEL).sort("article_id")
    assert out["sales_channel_id"].to_list() == ["2", "1", "2", "2"]
    assert out["quantity"].to_list() == [3, 2, 1, 2]


def test_numeric_feature_is_averaged_and_names_are_made_storable() -> None:
    tx = transactions([("c1", 1, day(1)), ("c1", 1, day(1))], **{"Basket Size": [2.0, 4.0]})
    out = transaction_features(tx, {"Basket Size": FeatureSpec("numeric")})
    assert out["basket_size"].to_list() == [3.0]  # (2 + 4) / 2


def test_columns_the_spec_does_not_type_are_left_out() -> None:
    tx = transactions([("c1", 1, day(1))], untyped=["x"])
    assert "untyped" not in transaction_features(tx, CHANNEL).columns


def test_month_columns_added_later_equal_the_one_call_frame() -> None:
    tx = transactions([("c1", 1, day(1)), ("c2", 2, day(40))], sales_channel_id=["1", "2"])
    without = transaction_features(tx, CHANNEL, month=False)
    assert "month_sin" not in without.columns and "month_cos" not in without.columns
    assert_frame_equal(with_month_features(without), transaction_features(tx, CHANNEL), check_exact=True)
