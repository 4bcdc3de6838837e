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


def group_starts(*keys: np.ndarray) -> np.ndarray:
    """True where a run of equal keys begins (the arrays are sorted by the keys)."""
    new = np.ones(len(keys[0]), dtype=bool)
    if len(new) > 1:
        new[1:] = np.logical_or.reduce([k[1:] != k[:-1] for k in keys])
    return new
