"""The rows the online store keeps: the newest per key, in key order, with nothing else of a row moved."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from polars.testing import assert_frame_equal

from recsys.store.local.online import newest_per_key


def test_the_newest_row_of_each_key_is_kept_whole_and_the_keys_come_sorted() -> None:
    day = [datetime(2020, 1, d) for d in (3, 1, 2, 5, 4)]
    df = pl.DataFrame(
        {"c": ["b", "a", "b", "a", "c"], "as_of": day, "ids": [[3], [1, 1], [2], [5, 5, 5], []], "n": [3, 1, 2, 5, 4]}
    )
    got = newest_per_key(df, ["c"], "as_of")
    expected = pl.DataFrame(
        {"c": ["a", "b", "c"], "as_of": [day[3], day[0], day[4]], "ids": [[5, 5, 5], [3], []], "n": [5, 3, 4]}
    )
    assert_frame_equal(got, expected)


def test_a_composite_key_is_sorted_column_by_column() -> None:
    df = pl.DataFrame({"a": [2, 1, 2, 1], "b": ["x", "y", "w", "x"], "v": [1, 2, 3, 4]})
    assert newest_per_key(df, ["a", "b"], None)["v"].to_list() == [4, 2, 3, 1]


def test_without_an_event_time_every_row_stays_and_equal_keys_keep_their_order() -> None:
    # the store upserts them in this order, so the later of two rows with one key is the one that stays
    df = pl.DataFrame({"c": ["b", "a", "b", "a"], "v": [1, 2, 3, 4]})
    assert newest_per_key(df, ["c"], None).rows() == [("a", 2), ("a", 4), ("b", 1), ("b", 3)]


def test_equal_event_times_keep_the_later_row() -> None:
    at = datetime(2020, 1, 1)
    df = pl.DataFrame({"c": ["a", "a", "a"], "as_of": [at, at, at], "v": [1, 2, 3]})
    assert newest_per_key(df, ["c"], "as_of")["v"].to_list() == [3]
