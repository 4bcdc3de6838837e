"""The in-memory form of a raw data set, whatever its source.

Every source (synthetic generator, H&M Kaggle files, a user's spec) is loaded into the same shape: three polars
frames whose *role* columns carry canonical names (H&M's words) and whose other columns are features typed by the
spec. Downstream code finds roles by these names and feature types in ``features``, never by dataset-specific
column names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

# Canonical role columns.
CUSTOMER_ID = "customer_id"
ARTICLE_ID = "article_id"
T_DAT = "t_dat"  # a real timestamp (pl.Datetime("us")), even for daily data
PRICE = "price"  # optional role: null when the source has none
QUANTITY = "quantity"  # optional role: 1 when the source has none

FEATURE_TYPES = ("categorical", "multi_categorical", "numeric", "text", "timestamp")


@dataclass(frozen=True)
class FeatureSpec:
    """The type of one feature column (design §1: roles come from the spec, not from names)."""

    type: str
    separator: str | None = None  # multi_categorical only

    def __post_init__(self) -> None:
        if self.type not in FEATURE_TYPES:
            raise ValueError(f"feature type {self.type!r} is not one of {', '.join(FEATURE_TYPES)}")


@dataclass(frozen=True)
class Dataset:
    """Customers, articles and transactions of one data set, with the feature types of each table."""

    name: str
    customers: pl.DataFrame  # customer_id + customer features
    articles: pl.DataFrame  # article_id + article features
    transactions: pl.DataFrame  # t_dat, customer_id, article_id, price, quantity + transaction features
    features: dict[str, dict[str, FeatureSpec]] = field(default_factory=dict)  # table -> column -> type

    def feature_columns(self, table: str, *types: str) -> list[str]:
        """Feature columns of ``table`` (customers | articles | transactions), optionally of the given types."""
        cols = self.features.get(table, {})
        return [name for name, spec in cols.items() if not types or spec.type in types]
