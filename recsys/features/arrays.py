"""Vectorised building blocks over numpy arrays: runs of equal keys and lists from run lengths.

The events forms of the history and popularity groups work on millions of rows at H&M scale; these helpers keep
them free of Python loops over rows and of per-row objects (lists are assembled once, from Arrow offsets).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def lists(values: pl.Series | pa.Array, counts: np.ndarray, name: str) -> pl.Series:
    """Consecutive runs of ``values`` as lists, ``counts[i]`` items for row i (Arrow offsets, no Python loop)."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = values.to_arrow() if isinstance(values, pl.Series) else values
    return pl.Series(name, pa.LargeListArray.from_arrays(pa.array(offsets), flat))


def coded_lists(codes: np.ndarray, vocab: pl.Series, counts: np.ndarray, name: str) -> pl.Series:
    """Like :func:`lists` for ``vocab[codes]``: built as dictionary-encoded lists, then cast to strings once."""
    coded = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), vocab.to_arrow())
    return lists(coded, counts, name).cast(pl.List(pl.String))


def never_decreasing(lists: pl.Series) -> pl.Series:
    """True for the rows of a numeric list column whose items never go down (empty and null lists pass).

    Works on the flat Arrow values and offsets: ~8x faster than ``list.diff().list.min()`` on H&M's histories.
    """
    flat = lists.rechunk().to_arrow()
    offsets = flat.offsets.to_numpy().astype(np.int64)
    values = flat.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    offsets -= offsets[0]
    drops = np.flatnonzero(np.diff(values) < 0) + 1  # items smaller than the item before them in the flat values
    rows = np.searchsorted(offsets, drops, side="right") - 1
    ok = np.ones(len(lists), dtype=bool)
    ok[rows[drops > offsets[rows]]] = False  # a row's first item has no predecessor within its list
    return pl.Series(lists.name, ok)


def group_starts(*keys: np.ndarray) -> np.ndarray:
    """True where a run of equal keys begins (the arrays are sorted by the keys)."""
    new = np.ones(len(keys[0]), dtype=bool)
    if len(new) > 1:
        new[1:] = np.logical_or.reduce([k[1:] != k[:-1] for k in keys])
    return new


def collapse_runs(
    rows: pl.DataFrame, keys: list[str], sums: list[str], aggs: list[pl.Expr] | None = None
) -> pl.DataFrame:
    """One row per run of equal ``keys`` in ``rows`` (sorted by ``keys``): the keys, ``sums`` (nulls count as 0)
    and every other column, taken from the run's first row unless ``aggs`` say otherwise.

    Faster than a hash group-by followed by a sort at H&M scale (31.8M rows): sums are ``np.add.reduceat`` over
    the runs, and only runs of several rows (usually few) go through a group-by for ``aggs``, whose results replace
    the first-row values. Each expression in ``aggs`` must be named after an existing column.
    """
    n = rows.height
    if n == 0:
        return rows
    starts = group_starts(*(rows.get_column(k).to_physical().to_numpy() for k in keys))
    first = np.flatnonzero(starts)
    out = rows.gather(first)
    if len(first) == n:
        return out.with_columns(pl.col(sums).fill_null(0))
    out = out.with_columns(
        pl.Series(name, np.add.reduceat(rows.get_column(name).fill_null(0).to_numpy(), first)).cast(rows.schema[name])
        for name in sums
    )
    if aggs:
        length = np.diff(np.r_[first, n])
        multi = length > 1
        in_multi = np.repeat(multi, length)
        run_of_row = np.repeat(np.flatnonzero(multi).astype(np.int64), length[multi])
        merged = (
            rows.filter(pl.Series(in_multi))
            .with_columns(pl.Series("_run", run_of_row))
            .group_by("_run")
            .agg(aggs)
            .sort("_run")
        )
        at = pl.Series(np.flatnonzero(multi))
        out = out.with_columns(
            out.get_column(name).scatter(at, merged.get_column(name)) for name in merged.columns if name != "_run"
        )
    return out
