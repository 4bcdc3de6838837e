"""``collapse_runs`` equals a hash group-by on random sorted rows (sums, first values and aggregates)."""

from __future__ import annotations

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from recsys.features import common
from recsys.features.arrays import collapse_runs


def test_collapse_runs_matches_group_by() -> None:
    rng = np.random.default_rng(0)
    n = 5_000
    rows = pl.DataFrame(
        {
            "a": rng.integers(0, 30, n),
            "b": rng.integers(0, 20, n),
            "q": rng.integers(1, 4, n),
            "s": pl.Series(rng.random(n)).set(pl.Series(rng.random(n) < 0.1), None),
            "c": rng.choice(["x", "y", "z"], n),
        }
    ).sort("a", "b")
    got = collapse_runs(rows, ["a", "b"], ["q", "s"], [pl.col("c").mode().min()])
    want = (
        rows.group_by("a", "b")
        .agg(pl.col("q").sum(), pl.col("s").fill_null(0).sum(), pl.col("c").mode().min())
        .sort("a", "b")
    )
    assert got.height < n  # the random keys repeat: runs of several rows were collapsed
    assert_frame_equal(got, want)


def test_unique_keys_come_back_with_null_sums_as_zero() -> None:
    rows = pl.DataFrame({"a": [1, 2, 3], "q": [5, None, 7], "t": ["u", None, "w"]})
    assert_frame_equal(collapse_runs(rows, ["a"], ["q"]), rows.with_columns(pl.Series("q", [5, 0, 7])))


def test_daily_purchases_are_the_same_from_sorted_shuffled_and_sliced_input(monkeypatch) -> None:
    # Sorted by day (as the transactions group is), a stable sort by customer suffices; shuffled rows take the
    # full sort; customer codes are joined slice by slice.
    rng = np.random.default_rng(1)
    n = 4_000
    tx = pl.DataFrame(
        {
            "customer_id": rng.choice([f"customer-{i:03d}" for i in range(150)], n),
            "article_id": rng.choice(["a", "b", "c", "d"], n),
            "t_dat": pl.Series(rng.integers(0, 30, n)).cast(pl.Date).cast(pl.Datetime("us")),
            "quantity": rng.integers(1, 3, n).astype(np.int32),
            "price": rng.random(n),
        }
    )
    want = (
        tx.group_by("customer_id", "t_dat", "article_id")
        .agg(
            pl.col("quantity").sum(),
            (pl.col("price") * pl.col("quantity")).sum().alias("spend"),
            pl.col("quantity").sum().alias("priced_units"),
        )
        .sort("customer_id", "t_dat", "article_id")
    )
    monkeypatch.setattr(common, "CODE_SLICE_ROWS", 700)
    for rows in (tx.sort("t_dat", "customer_id", "article_id"), tx.sample(fraction=1.0, shuffle=True, seed=3)):
        daily, ids = common.daily_purchases(rows)
        got = daily.with_columns(ids.gather(daily.get_column("_c")).alias("customer_id")).select(want.columns)
        assert_frame_equal(got, want, check_exact=False)
