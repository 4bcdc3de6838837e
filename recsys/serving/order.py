"""The order stage: from scored candidates to the answer of each instance.

Within each query: the model's tier before the popularity tier, then score (high first), then retrieval rank,
then article id; an article once; one article per ``group_column`` value (H&M's ``product_code``: colour variants
of one product would otherwise fill the list); at most ``max_per_type`` articles per ``type_column`` value; then
``top_k``. One sort of the whole request, then order-preserving de-duplication and cuts (no per-query work).

A request is a few hundred rows: numpy on the columns, and one gather of the kept rows at the end. Each polars
operation has a fixed cost of tens of microseconds that would add up to more than the work (the lazy polars
plan this replaces took ~1.2 ms per request on the H&M catalogue).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.serving.options import ServingOptions
from recsys.serving.retrieve import QUERY, TIER, positions
from recsys.training.ranking_features import RETRIEVAL_RANK

SCORE, POSITION = "score", "position"
CODE = ":code"  # suffix of a column's integer codes, carried beside it (see recsys.serving.catalogue.coded_columns)
_SORT_KEYS = (QUERY, TIER, SCORE, RETRIEVAL_RANK, ARTICLE_ID)
_POLARS_SORT_FROM = 10_000  # rows; numpy and polars sort 3k-12k rows in about the same time here


def order(scored: pl.DataFrame, top_k: np.ndarray, options: ServingOptions) -> pl.DataFrame:
    """``scored`` (query, article_id, score, tier, retrieval_rank + article columns) cut to each query's answer.

    ``top_k[q]`` is the answer length of query ``q``. Returns the kept rows with ``position`` (0 = first), sorted
    by query and position.
    """
    rows = _answer_order(scored)
    query = scored.get_column(QUERY).to_numpy()[rows]
    groups = _group_codes(scored, options.group_column)
    kinds = _group_codes(scored, options.type_column) if options.max_per_type > 0 else None
    articles = lambda: _codes(scored.get_column(ARTICLE_ID))  # noqa: E731
    rows, position = answer_rows(rows, query, articles, groups, kinds, top_k, options)
    kept = scored[pl.Series(rows, dtype=pl.UInt32)]
    return kept.with_columns(pl.Series(POSITION, position, dtype=pl.Int32))


def order_arrays(
    query: np.ndarray,
    tier: np.ndarray,
    score: np.ndarray,
    rank: np.ndarray,
    article: np.ndarray,
    groups: np.ndarray | None,
    kinds: np.ndarray | None,
    top_k: np.ndarray,
    options: ServingOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`order` on a request's columns as arrays: ``article`` integer keys in the order of the article ids,
    ``groups`` and ``kinds`` the integer codes of the group and type columns (-1 where null; None: no such
    column). Returns the kept rows (in query, position order) and their positions."""
    rows = np.lexsort((article, rank, -score, tier, query))  # the last key is the first sort key
    return answer_rows(rows, query[rows], lambda: article, groups, kinds, top_k, options)


def answer_rows(
    rows: np.ndarray,
    query: np.ndarray,
    articles: Callable[[], np.ndarray],
    groups: np.ndarray | None,
    kinds: np.ndarray | None,
    top_k: np.ndarray,
    options: ServingOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """The cuts of :func:`order` over ``rows`` (in answer order; ``query`` theirs): one row per article (per group
    when ``groups``), at most ``max_per_type`` per ``kinds`` value, ``top_k[q]`` per query. ``articles()``: the
    non-negative codes of the article ids (computed only when needed); ``groups``/``kinds`` as in
    :func:`order_arrays`. Returns the kept rows and their positions."""
    if groups is not None:
        # an article without a group value is its own group; a repeated article has its first row's group, so
        # the first row of each group is also the article's first row
        codes = groups[rows]
        alone = codes < 0
        if alone.any():
            codes = np.where(alone, codes.max(initial=0) + 1 + articles()[rows], codes)
        keep = _count_within(query, codes) == 0
    else:
        keep = _count_within(query, articles()[rows]) == 0
    rows, query = rows[keep], query[keep]
    if options.max_per_type > 0 and kinds is not None:
        keep = _count_within(query, kinds[rows] + 1) < options.max_per_type  # nulls (-1) share one group
        rows, query = rows[keep], query[keep]
    position = positions(query)  # rows are grouped by query, in answer order
    keep = position < np.asarray(top_k, dtype=np.int64)[query]
    return rows[keep], position[keep]


def _group_codes(scored: pl.DataFrame, name: str) -> np.ndarray | None:
    """Codes of column ``name`` (or the codes it carries), -1 where null; None without such a column."""
    if not name or (name not in scored.columns and name + CODE not in scored.columns):
        return None
    values = _keys(scored, name)
    codes = _codes(values)
    return np.where(values.is_null().to_numpy(), -1, codes) if values.null_count() else codes


def _answer_order(scored: pl.DataFrame) -> np.ndarray:
    """Row numbers of ``scored`` by query, then tier, score (high first), retrieval rank and article id.

    A request's few hundred rows sort with numpy; from ``_POLARS_SORT_FROM`` rows (the batch job orders millions)
    polars' multi-threaded sort is faster (800k rows: 49 ms against 318 ms for ``np.lexsort``). Both are stable,
    so they agree wherever no score is NaN (which CatBoost and popularity never give)."""
    if scored.height >= _POLARS_SORT_FROM:
        by = pl.arg_sort_by(_SORT_KEYS, descending=[key == SCORE for key in _SORT_KEYS], maintain_order=True)
        return scored.select(by).to_series().to_numpy()
    article = scored.get_column(ARTICLE_ID)
    article = article.to_numpy() if article.dtype.is_integer() else article.rank("dense").fill_null(0).to_numpy()
    rank = scored.get_column(RETRIEVAL_RANK).to_numpy()
    score = scored.get_column(SCORE).to_numpy()
    tier = scored.get_column(TIER).to_numpy()
    query = scored.get_column(QUERY).to_numpy()
    return np.lexsort((article, rank, -score, tier, query))  # the last key is the first sort key


def _codes(values: pl.Series) -> np.ndarray:
    """Non-negative integer codes, equal where the values are (nulls share one code: callers that care check
    nulls). Strings go through a categorical, whose codes cost ~34 ms per million rows (the batch job orders
    millions), against seconds for a sort of Python strings."""
    if values.dtype.is_integer():  # shifted, not compacted: np.unique costs ~80 us even on a request's rows
        numbers = (values.fill_null(0) if values.null_count() else values).to_numpy().astype(np.int64)
        low, high = int(numbers.min(initial=0)), int(numbers.max(initial=0))
        if high - low < 2**62:
            return numbers - low
    if values.dtype.is_numeric():
        return np.unique(values.fill_null(0).to_numpy(), return_inverse=True)[1].astype(np.int64)
    return values.cast(pl.String).fill_null("").cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)


def _keys(scored: pl.DataFrame, name: str) -> pl.Series:
    """Column ``name``, or its integer codes when the candidates carry them (a request's strings would otherwise
    be coded on every call, ~0.1 ms)."""
    return scored.get_column(name + CODE if name + CODE in scored.columns else name)


def _count_within(query: np.ndarray, key: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows share its (query, key) pair (``key`` non-negative)."""
    if (int(query.max(initial=0)) + 1) * (int(key.max(initial=0)) + 1) >= 2**62:  # wide keys: compact them first
        key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
    pairs = query * (int(key.max(initial=0)) + 1) + key
    by_pair = np.argsort(pairs, kind="stable")
    count = np.empty(len(pairs), dtype=np.int64)
    count[by_pair] = positions(pairs[by_pair])
    return count
