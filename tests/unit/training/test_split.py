"""The per-customer split: each customer's last rows by time are test, the ones before validation."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from recsys.training.retrieval_job import TimeSplit, TrainingDataError, split_per_customer


def test_time_split_boundaries_are_the_last_weeks() -> None:
    split = TimeSplit.before(datetime(2020, 9, 23))
    assert (split.val_start, split.test_start) == (datetime(2020, 9, 9), datetime(2020, 9, 16))


def test_each_customer_keeps_time_order_across_the_parts() -> None:
    day = datetime(2020, 1, 1)
    rows = pl.DataFrame(
        {
            "customer_id": ["a"] * 20 + ["b"] * 3,
            "article_id": [*range(20), 1, 2, 3],
            "t_dat": [day + timedelta(days=i) for i in range(20)] + [day, day + timedelta(days=1), day],
        }
    ).sample(fraction=1.0, shuffle=True, seed=3)
    train, val, test = split_per_customer(rows, 0.1)
    assert train.height + val.height + test.height == rows.height
    a = [frame.filter(pl.col("customer_id") == "a")["article_id"].to_list() for frame in (train, val, test)]
    assert a == [list(range(16)), [16, 17], [18, 19]]  # ceil(0.1 * 20) = 2 rows each
    b = [frame.filter(pl.col("customer_id") == "b")["article_id"].to_list() for frame in (train, val, test)]
    assert b == [[1], [3], [2]]  # ceil(0.3) = 1; same-day rows ordered by article id, the later day last


def test_a_share_out_of_range_is_refused() -> None:
    with pytest.raises(TrainingDataError, match=r"\(0, 0.5\)"):
        split_per_customer(
            pl.DataFrame({"customer_id": ["a"], "article_id": [1], "t_dat": [datetime(2020, 1, 1)]}), 0.5
        )
