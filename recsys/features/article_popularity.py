"""The ``article_popularity`` feature group: recent sales of every article and their trend, point in time.

Windows are whole days strictly before ``as_of``'s day (design §3): ``units_7d`` counts units sold on the 7 days
``[as_of − 7d, as_of)``, ``units_30d`` on ``[as_of − 30d, as_of)``, ``units_prev_7d`` on the 7 days before the
last 7, ``[as_of − 14d, as_of − 7d)``. The trend compares the two weeks with add-one smoothing,

    trend = (units_7d + 1) / (units_prev_7d + 1)

so it is 1 for an article without sales in either week, above 1 when sales grow, defined for new articles
(no division by zero), and damped for tiny counts (1 -> 2 sales is 1.5, not 2).

``article_price`` is the article's price level: the mean price per unit paid on *all* days before ``as_of``'s
day (catalogues have no price column, so it is what customers paid). Sales without a price do not count; an
article never sold with a price has a null price. The ranker reads it from the ``ranking`` view, so serving needs
no transactions.

Two entry points with the same columns (``article_id``, ``as_of``, ``units_7d``, ``units_30d``,
``units_prev_7d`` as Int64, ``trend`` and ``article_price`` Float64):

* :func:`article_popularity_as_of` — one row per article of the catalogue, zeros (trend 1) for articles
  without sales in the window.
* :func:`article_popularity_events` — snapshots a feature view as-of joins (backward, by article, on
  ``as_of <= t``). The numbers of an article change only on the day after a sale (it enters the windows) and
  7, 14 and 30 days later (it leaves one), so a snapshot is emitted only on those days (``as_of`` = sale day +
  1, 8, 15 or 31) and only where a number differs from the article's previous snapshot. That is a few rows per
  (article, sale day) instead of one per (article, calendar day) — H&M's 105k articles × 734 days would be 77M.
  The price changes only on the day after a priced sale, which is a change day already; that day keeps its
  snapshot even when the unit counts cancel out, as the price now counts one more sale.
  An article has no row before its first sale: a join that finds nothing means zeros and trend 1 (see
  :data:`EMPTY`). Joined at any day t up to the last snapshot day (``until``) it equals
  ``article_popularity_as_of(..., t)`` for the articles that sold (the as-of form also lists unsold catalogue
  articles, and leaves out sold ids that the catalogue lacks).
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, PRICE, QUANTITY, T_DAT
from recsys.features.arrays import group_starts
from recsys.features.common import PRICED_UNITS, SPEND, cutoff, mean_price, priced_sums, shifted, to_day

AS_OF = "as_of"
UNITS = ("units_7d", "units_30d", "units_prev_7d")
ARTICLE_PRICE = "article_price"
EMPTY = {"units_7d": 0, "units_30d": 0, "units_prev_7d": 0, "trend": 1.0}  # an article with no recent sales
# Days after a sale on which an article's numbers change: it enters all windows, leaves the 7-day window and
# enters the previous week, leaves the previous week, leaves the 30-day window.
CHANGE_OFFSETS = (1, 8, 15, 31)
EPOCH = date(1970, 1, 1)
# Snapshots after a day d need only recent sales: a snapshot counts the 30 days before it, and whether it is kept
# depends on the numbers of the article's previous change day, which a sale leaving its windows would have made a
# change day itself. Property tests on adversarial data find 30 days enough; we read twice 31, for margin.
LOOKBACK_DAYS = 2 * max(CHANGE_OFFSETS)


def trend(units_7d: pl.Expr, units_prev_7d: pl.Expr) -> pl.Expr:
    """Add-one smoothed ratio of this week's units to last week's (see the module docstring)."""
    return ((units_7d + 1).cast(pl.Float64) / (units_prev_7d + 1).cast(pl.Float64)).alias("trend")


def _price_sums(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """The rows' ``quantity`` (1 without the column), what each row's priced units cost (:data:`SPEND`) and how
    many of its units had a price (:data:`PRICED_UNITS`)."""
    columns = transactions.collect_schema().names()
    quantity = pl.col(QUANTITY).cast(pl.Int64) if QUANTITY in columns else pl.lit(1, pl.Int64)
    price = pl.col(PRICE).cast(pl.Float64) if PRICE in columns else pl.lit(None, pl.Float64)
    return transactions.with_columns(quantity.alias(QUANTITY), *priced_sums(price, quantity))


def _daily_sales(transactions: pl.DataFrame, before: datetime | None = None) -> pl.DataFrame:
    """Units sold, :data:`SPEND` and :data:`PRICED_UNITS` per (article, day), sorted by article and day."""
    lf = _price_sums(transactions.lazy().with_columns(to_day(pl.col(T_DAT))))
    if before is not None:
        lf = lf.filter(pl.col(T_DAT) < cutoff(before))
    sums = [pl.col(c).sum() for c in (QUANTITY, SPEND, PRICED_UNITS)]
    return lf.group_by(ARTICLE_ID, T_DAT).agg(sums).sort(ARTICLE_ID, T_DAT).collect()


def article_popularity_as_of(
    transactions: pl.DataFrame,
    articles: pl.DataFrame,
    as_of: datetime | date,
) -> pl.DataFrame:
    """Sales windows, trend and price of every article in ``articles`` from the days strictly before ``as_of``'s
    day."""
    cut = cutoff(as_of)

    def start(days: int) -> pl.Expr:  # the day is within the last `days` days before the cut-off
        return pl.col(T_DAT) >= shifted(pl.lit(cut, dtype=pl.Datetime("us")), -days)

    sales = _daily_sales(transactions, before=cut)
    units = sales.group_by(ARTICLE_ID).agg(
        pl.col(QUANTITY).filter(start(7)).sum().alias("units_7d"),
        pl.col(QUANTITY).filter(start(30)).sum().alias("units_30d"),
        pl.col(QUANTITY).filter(start(14) & ~start(7)).sum().alias("units_prev_7d"),
        mean_price(pl.col(SPEND).sum(), pl.col(PRICED_UNITS).sum()).alias(ARTICLE_PRICE),
    )
    return (
        articles.select(ARTICLE_ID)
        .join(units, on=ARTICLE_ID, how="left")
        .with_columns(pl.col(u).fill_null(0).cast(pl.Int64) for u in UNITS)
        .with_columns(
            pl.lit(cut, dtype=pl.Datetime("us")).alias(AS_OF), trend(pl.col("units_7d"), pl.col("units_prev_7d"))
        )
        .select(ARTICLE_ID, AS_OF, *UNITS, "trend", pl.col(ARTICLE_PRICE).cast(pl.Float64))
        .sort(ARTICLE_ID)
    )


def article_popularity_events(
    transactions: pl.DataFrame, *, until: datetime | date | None = None, after: datetime | date | None = None
) -> pl.DataFrame:
    """Popularity snapshots on the days an article's numbers change, valid from ``as_of`` on.

    Snapshots end at ``until``'s day (default: the day after the last sale in ``transactions``): later ones
    would describe a future in which nothing more is sold, and an online store keeping the latest row per
    article would serve them too early. With ``after`` (a daily incremental run), only the snapshots dated after
    it are returned, computed from the sales of the :data:`LOOKBACK_DAYS` before it (see there) and, for the
    price, one sum per article of the older ones.

    Vectorised with running totals: units in ``[a, b)`` = units sold before ``b`` − units sold before ``a``, and
    "units sold before day x" is one binary search of (article, x) in the sorted (article, sale day) keys.
    """
    older = None
    if after is not None:
        since = shifted(pl.lit(cutoff(after), dtype=pl.Datetime("us")), -LOOKBACK_DAYS)
        older = _price_sums(transactions.lazy().filter(pl.col(T_DAT) < since))
        older = older.group_by(ARTICLE_ID).agg(pl.col(SPEND).sum(), pl.col(PRICED_UNITS).sum())
        transactions = transactions.filter(pl.col(T_DAT) >= since)
    sales = _running_price_sums(_daily_sales(transactions), older)
    if sales.height == 0:
        return _snapshot_frame(sales.get_column(ARTICLE_ID), *([np.zeros(0, np.int64)] * 4), *([np.zeros(0)] * 2))
    starts = group_starts(sales.get_column(ARTICLE_ID).to_numpy())
    article = np.cumsum(starts) - 1  # 0.. in article order
    day = sales.get_column(T_DAT).cast(pl.Date).to_physical().to_numpy().astype(np.int64)
    first_day = int(day.min())
    day -= first_day  # >= 0, so that (article, day) packs into one sortable integer

    def day_of(moment: datetime | date) -> int:  # the relative day of a moment's day
        return (cutoff(moment).date() - EPOCH).days - first_day

    last_day = int(day.max()) + max(CHANGE_OFFSETS)  # the latest possible change
    horizon = int(day.max()) + 1 if until is None else day_of(until)
    bits = max(last_day, 1).bit_length()
    quantity = sales.get_column(QUANTITY).to_numpy()
    total = np.cumsum(quantity)
    total -= (total - quantity)[np.flatnonzero(starts)][article]  # running units of the article
    sale_key = (article << bits) | day

    candidates = np.sort(np.concatenate([(article << bits) | (day + d) for d in CHANGE_OFFSETS]), kind="stable")
    candidates = candidates[group_starts(candidates)]  # unique (np.unique hashes first: slower on sorted runs)
    snap_article, snap_day = candidates >> bits, candidates & ((1 << bits) - 1)
    keep = snap_day <= horizon
    snap_article, snap_day = snap_article[keep], snap_day[keep]

    def last_sale(days_back: int) -> np.ndarray:  # the article's last sale day before as_of - days_back, or -1
        bound = (snap_article << bits) | np.maximum(snap_day - days_back, 0)
        last = np.searchsorted(sale_key, bound, side="left") - 1
        safe = np.maximum(last, 0)
        return np.where((last >= 0) & (article[safe] == snap_article), last, -1)

    def sold_until(last: np.ndarray) -> np.ndarray:  # units of the article sold up to its sale ``last`` (0 if -1)
        return np.where(last >= 0, total[np.maximum(last, 0)], 0)

    now = last_sale(0)  # >= 0: a snapshot follows a sale of its article
    b0, b7, b14, b30 = (sold_until(last) for last in (now, last_sale(7), last_sale(14), last_sale(30)))
    units = (b0 - b7, b0 - b30, b7 - b14)
    spend, priced = (sales.get_column(c).to_numpy()[now] for c in (SPEND, PRICED_UNITS))
    # Keep a snapshot only where a number changed since the article's previous one (the first always counts).
    # The price changes only when priced units were added: comparing their (integer) count is exact.
    changed = group_starts(snap_article, *units, priced)
    if after is not None:
        changed &= snap_day > day_of(after)
    ids = sales.get_column(ARTICLE_ID).gather(np.flatnonzero(starts)).gather(snap_article[changed])
    return _snapshot_frame(
        ids, snap_day[changed] + first_day, *(u[changed] for u in units), spend[changed], priced[changed]
    )


def _running_price_sums(sales: pl.DataFrame, older: pl.LazyFrame | None) -> pl.DataFrame:
    """Daily sales with :data:`SPEND` and :data:`PRICED_UNITS` summed over each article's days so far (and ``older``'s
    sums of the article's earlier days, when given)."""
    running = sales.with_columns(pl.col(SPEND, PRICED_UNITS).cum_sum().over(ARTICLE_ID))
    if older is None:
        return running
    base = running.select(ARTICLE_ID).lazy().join(older, on=ARTICLE_ID, how="left", maintain_order="left")
    base = base.select(pl.col(SPEND).fill_null(0.0), pl.col(PRICED_UNITS).fill_null(0)).collect()
    return running.with_columns(
        pl.col(SPEND) + base.get_column(SPEND), pl.col(PRICED_UNITS) + base.get_column(PRICED_UNITS)
    )


def _snapshot_frame(ids: pl.Series, epoch_day: np.ndarray, *numbers: np.ndarray) -> pl.DataFrame:
    """The snapshot columns from their days, the three unit counts, and the running spend and priced units."""
    *units, spend, priced = numbers
    frame = pl.DataFrame(
        {
            ARTICLE_ID: ids,
            AS_OF: pl.Series(epoch_day.astype(np.int32)).cast(pl.Date).cast(pl.Datetime("us")),
            **{name: pl.Series(values, dtype=pl.Int64) for name, values in zip(UNITS, units, strict=True)},
            SPEND: pl.Series(spend, dtype=pl.Float64),
            PRICED_UNITS: pl.Series(priced, dtype=pl.Int64),
        }
    )
    return frame.with_columns(
        trend(pl.col("units_7d"), pl.col("units_prev_7d")),
        mean_price(pl.col(SPEND), pl.col(PRICED_UNITS)).alias(ARTICLE_PRICE),
    ).drop(SPEND, PRICED_UNITS)
