"""The ``customers`` feature group: cleaned customer attributes and an age group, one row per customer.

Which column is what comes from the dataset spec (``Dataset.features["customers"]``), never from H&M's names.
The only name this module knows is ``age``: when a numeric ``age`` feature exists, an ``age_group`` is added,
because cohorts (not exact ages) are what tastes follow, and a bucket lets a tower embed them like a category.

Missing values, by feature type:

* categorical: whitespace normalised and case-folded to upper case (H&M writes both ``None`` and ``NONE`` in
  ``fashion_news_frequency``); null or blank becomes ``"MISSING"`` — a category of its own.
* numeric: kept as a nullable Float64 (NaN and infinities become null) **plus** ``<name>_missing`` (Int8 0/1).
  We do not impute here: a median depends on the batch, so an incremental run would impute differently from
  the backfill; the model's preprocessing (fit on training data) fills the gap, and the indicator keeps the
  fact that a value was missing (for H&M's ``FN``/``Active`` a null *means* "no").
  An ``age`` outside [0, 120] is not an age: it is treated as missing.
* multi_categorical: elements cleaned like categoricals, a missing list is an empty list.
* text: whitespace normalised, blank is null. timestamp: kept as is.

Column names are made storable (``FN`` -> ``fn``, see :func:`~recsys.features.common.feature_name`).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from recsys.data.dataset import CUSTOMER_ID, FeatureSpec
from recsys.features.common import (
    clean_categorical,
    clean_multi_categorical,
    clean_numeric,
    clean_text,
    feature_names,
)

AGE = "age"
AGE_GROUP = "age_group"
AGE_RANGE = (0.0, 120.0)  # anything outside is a data error, not an age
UNKNOWN_AGE = "unknown"
# (lowest age of the group, label), ascending. Ages below the first bound form their own group.
AGE_GROUPS: tuple[tuple[int, str], ...] = (
    (0, "<16"),
    (16, "16-24"),
    (25, "25-34"),
    (35, "35-44"),
    (45, "45-54"),
    (55, "55-64"),
    (65, "65+"),
)
MISSING_SUFFIX = "_missing"


def age_group(age: pl.Expr) -> pl.Expr:
    """The age group label of an age in years (fractions round down); ``"unknown"`` when missing or impossible.

    >>> 24.9 -> "16-24", 25 -> "25-34", 65 -> "65+", 15 -> "<16", null -> "unknown"
    """
    years = clean_numeric(age).floor()
    valid = years.is_between(*AGE_RANGE)
    expr = pl.lit(UNKNOWN_AGE)
    for low, label in AGE_GROUPS:  # later (higher) bounds override: the last bound below the age wins
        expr = pl.when(valid & (years >= low)).then(pl.lit(label)).otherwise(expr)
    return expr


def customer_features(
    customers: pl.DataFrame,
    features: Mapping[str, FeatureSpec],
    *,
    case: str | None = "upper",
) -> pl.DataFrame:
    """Cleaned customer attributes, one row per input row (the input has one row per customer).

    Output: ``customer_id``, then every spec feature present in ``customers`` (renamed to a storable name and
    cleaned by type, see the module docstring), each numeric followed by ``<name>_missing`` (Int8), and
    ``age_group`` (String) when a numeric ``age`` feature exists. Columns the spec does not type are left out.
    """
    present = [col for col in features if col in customers.columns]
    names = feature_names(present, "customers")
    exprs: list[pl.Expr] = [pl.col(CUSTOMER_ID)]
    age_source: str | None = None
    for col in present:
        kind, name = features[col].type, names[col]
        if kind == "categorical":
            exprs.append(clean_categorical(pl.col(col), case).alias(name))
        elif kind == "multi_categorical":
            exprs.append(clean_multi_categorical(pl.col(col), case).alias(name))
        elif kind == "numeric":
            value = clean_numeric(pl.col(col))
            if name == AGE:
                value = pl.when(value.is_between(*AGE_RANGE)).then(value)
                age_source = col
            exprs += [value.alias(name), value.is_null().cast(pl.Int8).alias(name + MISSING_SUFFIX)]
        elif kind == "text":
            exprs.append(clean_text(pl.col(col)).alias(name))
        else:  # timestamp
            exprs.append(pl.col(col).alias(name))
    if age_source is not None:
        exprs.append(age_group(pl.col(age_source)).alias(AGE_GROUP))
    return customers.select(exprs)
