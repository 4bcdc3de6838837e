"""``collapse_runs`` equals a hash group-by on random sorted rows (sums, first values and aggregates)."""

from __future__ import annotations

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

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
