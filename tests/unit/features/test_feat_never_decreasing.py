"""``never_decreasing`` (the gaps rule's step check on flat Arrow values) equals the per-list polars check."""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.features.arrays import never_decreasing


def _per_list(lists: pl.Series) -> list[bool]:
    return lists.to_frame().select(pl.col(lists.name).list.diff().list.min().fill_null(0) >= 0).to_series().to_list()


def test_a_drop_fails_only_its_own_row_and_a_new_list_may_start_lower() -> None:
    lists = pl.Series("g", [[0, 3, 9], [0, 5, 2], [], None, [4], [0, 0, 1], [1, 0]], dtype=pl.List(pl.Int32))
    # row 2 starts below row 1's end and passes; rows 1 and 6 go down inside their lists and fail
    assert never_decreasing(lists).to_list() == [True, False, True, True, True, True, False]
    assert never_decreasing(lists).name == "g"


def test_a_sliced_column_reads_its_own_items() -> None:
    lists = pl.Series("g", [[5, 1], [0, 1], [2, 0], [0, 2]], dtype=pl.List(pl.Int32))
    assert never_decreasing(lists.slice(1, 2)).to_list() == [True, False]
    chunked = pl.concat([lists.slice(0, 2), lists.slice(2, 2)], rechunk=False)
    assert never_decreasing(chunked).to_list() == [False, True, False, True]


def test_random_lists_match_the_per_list_check() -> None:
    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 6, 2_000)
    items = [sorted(rng.integers(0, 30, n).tolist()) for n in lengths]
    for row in rng.choice(len(items), 300, replace=False):  # some rows get one item lowered
        if len(items[row]) > 1:
            items[row][rng.integers(1, len(items[row]))] -= 31
    lists = pl.Series("g", [None if i % 97 == 0 else x for i, x in enumerate(items)], dtype=pl.List(pl.Int32))
    got = never_decreasing(lists).to_list()
    assert got == _per_list(lists)
    assert 100 < got.count(False) <= 300
