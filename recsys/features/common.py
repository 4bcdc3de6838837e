"""What every feature group shares: storable column names, category cleaning, purchase days and cut-offs.

Feature groups are written to stores that accept lowercase identifiers only (Hopsworks lowercases feature
names, SQLite wants no quoting), so a spec's ``FN`` becomes ``fn``. Purchases are counted per *day*: the
transactions table holds dates, not times, and the point-in-time rule (design §3) is stated in days — a feature
for a purchase on day t may use what happened before day t, never what happened on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT
from recsys.errors import SpecError
from recsys.features.arrays import collapse_runs

MISSING = "MISSING"  # the value a missing (null or blank) category gets: a category of its own, never null
DAY = "1d"
SPEND, PRICED_UNITS = "spend", "priced_units"  # what a set of rows' priced units cost, and how many had a price
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


def feature_name(column: str) -> str:
    """The storable name of a spec column: lowercase, runs of other characters become ``_`` (``FN`` -> ``fn``)."""
    name = _NOT_NAME.sub("_", column.strip().lower()).strip("_") or "feature"
    return f"f_{name}" if name[0].isdigit() else name


def feature_names(columns: Iterable[str], table: str) -> dict[str, str]:
    """Column -> storable name for every column, failing when two spec columns would get the same name."""
    out: dict[str, str] = {}
    taken: dict[str, str] = {}
    for col in columns:
        name = feature_name(col)
        if name in taken:
            raise SpecError(
                f"{table}: feature columns {taken[name]!r} and {col!r} both become {name!r} once names are made "
                "lowercase identifiers for the feature store; rename one of them in the dataset spec"
            )
        out[col], taken[name] = name, col
    return out


def clean_text(expr: pl.Expr) -> pl.Expr:
    """Strip and collapse whitespace; a blank string is a missing one (null)."""
    text = expr.cast(pl.String).str.strip_chars().str.replace_all(r"\s+", " ")
    return pl.when(text.str.len_chars() > 0).then(text)


def clean_categorical(expr: pl.Expr, case: str | None = None) -> pl.Expr:
    """A category as a model sees it: whitespace normalised, optionally case-folded, never null.

    ``case="upper"`` merges spellings that differ only by case (H&M writes both ``None`` and ``NONE``). Nulls and
    blanks become :data:`MISSING`: "unknown" is information a model can learn from, and a null category would
    otherwise need special handling in every tower and in the online store.
    """
    text = clean_text(expr)
    if case == "upper":
        text = text.str.to_uppercase()
    elif case == "lower":
        text = text.str.to_lowercase()
    elif case is not None:
        raise ValueError(f"case must be 'upper', 'lower' or None, not {case!r}")
    return text.fill_null(pl.lit(MISSING))


def clean_multi_categorical(expr: pl.Expr, case: str | None = None) -> pl.Expr:
    """A list of categories: each element cleaned, blanks dropped, a missing list is an empty one."""
    element = pl.element().str.strip_chars().str.replace_all(r"\s+", " ")
    if case == "upper":
        element = element.str.to_uppercase()
    elif case == "lower":
        element = element.str.to_lowercase()
    cleaned = expr.cast(pl.List(pl.String)).list.eval(element.filter(element.str.len_chars() > 0))
    return cleaned.fill_null(pl.lit([], dtype=pl.List(pl.String)))


def clean_numeric(expr: pl.Expr) -> pl.Expr:
    """A float where NaN and infinities count as missing (null), so that one indicator covers every gap."""
    number = expr.cast(pl.Float64)
    return pl.when(number.is_finite()).then(number)


def naive_utc(when: datetime) -> datetime:
    """``when`` as naive UTC, the store's times; a naive time is UTC already. ``OverflowError`` for an aware time
    whose UTC falls outside the calendar (e.g. 0001-01-01T00:00+05:00)."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo is not None else when


def cutoff(as_of: datetime | date) -> datetime:
    """The start of ``as_of``'s day (naive UTC): features as of a time use only days strictly before it."""
    if isinstance(as_of, datetime):
        as_of = naive_utc(as_of)
    return datetime(as_of.year, as_of.month, as_of.day)


CODE = "_c"  # a customer's integer code inside one computation: the index of its id in the sorted ids
CODE_SLICE_ROWS = 4_000_000


def with_customer_codes(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """``frame`` with ``_c`` instead of ``customer_id``, and the sorted ids (``ids[_c]`` is the customer's id).

    Customer ids are long strings (64 hex characters for H&M): grouping and sorting by a small integer is
    several times faster, and numbering the ids in sorted order keeps their order.
    """
    ids = frame.get_column(CUSTOMER_ID).unique().sort()
    lookup = pl.DataFrame({CUSTOMER_ID: ids, CODE: pl.int_range(ids.len(), dtype=pl.UInt32, eager=True)})
    # Joined slice by slice: one join over every row holds all of its ids and hash tables at once (H&M: +1.8 GiB,
    # against +0.5 GiB in slices, in the same time).
    parts = [
        part.join(lookup, on=CUSTOMER_ID, how="left", maintain_order="left").get_column(CODE)
        for part in frame.select(CUSTOMER_ID).iter_slices(CODE_SLICE_ROWS)
    ]
    codes = pl.concat(parts, rechunk=True) if parts else pl.Series(CODE, [], dtype=pl.UInt32)
    return frame.drop(CUSTOMER_ID).with_columns(codes), ids


def daily_purchases(transactions: pl.DataFrame, before: datetime | None = None) -> tuple[pl.DataFrame, pl.Series]:
    """One row per (customer, article, day) with ``quantity`` (units), ``spend`` and ``priced_units``.

    Works on the raw transactions table and on the ``transactions`` feature group alike (both carry the role
    columns), and gives the same counts on both. ``spend`` sums price x quantity over rows with a price and
    ``priced_units`` counts their units, so that a mean price can be taken over any set of days later. Rows on
    or after ``before``'s day are left out.

    Customers are identified by ``_c``, the index of their id in the returned sorted ids (see
    :func:`with_customer_codes`). Columns: ``_c`` (UInt32), ``article_id``, ``t_dat``, ``quantity`` (Int32),
    ``spend``, ``priced_units`` (Int32); sorted by customer, day, article — every customer's purchase sequence.
    """
    lf = transactions.lazy()
    if before is not None:
        lf = lf.filter(pl.col(T_DAT) < cutoff(before))
    quantity = pl.col(QUANTITY).cast(pl.Int32)  # units of one article on one day: 32 bits hold them (H&M: -0.5 GiB)
    rows = lf.select(
        CUSTOMER_ID,
        ARTICLE_ID,
        to_day(pl.col(T_DAT)),
        quantity.alias(QUANTITY),
        *priced_sums(pl.col(PRICE).cast(pl.Float64), quantity),
    ).collect()
    rows, ids = with_customer_codes(rows)
    rows = _by_customer_day_article(rows)  # the only reference: the unsorted rows are freed
    daily = collapse_runs(rows, [CODE, T_DAT, ARTICLE_ID], [QUANTITY, SPEND, PRICED_UNITS])
    del rows
    return daily.select(CODE, ARTICLE_ID, T_DAT, QUANTITY, SPEND, PRICED_UNITS), ids


def _by_customer_day_article(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` sorted by customer code, day, article.

    Rows usually come in day and article order within a customer already (the ``transactions`` feature group is
    sorted by day, customer, article): then a stable sort by the customer code alone is enough, and numpy's
    (a radix sort of the codes, then one gather) needs a fraction of the memory of polars' three-key sort (H&M:
    +0.2 GiB instead of +1.3 GiB). Otherwise the full sort follows.
    """
    rows = rows[np.argsort(rows.get_column(CODE).to_numpy(), kind="stable")]

    def previous(col: str) -> pl.Expr:
        return pl.col(col).shift()

    in_order = rows.select(
        (
            (pl.col(CODE) != previous(CODE))
            | (pl.col(T_DAT) > previous(T_DAT))
            | ((pl.col(T_DAT) == previous(T_DAT)) & (pl.col(ARTICLE_ID) >= previous(ARTICLE_ID)))
        )
        .fill_null(True)
        .all()
    ).item()
    return rows if in_order else rows.sort(CODE, T_DAT, ARTICLE_ID)


def to_day(ts: pl.Expr) -> pl.Expr:
    """A timestamp truncated to its day (midnight), as ``Datetime("us")``."""
    return ts.cast(pl.Datetime("us")).dt.truncate(DAY)


def priced_sums(price: pl.Expr, quantity: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Each row's :data:`SPEND` (price x quantity, 0 without a price) and :data:`PRICED_UNITS` (its quantity, 0
    without a price): summed over any set of rows, :func:`mean_price` of the two is their mean price per unit."""
    priced = price.is_not_null()
    return (
        pl.when(priced).then(price * quantity).otherwise(0.0).alias(SPEND),
        pl.when(priced).then(quantity).otherwise(0).alias(PRICED_UNITS),
    )


def mean_price(spend: pl.Expr, priced_units: pl.Expr) -> pl.Expr:
    """Mean price per unit; null where no unit had a price (a source without prices stays honest)."""
    return pl.when(priced_units > 0).then(spend / priced_units)


def days_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Whole days from ``earlier`` to ``later`` (both day-truncated datetimes) as Int32."""
    return (later - earlier).dt.total_days().cast(pl.Int32)


def shifted(day: pl.Expr, days: int) -> pl.Expr:
    """``day`` moved by a whole number of days (a calendar-free shift: our timestamps are naive UTC days)."""
    return day + pl.lit(timedelta(days=days))
