"""Point in time (design §3): a purchase never sees itself or anything later, joined the way a feature view does.

Customer c buys A on day 1, B and C on day 3, D on day 5; customer x also buys A on day 3. The training rows are
the transactions group; history and popularity come from their events forms, as-of joined backward on t_dat.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from featdata import articles, day, transactions

from recsys.features import (
    article_popularity_events,
    customer_history_events,
    transaction_features,
)

A, B, C, D = 10, 20, 30, 40


def _tx() -> pl.DataFrame:
    return transactions([("c", A, day(1)), ("c", B, day(3)), ("c", C, day(3)), ("c", D, day(5)), ("x", A, day(3))])


def _join(rows: pl.DataFrame, snapshots: pl.DataFrame, by: str) -> pl.DataFrame:
    """What a feature view does: for each row, the latest snapshot with as_of <= t_dat."""
    return rows.sort("t_dat").join_asof(
        snapshots.sort("as_of"),
        left_on="t_dat",
        right_on="as_of",
        by=by,
        strategy="backward",
        check_sortedness=False,
    )


def _last_articles(joined: pl.DataFrame) -> dict[tuple[str, int], list[int] | None]:
    return {(r["customer_id"], r["article_id"]): r["last_article_ids"] for r in joined.iter_rows(named=True)}


def test_history_joined_to_a_purchase_holds_only_earlier_days() -> None:
    rows = transaction_features(_tx()).select("customer_id", "article_id", "t_dat")
    got = _last_articles(_join(rows, customer_history_events(_tx(), articles()), "customer_id"))
    assert got[("c", A)] is None  # day 1: no history yet
    assert got[("c", B)] == [A]  # day 3: not B itself, not C bought the same day
    assert got[("c", C)] == [A]
    assert got[("c", D)] == [C, B, A]  # day 5: days 1 and 3, most recent first, same-day ties by id descending
    assert got[("x", A)] is None


def test_a_leaky_history_would_change_the_answer() -> None:
    # The same snapshots valid from their own day ("<=" semantics) let day-3 purchases see themselves.
    rows = transaction_features(_tx()).select("customer_id", "article_id", "t_dat")
    leaky = customer_history_events(_tx(), articles()).with_columns(pl.col("as_of") - timedelta(days=1))
    got = _last_articles(_join(rows, leaky, "customer_id"))
    assert got[("c", B)] == [C, B, A]  # the leak the real snapshots prevent
    assert got[("c", D)] == [D, C, B, A]


def test_popularity_joined_to_a_purchase_counts_only_earlier_days() -> None:
    rows = transaction_features(_tx()).select("customer_id", "article_id", "t_dat")
    joined = _join(rows, article_popularity_events(_tx()), "article_id")
    day3_a = joined.filter((pl.col("article_id") == A) & (pl.col("t_dat") == day(3)))
    assert day3_a["units_7d"].item() == 1  # c's day-1 sale only, not x's sale on day 3
    leaky = article_popularity_events(_tx()).with_columns(pl.col("as_of") - timedelta(days=1))
    leaked = _join(rows, leaky, "article_id").filter((pl.col("article_id") == A) & (pl.col("t_dat") == day(3)))
    assert leaked["units_7d"].item() == 2  # day 3's own sale would be counted
