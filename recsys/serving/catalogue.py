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
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID
from recsys.serving.filters import allowed_rows
from recsys.serving.order import CODE
from recsys.serving.retrieve import MODEL_TIER, POPULAR_TIER, TIER, Candidates, Neighbours, positions
from recsys.training.ranking_features import RETRIEVAL_RANK, RETRIEVAL_SCORE

if TYPE_CHECKING:
    from recsys.serving.request_columns import ServingFeatures

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


class RowFinder:
    """The row of each id in a column of distinct ids (-1 where it is not there): a binary search over the sorted
    integer ids, a dictionary for other ids."""

    def __init__(self, ids: pl.Series) -> None:
        self.integer = ids.dtype.is_integer()
        if self.integer:
            values = ids.to_numpy()
            self._order = np.argsort(values, kind="stable")
            self._sorted = values[self._order]
        else:
            self._rows = dict(zip(ids.to_list(), range(ids.len()), strict=True))

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        if not self.integer:
            found = map(self._rows.get, ids.tolist())
            return np.fromiter((-1 if r is None else r for r in found), dtype=np.int64, count=len(ids))
        if not np.issubdtype(ids.dtype, np.integer) or not len(self._sorted):
            return np.full(len(ids), -1, dtype=np.int64)  # ids of another kind than the catalogue's: none known
        at = self._sorted.searchsorted(ids).clip(max=len(self._sorted) - 1)
        return np.where(self._sorted[at] == ids, self._order[at], -1)


@dataclass(frozen=True)
class CatalogueSnapshot:
    """The showable articles (``rows``, any column order, ``article_id`` unique) and the popular tier over them."""

    rows: pl.DataFrame
    popular: pl.DataFrame  # article_id, retrieval_score (units in 7 days), retrieval_rank, tier + ``carried``
    carried: pl.DataFrame = field(repr=False)  # article_id, the carried columns and codes of ``rows``, row for row
    _find: RowFinder = field(repr=False)
    _ids: np.ndarray = field(repr=False)  # the article ids of ``rows`` (an object array for ids not integers)
    _id_keys: np.ndarray = field(repr=False)  # each row's article id as its rank among the ids
    _codes: dict[str, np.ndarray] = field(repr=False)  # the coded columns' codes per row, -1 where null
    _popular_rows: np.ndarray = field(repr=False)  # the popular tier's rows of ``rows``, best first
    _popular_scores: np.ndarray = field(repr=False)
    # the ranker's article features over ``rows``, prepared once (None: requests take the frame path)
    features: ServingFeatures | None = field(default=None, repr=False)

    @classmethod
    def of(cls, rows: pl.DataFrame, n_popular: int, carried: list[str], coded: Sequence[str] = ()) -> CatalogueSnapshot:
        """``rows``: what may be shown; the popular tier is its ``n_popular`` most sold in 7 days (ties: 30 days,
        then id; an article without sales numbers last). Candidates carry the columns ``carried`` and the codes of
        the columns ``coded`` (:func:`coded_columns`), computed over all of ``rows``: both tiers share them."""
        codes = coded_columns(rows, coded)
        columns = rows.select(ARTICLE_ID, *carried, *codes)
        best = (
            rows.select(UNITS_7D, UNITS_30D, ARTICLE_ID, pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"))
            .sort([UNITS_7D, UNITS_30D, ARTICLE_ID], descending=[True, True, False], nulls_last=True)
            .head(n_popular)
        )
        at = best.get_column("_row").to_numpy()
        scores = best.get_column(UNITS_7D).fill_null(0).cast(pl.Float32).to_numpy()
        popular = (
            columns[pl.Series(at, dtype=pl.UInt32)]
            .with_columns(
                pl.Series(RETRIEVAL_SCORE, scores),
                pl.Series(RETRIEVAL_RANK, np.arange(len(at), dtype=np.int32)),
                pl.lit(POPULAR_TIER, pl.Int8).alias(TIER),
            )
            .select(ARTICLE_ID, RETRIEVAL_SCORE, RETRIEVAL_RANK, TIER, *columns.columns[1:])
        )
        ids = rows.get_column(ARTICLE_ID)
        return cls(
            rows,
            popular,
            columns,
            RowFinder(ids),
            _as_array(ids),
            ids.rank("dense").cast(pl.Int64).fill_null(0).to_numpy(),
            {c: columns.get_column(c + CODE).fill_null(-1).to_numpy() for c in coded if c + CODE in columns.columns},
            at,
            scores,
        )

    def candidates(self, hits: Neighbours, n: int, exclude: Sequence[Sequence[Any]], keep_per_query: int) -> Candidates:
        """The candidate rows of queries 0..n-1: the model's (``hits``: of each query, the first ``keep_per_query``
        not in ``exclude[query]``), then the popular tier's (those not excluded), without the articles that may not
        be shown.

        Numpy only: joining a hundred ids against the whole catalogue would hash it on every call, and each polars
        call on a request's rows costs tens of microseconds.
        """
        ids = hits.ids if isinstance(hits.ids, np.ndarray) else _as_array(hits.ids)
        at = self._find(ids)
        model = np.flatnonzero(allowed_rows(hits.query, ids, exclude, keep_per_query) & (at >= 0))
        each = len(self._popular_rows)
        popular_query = np.repeat(np.arange(n, dtype=np.int64), each)
        popular_ids = np.tile(self._ids[self._popular_rows], n)
        popular = np.flatnonzero(allowed_rows(popular_query, popular_ids, exclude))
        return Candidates(
            query=np.concatenate([hits.query[model], popular_query[popular]]),
            at=np.concatenate([at[model], np.tile(self._popular_rows, n)[popular]]),
            score=np.concatenate([hits.scores[model], np.tile(self._popular_scores, n)[popular]]).astype(np.float32),
            rank=np.concatenate([positions(hits.query)[model], np.tile(np.arange(each), n)[popular]]).astype(np.int32),
            tier=np.r_[np.full(len(model), MODEL_TIER, np.int8), np.full(len(popular), POPULAR_TIER, np.int8)],
            n_model=len(model),
        )

    def model_rows(self, candidates: Candidates) -> pl.DataFrame:
        """The rows of the model tier's articles, once each, in the order of their first occurrence."""
        at = candidates.at[: candidates.n_model]
        if len(at) and candidates.query[0] != candidates.query[len(at) - 1]:  # several queries may share articles
            at = at[np.sort(np.unique(at, return_index=True)[1])]
        return self.rows[pl.Series(at, dtype=pl.UInt32)]

    def article_ids(self, at: np.ndarray) -> pl.Series:
        """The article ids of rows ``at``."""
        if self._ids.dtype != object:
            return pl.Series(ARTICLE_ID, self._ids[at])
        return self.carried.get_column(ARTICLE_ID)[pl.Series(at, dtype=pl.UInt32)]

    def id_keys(self, at: np.ndarray) -> np.ndarray:
        """Integer keys of the article ids of rows ``at``, in the ids' order (the order stage's last tie-break)."""
        return self._id_keys[at]

    def codes(self, column: str, at: np.ndarray) -> np.ndarray | None:
        """The codes of ``column`` at rows ``at`` (-1 where null); None when the column is not coded."""
        codes = self._codes.get(column)
        return None if codes is None else codes[at]


def _as_array(ids: pl.Series) -> np.ndarray:
    """Integer ids as their numpy array, other ids as an object array of Python values."""
    return ids.to_numpy() if ids.dtype.is_integer() else np.asarray(ids.to_list(), dtype=object)
