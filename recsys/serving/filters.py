"""What must never be shown: articles bought recently, articles the catalogue does not know, articles off sale.

*Bought recently.* The online history row holds the customer's last purchases (most recent first) and the day of
the latest one, not the day of each: "bought within the window" is therefore the first ``bought_last_n`` ids of
that list when the latest purchase is at most ``bought_window_days`` old at request time, and nothing otherwise.
A purchase written to the online store (:func:`recsys.serving.actions.record_purchase`) updates that row, so the
next request already leaves the article out.

*Unknown or inactive.* An article without a row in the ``ranking`` view online (not in the catalogue any more,
e.g. embedded by an older run) is unknown. An article is inactive when the catalogue has the column
``inactive_column`` and it is false or 0 there, or when it sold fewer than ``min_units_30d`` units in the last
30 days (off by default: it would also hide new articles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.features.common import cutoff
from recsys.features.customer_history import LAST_ARTICLES
from recsys.serving.options import ServingOptions
from recsys.serving.retrieve import positions

LAST_PURCHASE = "last_purchase"


def recently_bought(
    customers: Sequence[Mapping[str, Any]], times: Sequence[datetime], options: ServingOptions
) -> list[list[Any]]:
    """For each customer row at its request time, the article ids not to show again (see the module docstring).

    Rows are the customers view's online rows as dicts (``last_purchase`` a datetime or its ISO string).
    """
    if not options.filter_bought or options.bought_last_n == 0:
        return [[] for _ in customers]
    out = []
    for row, when in zip(customers, times, strict=True):
        last = row.get(LAST_PURCHASE)
        if isinstance(last, str):
            last = datetime.fromisoformat(last)
        ids = row.get(LAST_ARTICLES) or []
        recent = last is not None and (cutoff(when) - cutoff(last)).days <= options.bought_window_days
        out.append(list(dict.fromkeys(ids[: options.bought_last_n])) if recent else [])
    return out


def allowed_rows(
    query: np.ndarray, ids: np.ndarray, exclude: Sequence[Sequence[Any]], keep_per_query: int = 0
) -> np.ndarray:
    """A mask of the candidate rows (``query[i]``, ``ids[i]``, grouped by query) whose id is not in
    ``exclude[query]``, and, when ``keep_per_query`` > 0, of only the first ``keep_per_query`` such rows of each
    query. Numpy on a request's few hundred rows: microseconds, where an anti-join costs a fraction of a ms."""
    keep = np.ones(len(query), dtype=bool)
    if len(query) and any(exclude):
        if len(exclude) == 1:  # one instance, the usual request: every row is its
            keep &= ~_isin(ids, exclude[0])
        for q, banned in enumerate(exclude if len(exclude) > 1 else []):
            if banned:
                rows = query == q
                keep[rows] &= ~_isin(ids[rows], banned)
    if keep_per_query > 0:
        kept = np.flatnonzero(keep)
        keep[kept[positions(query[kept]) >= keep_per_query]] = False
    return keep


def _isin(ids: np.ndarray, banned: Sequence[Any]) -> np.ndarray:
    """``np.isin``; for a request's ~100 ids and ~20 banned ones a comparison matrix, a fifth of its time."""
    values = np.asarray([b for b in banned if b is not None], dtype=ids.dtype)  # a null id bans nothing
    if len(ids) * len(values) > 1 << 16:
        return np.isin(ids, values)
    return (ids[:, None] == values).any(axis=1)


def showable(articles: pl.DataFrame, options: ServingOptions) -> pl.DataFrame:
    """The rows of ``articles`` (read online, nulls for unknown ids) that may be shown."""
    attributes = [c for c in articles.columns if c != ARTICLE_ID]
    keep = pl.any_horizontal(pl.col(attributes).is_not_null()) if attributes else pl.lit(True)
    col = options.inactive_column
    if col and col in articles.columns:
        flag = pl.col(col)
        dtype = articles.schema[col]
        if dtype == pl.String:
            active = ~flag.str.to_lowercase().is_in(["false", "0", "no", "n", "inactive"])
        else:
            active = flag.cast(pl.Float64) != 0
        keep = keep & active.fill_null(True)
    if options.min_units_30d > 0 and "units_30d" in articles.columns:
        keep = keep & (pl.col("units_30d").fill_null(0) >= options.min_units_30d)
    return articles.filter(keep)
