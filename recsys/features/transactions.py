"""The ``transactions`` feature group: daily purchases with quantity, price and the season as month sin/cos.

One row per (customer_id, article_id, day). Sources record days, not times (H&M's ``t_dat`` is a date), and two
identical rows on one day are H&M's way of writing "bought two": aggregating to the day makes the primary key
``(customer_id, article_id, t_dat)`` unique and turns repeated rows into a ``quantity``. ``t_dat`` stays a real
timestamp (``pl.Datetime("us")`` at midnight) so that feature views can as-of join on it.

* ``quantity`` = units bought that day (sum, Int32); ``price`` = mean price per unit, weighted by quantity, over
  the rows that have a price (null when none has).
* ``month_sin``, ``month_cos``: the month on the unit circle, angle = 2π·(month − 1)/12, so January = (0, 1),
  April = (1, 0), July = (0, −1), October = (−1, 0), and December sits next to January. Monthly (not daily)
  resolution: seasons in fashion move by the month, and every day of a month gets the same context.
* Transaction feature columns: categorical → the most frequent value of the day's rows (ties → the smallest
  value, so the result does not depend on row order; e.g. the sales channel used most); numeric → the mean;
  text and timestamp → the smallest value; multi-categorical → the first row's list. Renamed to storable
  names (see ``feature_name``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT, FeatureSpec
from recsys.features.arrays import collapse_runs
from recsys.features.common import (
    CODE,
    clean_categorical,
    clean_numeric,
    feature_names,
    mean_price,
    to_day,
    with_customer_codes,
)

MONTH_SIN = "month_sin"
MONTH_COS = "month_cos"
KEY = (CUSTOMER_ID, ARTICLE_ID, T_DAT)


def month_angle(ts: pl.Expr) -> pl.Expr:
    """The month of ``ts`` as an angle in radians: 2π·(month − 1)/12 (January 0, April π/2)."""
    return (ts.dt.month().cast(pl.Float64) - 1.0) * (2.0 * math.pi / 12.0)


def month_features(ts: pl.Expr) -> list[pl.Expr]:
    """``month_sin`` and ``month_cos`` of a timestamp: also the request context at serving time."""
    angle = month_angle(ts)
    return [angle.sin().alias(MONTH_SIN), angle.cos().alias(MONTH_COS)]


def transaction_features(
    transactions: pl.DataFrame,
    features: Mapping[str, FeatureSpec] | None = None,
    *,
    month: bool = True,
) -> pl.DataFrame:
    """Daily purchases: one row per (customer_id, article_id, t_dat), sorted by t_dat, customer_id, article_id.

    Output columns: ``customer_id``, ``article_id``, ``t_dat`` (Datetime us, midnight), ``quantity`` (Int32),
    ``price`` (Float64, nullable), ``month_sin``, ``month_cos`` (Float64), then the transaction features of the
    spec that are present in ``transactions`` (aggregated as described in the module docstring).
    ``month=False`` leaves the month columns out, for :func:`with_month_features` to add just before writing: a
    backfill at H&M scale need not hold their 0.5 GiB through the history step.
    """
    features = features or {}
    present = [col for col in features if col in transactions.columns]
    names = feature_names(present, "transactions")
    aggs: list[pl.Expr] = []  # for days with several rows of one customer and article; else the row's own values
    prepared: list[pl.Expr] = []
    for col in present:
        kind, name = features[col].type, names[col]
        if kind == "categorical":
            prepared.append(clean_categorical(pl.col(col)).alias(name))
            # mode() lists every tied value; the smallest one makes the choice independent of row order.
            aggs.append(pl.col(name).drop_nulls().mode().min())
        elif kind == "numeric":
            prepared.append(clean_numeric(pl.col(col)).alias(name))
            aggs.append(pl.col(name).mean())
        elif kind == "multi_categorical":
            prepared.append(pl.col(col).alias(name))  # lists have no order to pick by: the first row's
        else:  # text, timestamp: the smallest value
            prepared.append(pl.col(col).alias(name))
            aggs.append(pl.col(name).min())
    priced = pl.col(PRICE).is_not_null()
    quantity = pl.col(QUANTITY).cast(pl.Int64)
    rows = transactions.select(
        pl.col(CUSTOMER_ID),
        pl.col(ARTICLE_ID),
        to_day(pl.col(T_DAT)),
        quantity.alias(QUANTITY),
        pl.when(priced).then(pl.col(PRICE) * quantity).alias("_spend"),
        pl.when(priced).then(quantity).alias("_priced"),
        *prepared,
    )
    rows, ids = with_customer_codes(rows)  # group and sort by an integer, not a 64-character string
    rows = rows.sort(T_DAT, CODE, ARTICLE_ID)
    daily = collapse_runs(rows, [T_DAT, CODE, ARTICLE_ID], [QUANTITY, "_spend", "_priced"], aggs)
    del rows  # H&M: 1.4 GiB that the output does not need
    return daily.select(
        ids.gather(daily.get_column(CODE)).alias(CUSTOMER_ID),
        ARTICLE_ID,
        T_DAT,
        pl.col(QUANTITY).cast(pl.Int32),
        mean_price(pl.col("_spend"), pl.col("_priced")).alias(PRICE),
        *(month_features(pl.col(T_DAT)) if month else []),
        *(names[col] for col in present),
    )


def with_month_features(daily: pl.DataFrame) -> pl.DataFrame:
    """``daily`` from ``transaction_features(..., month=False)`` with the month columns in their place."""
    columns = daily.columns
    at = columns.index(PRICE) + 1
    return daily.select(*columns[:at], *month_features(pl.col(T_DAT)), *columns[at:])
