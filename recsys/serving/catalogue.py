"""The article side of every request, held in memory: each showable article's ``ranking`` row and the popular tier.

Article features change when the feature pipeline runs (daily); customer features change with every purchase. So
the ranking transformer reads customers online per request, but keeps the whole ``ranking`` view (attributes and
popularity; H&M: 105k articles, tens of MB) in memory and looks candidates up by id. Reading ~120 retrieved
articles online per request cost more than all the other stages together at H&M scale.

The copy is re-read every ``refresh_s`` seconds in a background thread while requests keep using the previous
one (:class:`Refreshing`): a refresh never delays a request, and a new day's features reach the answers within
``refresh_s`` of the feature pipeline's run. The same read gives the popularity tier (the most sold showable
articles), so both always come from one consistent state of the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.serving.order import CODE
from recsys.serving.retrieve import POPULAR_TIER, TIER, for_queries
from recsys.training.ranking_features import RETRIEVAL_RANK, RETRIEVAL_SCORE

UNITS_7D, UNITS_30D = "units_7d", "units_30d"  # the article_popularity group's columns the tier sorts by

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Refreshing(Generic[T]):
    """A value computed by ``load``, recomputed in a background thread once ``refresh_s`` seconds old.

    The first :meth:`get` loads in the caller; later ones return at once, the current value even while a
    refresh runs. A refresh that fails keeps the previous value (and tries again after ``refresh_s``).
    """

    def __init__(self, load: Callable[[], T], refresh_s: float) -> None:
        self.load, self.refresh_s = load, refresh_s
        self._value: T | None = None
        self._loaded_at = 0.0
        self._refreshing = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._refreshing:
                if self._value is None:
                    self._reload()
        elif time.monotonic() - self._loaded_at > self.refresh_s and self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._reload_then_release, daemon=True, name="catalogue-refresh").start()
        assert self._value is not None
        return self._value

    def _reload_then_release(self) -> None:
        try:
            self._reload()
        except Exception:  # a failed refresh must not take the previous copy away
            logger.exception("catalogue refresh failed; serving the copy of %.0f s ago", self.age_s)
            self._loaded_at = time.monotonic()
        finally:
            self._refreshing.release()

    @property
    def age_s(self) -> float:
        return time.monotonic() - self._loaded_at

    def _reload(self) -> None:
        self._value = self.load()
        self._loaded_at = time.monotonic()


def coded_columns(rows: pl.DataFrame, names: Sequence[str]) -> list[pl.Expr]:
    """Integer codes of the columns ``names`` (equal where the values are equal, null where they are null), named
    ``<name>:code``: the order stage groups by them in numpy, where coding a request's strings cost ~0.1 ms."""
    return [pl.col(c).rank("dense").cast(pl.Int64).alias(c + CODE) for c in names if c in rows.columns]


@dataclass(frozen=True)
class CatalogueSnapshot:
    """The showable articles (``rows``, any column order, ``article_id`` unique) and the popular tier over them."""

    rows: pl.DataFrame
    popular: pl.DataFrame  # article_id, retrieval_score (units in 7 days), retrieval_rank, tier + ``carried``
    _positions: dict[Any, int] = field(repr=False)
    _popular_one: pl.DataFrame = field(repr=False)  # the tier for a one-instance request (query 0), made once
    carried: pl.DataFrame = field(repr=False)  # the carried columns and codes of ``rows``, row for row

    def popular_for(self, n: int) -> pl.DataFrame:
        """The popular tier for each of queries 0..n-1 (:func:`~recsys.serving.retrieve.for_queries`)."""
        return self._popular_one if n == 1 else for_queries(self.popular, n)

    @classmethod
    def of(cls, rows: pl.DataFrame, n_popular: int, carried: list[str], coded: Sequence[str] = ()) -> CatalogueSnapshot:
        """``rows``: what may be shown; the popular tier is its ``n_popular`` most sold in 7 days (ties: 30 days,
        then id; an article without sales numbers last). Candidates carry the columns ``carried`` and the codes of
        the columns ``coded`` (:func:`coded_columns`)."""
        columns = [*carried, *coded_columns(rows, coded)]
        popular = (
            rows.sort([UNITS_7D, UNITS_30D, ARTICLE_ID], descending=[True, True, False], nulls_last=True)
            .head(n_popular)
            .select(
                ARTICLE_ID,
                pl.col(UNITS_7D).fill_null(0).cast(pl.Float32).alias(RETRIEVAL_SCORE),
                pl.int_range(pl.len(), dtype=pl.Int32).alias(RETRIEVAL_RANK),
                pl.lit(POPULAR_TIER, pl.Int8).alias(TIER),
                *columns,
            )
        )
        positions = dict(zip(rows.get_column(ARTICLE_ID).to_list(), range(rows.height), strict=True))
        return cls(rows, popular, positions, for_queries(popular, 1), rows.select(columns))

    def showable_candidates(self, candidates: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``candidates`` (``article_id``, ...) without the articles that may not be shown, in order, with the
        ``carried`` columns added; and the snapshot's rows of those articles, once each, in the order of their
        first occurrence.

        Row numbers from a dictionary of positions, and gathers: joining a hundred ids against the whole catalogue
        would hash it on every call, and an inner join with the articles' rows cost ~0.5 ms more per request.
        """
        at = np.fromiter(
            (-1 if p is None else p for p in map(self._positions.get, candidates.get_column(ARTICLE_ID).to_list())),
            dtype=np.int64,
            count=candidates.height,
        )
        shown = at >= 0
        if not shown.all():
            candidates = candidates[pl.Series(np.flatnonzero(shown), dtype=pl.UInt32)]
            at = at[shown]
        first = np.unique(at, return_index=True)[1]
        articles = self.rows[pl.Series(at[np.sort(first)], dtype=pl.UInt32)]
        return candidates.hstack(self.carried[pl.Series(at, dtype=pl.UInt32)].get_columns()), articles
