"""customer_history: last-N order, counts, recency, shares and price level, in both forms, on hand-made rows."""

from __future__ import annotations

import polars as pl
import pytest
from featdata import articles, day, transactions
from polars.testing import assert_frame_equal

from recsys.features import (
    customer_history_as_of,
    customer_history_events,
    days_since_last_purchase,
    market_prices,
)

A, B, C, D = 10, 20, 30, 40


def _story() -> pl.DataFrame:
    """c1 buys A on day 1; B (2 units) and C on day 3; D and A again on day 5. c2 buys A on day 2."""
    return transactions(
        [
            ("c1", A, day(1), 1, 10.0),
            ("c1", C, day(3), 1, 20.0),  # listed before B: the input order must not matter
            ("c1", B, day(3), 2, 5.0),
            ("c1", D, day(5), 1, 30.0),
            ("c1", A, day(5, hour=9), 1, 12.0),
            ("c2", A, day(2), 1, 10.0),
        ]
    )


def _row(df: pl.DataFrame, customer: str) -> dict:
    return df.filter(pl.col("customer_id") == customer).row(0, named=True)


def test_last_articles_most_recent_first_ties_by_article_id_descending_with_their_gaps() -> None:
    got = _row(customer_history_as_of(_story(), articles(), day(6)), "c1")
    # sequence (day ↑, article ↑): A(d1) B(d3) C(d3) A(d5) D(d5); reversed -> D A C B A; A bought again appears again
    assert got["last_article_ids"] == [D, A, C, B, A]
    assert got["last_article_gaps"] == [0, 0, 2, 2, 4]  # days before the last purchase (day 5)
    short = _row(customer_history_as_of(_story(), articles(), day(6), n_last=3), "c1")
    assert short["last_article_ids"] == [D, A, C] and short["last_article_gaps"] == [0, 0, 2]


def test_counts_recency_and_price_level() -> None:
    got = _row(customer_history_as_of(_story(), articles(), day(8)), "c1")
    assert got["n_purchases"] == 5  # (article, day) pairs: A d1, B d3, C d3, D d5, A d5
    assert got["n_units"] == 6  # 1 + 2 + 1 + 1 + 1
    assert got["n_distinct_articles"] == 4  # A, B, C, D
    assert got["last_purchase"] == day(5)
    assert got["days_since_last_purchase"] == 3  # day 8 - day 5
    assert got["as_of"] == day(8)
    assert got["avg_price"] == pytest.approx(82 / 6)  # (10 + 2·5 + 20 + 30 + 12) / 6 units
    # everyone's units before day 8: c1's 82 over 6 plus c2's 10 over 1 -> 92 / 7
    assert got["price_index"] == pytest.approx((82 / 6) / (92 / 7))


def test_shares_per_category_largest_first_ties_by_value() -> None:
    got = _row(customer_history_as_of(_story(), articles(), day(6)), "c1")
    # units: A 1+1 (Ladies, T-shirt, Black), B 2 (Ladies, Trousers, Black), C 1 (Mens, T-shirt, White), D 1 (Ladies,
    # Dress, no colour) -> 6 units
    assert got["index_group_name_values"] == ["Ladieswear", "Menswear"]
    assert got["index_group_name_shares"] == pytest.approx([5 / 6, 1 / 6])
    assert got["product_type_name_values"] == ["T-shirt", "Trousers", "Dress"]
    assert got["product_type_name_shares"] == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert got["colour_group_name_values"] == ["Black", "MISSING", "White"]  # 1/6 each: ties by value
    assert got["colour_group_name_shares"] == pytest.approx([4 / 6, 1 / 6, 1 / 6])


def test_as_of_uses_only_days_strictly_before_its_day() -> None:
    out = customer_history_as_of(_story(), articles(), day(3, hour=15))  # a time of day counts as its day
    assert out["customer_id"].to_list() == ["c1", "c2"]
    assert out["as_of"].to_list() == [day(3), day(3)]
    c1, c2 = _row(out, "c1"), _row(out, "c2")
    assert c1["last_article_ids"] == [A] and c1["n_units"] == 1  # day-3 purchases are not visible yet
    assert c1["days_since_last_purchase"] == 2 and c2["days_since_last_purchase"] == 1
    assert customer_history_as_of(_story(), articles(), day(1)).height == 0  # nothing before day 1


def test_events_one_snapshot_per_customer_and_purchase_day_valid_from_the_next_day() -> None:
    ev = customer_history_events(_story(), articles())
    assert ev.select("customer_id", "as_of").rows() == [("c1", day(2)), ("c1", day(4)), ("c1", day(6)), ("c2", day(3))]
    day3 = _row(ev.filter(pl.col("as_of") == day(4)), "c1")  # everything up to and including day 3
    assert day3["last_article_ids"] == [C, B, A] and day3["last_article_gaps"] == [0, 0, 2]
    assert (day3["n_purchases"], day3["n_units"], day3["n_distinct_articles"]) == (3, 4, 3)
    assert day3["index_group_name_values"] == ["Ladieswear", "Menswear"]
    assert day3["index_group_name_shares"] == pytest.approx([3 / 4, 1 / 4])  # A 1 + B 2 Ladies, C 1 Mens
    assert day3["days_since_last_purchase"] == 1  # at its as_of; recompute after a join (below)
    assert day3["price_index"] == pytest.approx((40 / 4) / (50 / 5))  # market up to day 3: + c2's A at 10


@pytest.mark.parametrize("n", range(1, 9))
def test_events_joined_at_any_day_equal_the_as_of_form(n: int) -> None:
    ev = customer_history_events(_story(), articles(), n_last=3)
    at = pl.DataFrame({"customer_id": ["c1", "c2"], "t": [day(n), day(n)]})
    joined = (
        at.sort("t")
        .join_asof(
            ev.sort("as_of"),
            left_on="t",
            right_on="as_of",
            by="customer_id",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("as_of").is_not_null())
        .with_columns(days_since_last_purchase(pl.col("t")), pl.col("t").alias("as_of"))
        .drop("t")
        .sort("customer_id")
    )
    expected = customer_history_as_of(_story(), articles(), day(n), n_last=3)
    assert joined.height == expected.height
    assert_frame_equal(joined.select(expected.columns), expected)


def test_string_article_ids_and_multi_categorical_affinities() -> None:
    tx = transactions([("c1", "x", day(1)), ("c1", "y", day(1)), ("c1", "z", day(2))])
    genres = pl.DataFrame(
        {"article_id": ["x", "y", "z"], "genres": [["Drama", "Comedy"], ["Drama"], []]},
        schema={"article_id": pl.String, "genres": pl.List(pl.String)},
    )
    for out in (
        customer_history_as_of(tx, genres, day(3), affinity_columns=["genres"]),
        customer_history_events(tx, genres, affinity_columns=["genres"]).tail(1),
    ):
        got = out.row(0, named=True)
        assert got["last_article_ids"] == ["z", "y", "x"]
        # elements counted once per unit: Drama 2, Comedy 1, and z has no genre -> MISSING 1
        assert got["genres_values"] == ["Drama", "Comedy", "MISSING"]
        assert got["genres_shares"] == pytest.approx([2 / 4, 1 / 4, 1 / 4])


def test_schema_and_options() -> None:
    out = customer_history_as_of(_story(), articles(), day(9), affinity_columns=[])
    assert out.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "as_of": pl.Datetime("us"),
            "last_article_ids": pl.List(pl.Int64),
            "last_article_gaps": pl.List(pl.Int32),
            "n_purchases": pl.Int32,
            "n_units": pl.Int32,
            "n_distinct_articles": pl.Int32,
            "last_purchase": pl.Datetime("us"),
            "days_since_last_purchase": pl.Int32,
            "avg_price": pl.Float64,
            "price_index": pl.Float64,
        }
    )
    assert customer_history_events(_story(), articles(), affinity_columns=[]).schema == out.schema
    with pytest.raises(ValueError, match="n_last"):
        customer_history_events(_story(), articles(), n_last=0)
    with pytest.raises(ValueError, match="not columns of the articles table"):
        customer_history_as_of(_story(), articles(), day(9), affinity_columns=["colour"])


def test_no_prices_means_no_price_level() -> None:
    tx = transactions([("c1", A, day(1), 1, None)])
    got = customer_history_events(tx, articles()).row(0, named=True)
    assert got["avg_price"] is None and got["price_index"] is None


def test_no_transactions_give_empty_frames_of_the_same_schema() -> None:
    empty = _story().head(0)
    full = customer_history_events(_story(), articles())
    assert customer_history_events(empty, articles()).schema == full.schema
    assert customer_history_as_of(empty, articles(), day(9)).schema == full.schema


def test_per_customer_buckets_with_the_global_market_equal_the_whole() -> None:
    market = market_prices(_story())
    # market price up to each day: d1 10/1; d2 20/2; d3 (20 + 2·5 + 20)/5 = 10; d5 (50 + 30 + 12)/7 = 92/7
    assert market.rows() == [(day(1), 10.0), (day(2), 10.0), (day(3), 10.0), (day(5), pytest.approx(92 / 7))]
    whole = customer_history_events(_story(), articles())
    parts = [
        customer_history_events(_story().filter(pl.col("customer_id") == c), articles(), market=market)
        for c in ("c1", "c2")
    ]
    assert_frame_equal(pl.concat(parts), whole)
    # c1 on day 5 pays 82/6 per unit; the market is 92/7 with c2, but c1's own 82/6 without: the global one matters
    alone = customer_history_events(_story().filter(pl.col("customer_id") == "c1"), articles())
    assert alone["price_index"][-1] == pytest.approx(1.0)
    assert whole.filter(pl.col("customer_id") == "c1")["price_index"][-1] == pytest.approx((82 / 6) / (92 / 7))
