"""The ``customer_history`` feature group: what a customer bought before a point in time.

Point in time (design §3): a feature that describes a purchase on day t is computed from days strictly before t.
Two entry points give the same columns:

* :func:`customer_history_as_of` — one row per customer who bought anything before ``as_of``'s day, with
  ``as_of`` = the start of that day. For serving (the online store holds the latest row) and weekly snapshots.
* :func:`customer_history_events` — the snapshots a feature view as-of joins: one row per (customer, day the
  customer bought), describing everything up to and including that day, with event time ``as_of`` = that day
  + 1 day (valid from the next day on). A purchase on day t joins backward on ``as_of <= t`` and therefore sees
  only days before t. Joined at any time t, it equals ``customer_history_as_of(..., t)`` except for
  ``as_of`` and ``days_since_last_purchase``, which depend on the time of the join: recompute the latter with
  :func:`days_since_last_purchase` after joining (in the snapshot it is 1, its value on the ``as_of`` day).

Columns (both forms):

* ``last_article_ids`` — List[article id type]: the last ``n_last`` purchases, most recent first; purchases of
  one day are one per article and ordered by article id, descending (the reverse of the sequence order
  day ↑, article_id ↑). An article bought again later appears again.
* ``last_article_gaps`` — List[Int32], beside ``last_article_ids``: for each of them, whole days from its purchase
  to ``last_purchase`` (0 = bought on the last purchase day, so the list ascends). Relative to ``last_purchase``
  rather than to ``as_of``, so that a snapshot stays true until the next purchase: how long ago an article was
  bought, at any time t, is ``days_since_last_purchase`` at t plus its gap.
* ``n_purchases`` (Int32, (article, day) pairs), ``n_units`` (Int32, sum of quantity),
  ``n_distinct_articles`` (Int32), ``last_purchase`` (Datetime), ``days_since_last_purchase`` (Int32).
* ``avg_price`` — mean price per unit paid (null without prices); ``price_index`` — ``avg_price`` divided by the
  mean price of all units everyone bought up to the customer's last purchase day (1 = buys at the market's
  level). Anchored at the last purchase, not at ``as_of``, so that a snapshot stays true until the customer's
  next purchase.
* affinities, for each article categorical in ``affinity_columns`` (default: those of ``index_group_name``,
  ``product_type_name``, ``colour_group_name`` that exist): ``<col>_values`` List[String] and ``<col>_shares``
  List[Float64], the share of the customer's units per value, largest first (ties by value), summing to 1.
  Two parallel lists are compact, store in Delta/SQLite/Hopsworks without a map type, and feed a tower as a
  weighted bag of category embeddings. Multi-categorical columns count every element.

Memory: the events form has one row per (customer, purchase day) — only the days on which the history changes
— each with up to ``n_last`` ids and the affinity lists. On the ``small`` preset (50k customers, 1.5M rows) that
is 0.6M rows and ~420 MB; at H&M scale (~13M rows) expect ~20 times more. Every figure is per customer except
the market price behind ``price_index``: build the history per bucket of customers and pass
``market=market_prices(all_transactions)`` to bound memory with identical results.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT
from recsys.features.arrays import coded_lists, group_starts, lists
from recsys.features.common import (
    CODE,
    MISSING,
    PRICED_UNITS,
    SPEND,
    clean_categorical,
    clean_multi_categorical,
    cutoff,
    daily_purchases,
    days_between,
    feature_name,
    mean_price,
    priced_sums,
    shifted,
    to_day,
)

AS_OF = "as_of"
MARKET = "market_price"
LAST_ARTICLES = "last_article_ids"
LAST_GAPS = "last_article_gaps"
DEFAULT_AFFINITY = ("index_group_name", "product_type_name", "colour_group_name")
_COUNTS = ["n_purchases", "n_units", "n_distinct_articles", "last_purchase", "days_since_last_purchase"]


def affinity_columns_for(articles: pl.DataFrame, affinity_columns: Sequence[str] | None) -> list[str]:
    """The article columns to compute shares for: the given ones (checked), or the defaults that exist."""
    if affinity_columns is None:
        return [col for col in DEFAULT_AFFINITY if col in articles.columns]
    missing = [col for col in affinity_columns if col not in articles.columns]
    if missing:
        raise ValueError(f"affinity columns {missing} are not columns of the articles table")
    return list(affinity_columns)


def days_since_last_purchase(at: pl.Expr) -> pl.Expr:
    """Recency at time ``at`` (e.g. a training row's ``t_dat`` after an as-of join): whole days, Int32."""
    return days_between(at.dt.truncate("1d"), pl.col("last_purchase")).alias("days_since_last_purchase")


def _value_codes(daily: pl.DataFrame, articles: pl.DataFrame, col: str) -> tuple[pl.DataFrame, pl.Series]:
    """``daily`` with ``_v``, the code of the article's cleaned ``col`` value, and the sorted values (vocabulary).

    A multi-categorical article gives one row per element. Articles missing from ``articles`` (or with an empty
    list) count as ``MISSING``. Codes follow the sorted values, so comparing codes compares values.
    """
    is_list = isinstance(articles.schema[col], pl.List)
    lookup = articles.select(
        ARTICLE_ID, (clean_multi_categorical if is_list else clean_categorical)(pl.col(col)).alias("value")
    )
    if is_list:
        lookup = lookup.explode("value").with_columns(clean_categorical(pl.col("value")))
    vocab = pl.concat([lookup.get_column("value"), pl.Series("value", [MISSING])]).unique().sort()
    codes = pl.DataFrame({"value": vocab, "_v": pl.int_range(vocab.len(), dtype=pl.UInt32, eager=True)})
    lookup = lookup.join(codes, on="value").select(ARTICLE_ID, "_v")
    missing = vocab.index_of(MISSING)
    out = daily.join(lookup, on=ARTICLE_ID, how="left", maintain_order="left")
    return out.with_columns(pl.col("_v").fill_null(missing)), vocab


def _names(col: str) -> tuple[str, str]:
    name = feature_name(col)
    return f"{name}_values", f"{name}_shares"


def _finish(df: pl.DataFrame, ids: pl.Series, market_price: pl.Expr, affinity: list[str]) -> pl.DataFrame:
    """Derived columns and the fixed column order shared by both forms (``df`` comes sorted by customer code)."""
    avg = mean_price(pl.col("spend"), pl.col("priced_units"))
    aff = [name for col in affinity for name in _names(col)]
    return df.with_columns(
        ids.gather(df.get_column(CODE)).alias(CUSTOMER_ID),
        days_between(pl.col(AS_OF), pl.col("last_purchase")).alias("days_since_last_purchase"),
        avg.alias("avg_price"),
        (avg / market_price).alias("price_index"),
        pl.col("n_purchases", "n_units", "n_distinct_articles").cast(pl.Int32),
    ).select(CUSTOMER_ID, AS_OF, LAST_ARTICLES, LAST_GAPS, *_COUNTS, "avg_price", "price_index", *aff)


def customer_history_as_of(
    transactions: pl.DataFrame,
    articles: pl.DataFrame,
    as_of: datetime | date,
    *,
    n_last: int = 20,
    affinity_columns: Sequence[str] | None = None,
    market: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """History of every customer who bought before ``as_of``'s day, from purchases strictly before that day.

    ``market`` (see :func:`market_prices`) defaults to the market of ``transactions``.
    """
    if n_last < 1:
        raise ValueError(f"n_last must be at least 1, got {n_last}")
    affinity = affinity_columns_for(articles, affinity_columns)
    cut = cutoff(as_of)
    daily, ids = daily_purchases(transactions, before=cut)
    # daily is sorted by customer, day, article and a group keeps its rows' order: a customer's last n_last rows,
    # reversed, are its most recent purchases first (same day: article id descending), with no sort per group
    df = daily.group_by(CODE).agg(
        pl.col(ARTICLE_ID).tail(n_last).reverse().alias(LAST_ARTICLES),
        days_between(pl.col(T_DAT).max(), pl.col(T_DAT).tail(n_last).reverse()).alias(LAST_GAPS),
        pl.len().alias("n_purchases"),
        pl.col(QUANTITY).sum().alias("n_units"),
        pl.col(ARTICLE_ID).n_unique().alias("n_distinct_articles"),
        pl.col(T_DAT).max().alias("last_purchase"),
        pl.col("spend", "priced_units").sum(),
    )
    for col in affinity:
        rows, vocab = _value_codes(daily, articles, col)
        units = rows.group_by(CODE, "_v").agg(pl.col(QUANTITY).sum().alias("_n"))
        units = units.with_columns(vocab.gather(units.get_column("_v")).alias("value"))
        values, shares = _names(col)
        order = {"by": ["_n", "_v"], "descending": [True, False]}
        share_lists = units.group_by(CODE).agg(
            pl.col("value").sort_by(**order).alias(values),
            (pl.col("_n") / pl.col("_n").sum()).sort_by(**order).alias(shares),
        )
        df = df.join(share_lists, on=CODE, how="left")
    df = df.with_columns(pl.lit(cut, dtype=pl.Datetime("us")).alias(AS_OF))
    market = market_prices(transactions) if market is None else market
    df = df.join(market, left_on="last_purchase", right_on=T_DAT, how="left").sort(CODE)
    return _finish(df, ids, pl.col(MARKET), affinity)


def market_prices(transactions: pl.DataFrame) -> pl.DataFrame:
    """``t_dat``, ``market_price``: per day with sales, the mean price per unit of everything sold up to that day.

    The reference of ``price_index``. Computed from the transactions given to the history functions by default;
    when the history is built per bucket of customers (to bound memory), pass the market of all transactions.
    """
    return (
        transactions.lazy()
        .select(to_day(pl.col(T_DAT)), *priced_sums(pl.col(PRICE), pl.col(QUANTITY).cast(pl.Int64)))
        .group_by(T_DAT)
        .agg(pl.col(SPEND, PRICED_UNITS).sum())
        .sort(T_DAT)
        .select(T_DAT, mean_price(pl.col(SPEND).cum_sum(), pl.col(PRICED_UNITS).cum_sum()).alias(MARKET))
        .collect()
    )


# ----------------------------------------------------------------------------------------------- events form


def customer_history_events(
    transactions: pl.DataFrame,
    articles: pl.DataFrame,
    *,
    n_last: int = 20,
    affinity_columns: Sequence[str] | None = None,
    market: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """History snapshots, one per (customer, purchase day), valid from the next day (``as_of`` = day + 1).

    ``market`` (see :func:`market_prices`) defaults to the market of ``transactions``.
    """
    if n_last < 1:
        raise ValueError(f"n_last must be at least 1, got {n_last}")
    daily, ids = daily_purchases(transactions)  # sorted by customer, day, article: the purchase sequences
    market = market_prices(transactions) if market is None else market
    return _events(daily, ids, articles, n_last, affinity_columns_for(articles, affinity_columns), market)


def customer_history_event_chunks(
    transactions: pl.DataFrame,
    articles: pl.DataFrame,
    *,
    rows_per_chunk: int,
    n_last: int = 20,
    affinity_columns: Sequence[str] | None = None,
    market: pl.DataFrame | None = None,
) -> tuple[int, Iterator[pl.DataFrame]]:
    """:func:`customer_history_events` in chunks of whole customers, about ``rows_per_chunk`` daily purchases each.

    Returns the number of chunks and an iterator over them; their concatenation equals the one-call result. The
    daily purchases are computed once and sliced (no copies), so memory holds one chunk's snapshots at a time:
    what lets H&M scale (~13M snapshots with lists) stream into the store.
    """
    if n_last < 1:
        raise ValueError(f"n_last must be at least 1, got {n_last}")
    affinity = affinity_columns_for(articles, affinity_columns)
    daily, ids = daily_purchases(transactions)
    market = market_prices(transactions) if market is None else market
    firsts = np.flatnonzero(group_starts(daily.get_column(CODE).to_numpy()))  # a customer's first row
    wanted = np.arange(rows_per_chunk, daily.height, max(rows_per_chunk, 1))
    bounds = np.unique(np.r_[0, firsts[np.minimum(np.searchsorted(firsts, wanted), len(firsts) - 1)], daily.height])
    pairs = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))

    def chunks() -> Iterator[pl.DataFrame]:
        spent = 0.0  # the running float sum of spend carries over, so every chunk adds in the one-call order
        for start, end in pairs:
            part = daily.slice(start, end - start)
            yield _events(part, ids, articles, n_last, affinity, market, spent)
            spent = float(np.cumsum(np.r_[spent, part.get_column("spend").to_numpy()])[-1])

    return len(pairs), chunks()


def _events(
    daily: pl.DataFrame,
    ids: pl.Series,
    articles: pl.DataFrame,
    n_last: int,
    affinity: list[str],
    market: pl.DataFrame,
    spent_before: float = 0.0,
) -> pl.DataFrame:
    """The snapshots of the customers in ``daily`` (whole customers, sorted by customer, day, article).

    ``spent_before``: the running sum of ``spend`` over the rows before ``daily`` in the one-call order. Float sums
    round by their order; carried over, they give every chunk the bits of the one-call result.
    """
    n = daily.height
    cust = daily.get_column(CODE).to_numpy()
    day = daily.get_column(T_DAT).to_physical().to_numpy()
    pos = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(group_starts(cust), pos, 0))  # first row of the row's customer
    day_end = np.roll(group_starts(cust, day), -1) if n else np.zeros(0, dtype=bool)  # last row of its day
    snap_of_row = np.cumsum(day_end) - day_end  # index of the snapshot a row belongs to

    def running(values: np.ndarray, before: float | int = 0) -> np.ndarray:  # sum within the customer, to this row
        total = np.cumsum(np.r_[before, values])[1:] if before else np.cumsum(values)
        return total - (total - values)[first]

    new_article = daily.select(pl.col(ARTICLE_ID).is_first_distinct().over(CODE)).to_series().to_numpy()
    ends = pos[day_end]
    snap = pl.DataFrame(
        {
            CODE: cust[ends],
            T_DAT: daily.get_column(T_DAT).gather(ends),
            "n_purchases": ends - first[ends] + 1,
            "n_units": running(daily.get_column(QUANTITY).to_numpy())[ends],
            "n_distinct_articles": running(new_article.astype(np.int64))[ends],
            "spend": running(daily.get_column("spend").to_numpy(), spent_before)[ends],
            "priced_units": running(daily.get_column("priced_units").to_numpy())[ends],
        }
    )
    length = np.minimum(ends - first[ends] + 1, n_last)
    gather = np.repeat(ends, length) - (np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length))
    bought = daily.get_column(T_DAT).gather(gather)
    last = daily.get_column(T_DAT).gather(np.repeat(ends, length))
    gaps = pl.select(days_between(pl.lit(last), pl.lit(bought))).to_series()
    snap = snap.with_columns(
        lists(daily.get_column(ARTICLE_ID).gather(gather), length, LAST_ARTICLES),
        lists(gaps, length, LAST_GAPS),
        pl.col(T_DAT).alias("last_purchase"),
        shifted(pl.col(T_DAT), 1).alias(AS_OF),
    )
    snap = snap.join(market, on=T_DAT, how="left", maintain_order="left")
    last_snap = np.cumsum(day_end)[np.r_[first[1:] != first[:-1], True]] - 1 if n else np.zeros(0, np.int64)
    for col in affinity:
        rows, vocab = _value_codes(
            daily.select(CODE, ARTICLE_ID, QUANTITY, pl.Series("_s", snap_of_row)), articles, col
        )
        values, shares = _running_shares(rows, vocab, last_snap, snap.height)
        snap = snap.with_columns(values.alias(_names(col)[0]), shares.alias(_names(col)[1]))
    return _finish(snap, ids, pl.col(MARKET), affinity)


def _running_shares(
    rows: pl.DataFrame, vocab: pl.Series, last_snap: np.ndarray, n_snaps: int
) -> tuple[pl.Series, pl.Series]:
    """Per snapshot, the values bought so far and their shares of units, largest first (ties: value order).

    A value's running count is a step function that starts at the snapshot where the customer first bought it
    and is carried forward to the customer's last snapshot. Each (customer, value) gets one contiguous block of
    slots (one per snapshot from its first to the customer's last), each running count repeated until the
    value's next purchase; one sort of packed integers then groups the slots by snapshot. The table has Σ over
    snapshots of the values seen so far: small for the low-cardinality columns affinities are meant for.
    """
    # One event per (customer, value, snapshot) where the value was bought, in that order: the three codes are
    # packed into one integer (bits: customers + values + snapshots, ~21 + 8 + 24 at H&M scale).
    cust_all, value_all, snap_all = (rows.get_column(c).to_numpy().astype(np.int64) for c in (CODE, "_v", "_s"))
    bits_v, bits_s = (max(int(a.max(initial=0)).bit_length(), 1) for a in (value_all, snap_all))
    if max(int(cust_all.max(initial=0)).bit_length(), 1) + bits_v + bits_s > 62:
        raise ValueError("too many customers x values x snapshots for one call: split the customers into buckets")
    keys, inverse = np.unique((cust_all << (bits_v + bits_s)) | (value_all << bits_s) | snap_all, return_inverse=True)
    units = np.bincount(inverse, weights=rows.get_column(QUANTITY).to_numpy(), minlength=len(keys)).astype(np.int64)
    cust, value, snap = keys >> (bits_v + bits_s), (keys >> bits_s) & ((1 << bits_v) - 1), keys & ((1 << bits_s) - 1)
    starts = group_starts(cust, value)
    group = np.cumsum(starts) - 1
    total = np.cumsum(units)
    running = total - (total - units)[starts][group]  # running units of the value up to each snapshot
    cust_index = np.cumsum(group_starts(cust)) - 1  # 0..(customers with purchases) in code order
    first_snap, last = snap[starts], last_snap[cust_index[starts]]
    length = last - first_snap + 1
    offset = np.cumsum(length) - length
    slots = int(length.sum())
    # A count holds from the slot of its snapshot to the slot before the value's next change (or the block end).
    at = offset[group] + snap - first_snap[group]
    until = np.where(np.append(group[1:] != group[:-1], True), (offset + length)[group], np.append(at[1:], 0))
    counts = np.repeat(running, until - at)
    # Sort the slots by snapshot ↑, count ↓, value ↑ as one packed integer, built and unpacked in place.
    top = int(counts.max(initial=0))
    bits_n = max(top.bit_length(), 1)
    shift = bits_n + bits_v
    if shift + bits_s > 62:
        raise ValueError("too many values x units x snapshots for one call: split the customers into buckets")
    key = np.repeat(((first_snap - offset) << shift) | value[starts], length)
    key += np.arange(slots, dtype=np.int64) << shift  # the slot's snapshot: first snapshot + position in block
    key += (top - counts) << bits_v
    key.sort(kind="stable")
    s, v = key >> shift, key & ((1 << bits_v) - 1)
    n = (top - ((key >> bits_v) & ((1 << bits_n) - 1))).astype(np.float64)
    per_snap = np.bincount(s, minlength=n_snaps)
    share = n / np.bincount(s, weights=n, minlength=n_snaps)[s]
    return coded_lists(v, vocab, per_snap, "values"), lists(pl.Series(share), per_snap, "shares")
