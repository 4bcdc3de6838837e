"""article_popularity: 7/30-day windows strictly before as_of, the smoothed trend, and change-only snapshots."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from featdata import day, transactions
from polars.testing import assert_frame_equal

from recsys.features import article_popularity_as_of, article_popularity_events
from recsys.features.article_popularity import EMPTY

T = 40  # the as_of day of the window tests
CATALOGUE = pl.DataFrame({"article_id": [1, 2, 3]})


def _sales() -> pl.DataFrame:
    """Article 1 sells on many days around day T; article 3 once, 3 days before; article 2 never. Most sales cost
    1.0 a unit; those of T - 31 cost 2.0, of T 3.0, and those of T - 1 have no price."""
    units = {T - 31: 100, T - 30: 4, T - 15: 5, T - 14: 1, T - 8: 3, T - 7: 1, T - 1: 2, T: 50, T + 1: 9}
    price = {T - 31: 2.0, T - 1: None, T: 3.0}
    rows = [(f"c{n}", 1, day(n), q, price.get(n, 1.0)) for n, q in units.items()]
    return transactions([*rows, ("x", 3, day(T - 3), 1, 4.0)])


def test_windows_and_trend_by_hand() -> None:
    out = article_popularity_as_of(_sales(), CATALOGUE, day(T, hour=11))
    assert out.columns == ["article_id", "as_of", "units_7d", "units_30d", "units_prev_7d", "trend", "article_price"]
    assert out["as_of"].to_list() == [day(T)] * 3
    one, two, three = out.rows(named=True)
    assert one["units_7d"] == 3  # [T-7, T): day T-1 (2) + day T-7 (1); day T itself (50) is not before T
    assert one["units_prev_7d"] == 4  # [T-14, T-7): T-8 (3) + T-14 (1); T-15 is outside
    assert one["units_30d"] == 16  # [T-30, T): 2 + 1 + 3 + 1 + 5 + 4; T-31 (100) is outside
    assert one["trend"] == pytest.approx((3 + 1) / (4 + 1))  # 0.8: fewer sales this week than last
    assert (two["units_7d"], two["units_30d"], two["units_prev_7d"], two["trend"]) == (0, 0, 0, 1.0)  # no sales
    assert (three["units_7d"], three["units_30d"], three["units_prev_7d"]) == (1, 1, 0)
    assert three["trend"] == 2.0  # (1 + 1) / (0 + 1)
    # the price counts every day before T, not only the windows, and only units with a price: T - 31's
    # 100 units at 2.0 and the 14 units at 1.0 of T - 30 .. T - 7 (T - 1's 2 units have none; T's are not before)
    assert one["article_price"] == pytest.approx((100 * 2.0 + 14 * 1.0) / 114)
    assert (two["article_price"], three["article_price"]) == (None, 4.0)


def test_one_sale_changes_the_numbers_on_four_days_only() -> None:
    ev = article_popularity_events(transactions([("c", 7, day(10), 2, 1.5)]), until=day(60))
    assert ev.select("as_of", "units_7d", "units_30d", "units_prev_7d", "trend", "article_price").rows() == [
        (day(11), 2, 2, 0, 3.0, 1.5),  # the day after the sale: in every window; trend (2+1)/(0+1)
        (day(18), 0, 2, 2, 1 / 3, 1.5),  # a week later it is last week's sale: (0+1)/(2+1)
        (day(25), 0, 2, 0, 1.0, 1.5),  # two weeks later only the 30-day window holds it
        (day(41), 0, 0, 0, 1.0, 1.5),  # 31 days later it is gone; the price level stays
    ]


def test_events_end_at_the_day_after_the_last_sale_by_default() -> None:
    ev = article_popularity_events(transactions([("c", 7, day(10)), ("c", 8, day(12))]))
    assert ev["as_of"].max() == day(13)
    assert ev.filter(pl.col("article_id") == 7)["as_of"].to_list() == [day(11)]


def test_unchanged_numbers_make_no_snapshot() -> None:
    # One unit on days 1, 17, 24 and 31, without a price. Day 32 is a change day four times over (31 enters the
    # week, 24 moves to the week before, 17 leaves it, 1 leaves the 30 days), but the changes cancel: no snapshot
    # on day 32.
    days = (1, 17, 24, 31)
    tx = transactions([(f"c{d}", 7, day(d), 1, None) for d in days])
    ev = article_popularity_events(tx, until=day(70))
    assert ev["article_price"].null_count() == ev.height
    assert ev.select("as_of", "units_7d", "units_30d", "units_prev_7d").rows() == [
        (day(2), 1, 1, 0),  # 7d [-5, 2): day 1
        (day(9), 0, 1, 1),  # day 1 moved to the week before
        (day(16), 0, 1, 0),
        (day(18), 1, 2, 0),  # day 17 arrives
        (day(25), 1, 3, 1),  # 7d: 24; 30d [-5, 25): 1, 17, 24; prev [11, 18): 17
        # day 32 would be (1, 3, 1) again: 7d 31, 30d [2, 32): 17, 24, 31, prev [18, 25): 24
        (day(39), 0, 3, 1),
        (day(46), 0, 3, 0),
        (day(48), 0, 2, 0),  # 30d [18, 48): 24, 31
        (day(55), 0, 1, 0),
        (day(62), 0, 0, 0),
    ]
    assert ev.select(pl.struct("article_id", "as_of").is_unique().all()).item()
    # With prices, day 32 keeps its snapshot: the price level now counts the sale of day 31.
    priced = article_popularity_events(transactions([(f"c{d}", 7, day(d), 1, float(d)) for d in days]), until=day(70))
    on_32 = priced.filter(pl.col("as_of") == day(32)).select("units_7d", "units_30d", "units_prev_7d", "article_price")
    assert on_32.rows() == [(1, 3, 1, (1 + 17 + 24 + 31) / 4)]
    assert priced.drop("article_price").filter(pl.col("as_of") != day(32)).equals(ev.drop("article_price"))


@pytest.mark.parametrize("n", [T - 32, T - 20, T - 8, T - 7, T - 1, T, T + 1, T + 2])
def test_events_joined_at_any_day_equal_the_as_of_form(n: int) -> None:
    ev = article_popularity_events(_sales())
    at = pl.DataFrame({"article_id": [1, 2, 3], "t": [day(n)] * 3})
    joined = (
        at.join_asof(
            ev.sort("as_of"),
            left_on="t",
            right_on="as_of",
            by="article_id",
            strategy="backward",
            check_sortedness=False,
        )
        .with_columns(pl.col(k).fill_null(v) for k, v in EMPTY.items())  # no snapshot yet: no sales yet
        .with_columns(pl.col("t").alias("as_of"))
        .drop("t")
    )
    expected = article_popularity_as_of(_sales(), CATALOGUE, day(n))
    assert_frame_equal(joined.select(expected.columns), expected)


def test_no_sales_give_no_snapshots_and_zeros_as_of() -> None:
    empty = _sales().head(0)
    assert article_popularity_events(empty).schema == article_popularity_events(_sales()).schema
    assert article_popularity_events(empty).height == 0
    out = article_popularity_as_of(empty, CATALOGUE, day(T))
    assert out.select("units_7d", "units_30d", "units_prev_7d", "trend").rows() == [(0, 0, 0, 1.0)] * 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_snapshots_after_a_day_from_recent_sales_alone_equal_the_full_ones(seed: int) -> None:
    # An incremental run computes only the snapshots after its watermark, from the last 62 days of sales. Sparse
    # sales whose gaps are the change offsets (and sums of them) make long gaps, sales leaving one window as others
    # enter, and changes that cancel. (Reading fewer than 30 days fails here.)
    rng = np.random.default_rng(seed)
    rows = []
    for article in range(300):
        gaps = rng.choice([1, 7, 8, 14, 15, 16, 23, 30, 31], size=int(rng.integers(2, 7)))
        days = int(rng.integers(0, 150)) + np.cumsum(gaps)
        prices = [None if p < 0.1 else round(10 * p, 2) for p in rng.random(len(days))]  # some unpriced sales
        rows += [
            (f"c{article}", article, day(int(d)), int(rng.integers(1, 3)), p) for d, p in zip(days, prices, strict=True)
        ]
    tx = transactions(rows)
    until = tx["t_dat"].max()
    full = article_popularity_events(tx, until=until)
    for after in range(60, 300, 6):
        expected = full.filter(pl.col("as_of") > day(after)).sort("article_id", "as_of")
        got = article_popularity_events(tx, until=until, after=day(after, hour=13)).sort("article_id", "as_of")
        assert_frame_equal(got, expected)
    assert article_popularity_events(tx, until=until, after=day(100)).height > 100
