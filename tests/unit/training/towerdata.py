"""Hand-made frames in the shape of the ``retrieval`` and ``articles`` views, small enough to check by eye.

Imported by the tests of this folder as ``towerdata`` (pytest puts the folder on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from recsys.data.dataset import FeatureSpec

D = datetime
FEATURES = {
    "transactions": {"sales_channel_id": FeatureSpec("categorical")},
    "customers": {
        "club_member_status": FeatureSpec("categorical"),
        "age": FeatureSpec("numeric"),
        "nickname": FeatureSpec("text"),  # text customer features are not tower inputs
    },
    "articles": {
        "product_type_name": FeatureSpec("categorical"),
        "colour_group_name": FeatureSpec("categorical"),
        "prod_name": FeatureSpec("text"),
    },
}


def articles() -> pl.DataFrame:
    """Four articles; a4 is never bought (a cold-start article)."""
    return pl.DataFrame(
        {
            "article_id": [1, 2, 3, 4],
            "product_type_name": ["Dress", "Sweater", "Dress", "Trousers"],
            "colour_group_name": ["Black", "White", "Black", "Blue"],
            "prod_name": ["Luna dress", "Moss sweater", "Star dress", "Sky trousers"],
            "description": [
                "Luna dress. Dress, Black.",
                "Moss sweater. Sweater, White.",
                "Star dress. Dress, Black.",
                "Sky trousers. Trousers, Blue.",
            ],
        }
    )


def rows() -> pl.DataFrame:
    """Retrieval rows: c1 buys 1 (Jan 1), 2 and 3 (Jan 3), 1 (Jan 10); c2 buys 2 (Jan 3).

    History columns are as of each purchase (days before it): c1's Jan 3 rows see [1], the Jan 10 row [3, 2, 1].
    """
    n = [None, 1, 1, None, 3]
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2", "c1"],
            "article_id": [1, 2, 3, 2, 1],
            "t_dat": [D(2020, 1, 1), D(2020, 1, 3), D(2020, 1, 3), D(2020, 1, 3), D(2020, 1, 10)],
            "quantity": [1, 1, 1, 2, 1],
            "price": [10.0, 20.0, 30.0, 20.0, 12.0],
            "month_sin": [0.0] * 5,
            "month_cos": [1.0] * 5,
            "sales_channel_id": ["1", "2", "2", "1", "1"],
            "club_member_status": ["ACTIVE", "ACTIVE", "ACTIVE", "MISSING", "ACTIVE"],
            "age": [30.0, 30.0, 30.0, None, 30.0],
            "age_missing": [0, 0, 0, 1, 0],
            "age_group": ["25-34", "25-34", "25-34", "unknown", "25-34"],
            "nickname": ["Cee", "Cee", "Cee", None, "Cee"],
            "last_article_ids": [None, [1], [1], None, [3, 2, 1]],
            "n_purchases": n,
            "last_purchase": [None, D(2020, 1, 1), D(2020, 1, 1), None, D(2020, 1, 3)],
            "product_type_name_values": [None, ["Dress"], ["Dress"], None, ["Dress", "Sweater"]],
            "product_type_name_shares": [None, [1.0], [1.0], None, [2 / 3, 1 / 3]],
        },
        schema_overrides={"last_article_ids": pl.List(pl.Int64), "n_purchases": pl.Int32},
    )


@dataclass(frozen=True)
class Tiny:
    """The ``tiny`` preset's views, split by time (built by the ``tiny`` fixture of ``conftest.py``)."""

    features: dict[str, dict[str, FeatureSpec]]
    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    articles: pl.DataFrame
    customers: pl.DataFrame  # the customers view: attributes + latest history
    val_start: datetime
    test_start: datetime
