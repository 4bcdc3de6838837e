"""The splits: by time (design §6); per customer (each customer's last rows by time are test, the ones before
validation); at random (a seeded share of all rows for test, as many for validation)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from recsys.training.splits import Split, TrainingDataError, split_by_time, split_per_customer, split_random


def test_time_split_boundaries_are_the_last_weeks() -> None:
    split = Split.before(datetime(2020, 9, 23))
    assert (split.val_start, split.test_start) == (datetime(2020, 9, 9), datetime(2020, 9, 16))
    assert not split.per_row and split.describe() == "train < 2020-09-09 ≤ validation < 2020-09-16 ≤ test < 2020-09-23"


def test_time_split_puts_each_row_in_the_period_its_time_falls_in() -> None:
    split = Split.before(datetime(2020, 9, 23))
    times = [
        datetime(2020, 9, 8, 23, 59),  # the last minute of training
        datetime(2020, 9, 9),  # validation starts at its midnight
        datetime(2020, 9, 15, 23, 59),
        datetime(2020, 9, 16),  # so does test
        datetime(2020, 9, 22, 23, 59),
        datetime(2019, 1, 1),
    ]
    rows = pl.DataFrame({"t_dat": times, "article_id": range(len(times))})
    parts = split_by_time(rows, split)
    assert [part["article_id"].to_list() for part in parts] == [[0, 5], [1, 2], [3, 4]]  # in the rows' order
    dates = rows.with_columns(pl.col("t_dat").dt.date())  # a Date column is cut at the same days
    assert [part["article_id"].to_list() for part in split_by_time(dates, split)] == [[0, 5], [1, 2], [3, 4]]


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


def _rows(n: int) -> pl.DataFrame:
    day = datetime(2020, 1, 1)
    return pl.DataFrame(
        {
            "customer_id": [f"c{i % 37}" for i in range(n)],
            "article_id": list(range(n)),
            "t_dat": [day + timedelta(days=i % 90) for i in range(n)],
        }
    )


def test_random_split_holds_out_a_seeded_share_whatever_the_row_order() -> None:
    rows = _rows(1000)
    train, val, test = split_random(rows, 0.2, seed=42)
    assert (train.height, val.height, test.height) == (600, 200, 200)
    ids = [set(frame["article_id"]) for frame in (train, val, test)]
    assert ids[0] | ids[1] | ids[2] == set(range(1000)) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    # the same seed draws the same rows from the same data in another order; another seed draws others
    again = split_random(rows.sample(fraction=1.0, shuffle=True, seed=7), 0.2, seed=42)
    assert [set(frame["article_id"]) for frame in again] == ids
    other = split_random(rows, 0.2, seed=1)
    assert set(other[2]["article_id"]) != ids[2]
    # every period spans the whole time range: a random split, not a time split
    for frame in (train, val, test):
        assert frame["t_dat"].min() == datetime(2020, 1, 1) and frame["t_dat"].max() == datetime(2020, 3, 30)


def test_random_split_refuses_a_share_out_of_range() -> None:
    for share in (0.0, 0.5, 1.2):
        with pytest.raises(TrainingDataError, match=r"random split's test share must be in \(0, 0.5\)"):
            split_random(_rows(10), share, seed=0)


def test_row_splits_are_evaluated_row_by_row_and_say_what_they_are() -> None:
    day = datetime(2020, 1, 1)
    random = Split(day, day, day, "random", 0.2, 42)
    per_customer = Split(day, day, day, "per-customer", 0.1)
    assert random.per_row and per_customer.per_row
    assert random.describe() == "random split (20% of rows for test, as many for validation, seed 42)"
    assert per_customer.describe() == "per-customer split (last 10% of each customer's rows)"


def test_a_split_reads_back_from_its_saved_dict() -> None:
    day = datetime(2020, 1, 1)
    for split in (Split.before(datetime(2020, 9, 23)), Split(day, day, day, "random", 0.2, 42)):
        assert Split.from_dict(split.to_dict()) == split
    # evaluation.json of runs before `kind` existed: a time split
    assert (
        Split.from_dict({"val_start": "2020-09-09T00:00:00", "test_start": "2020-09-16", "end": "2020-09-23"}).kind
        == "time"
    )
