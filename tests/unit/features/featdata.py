"""Hand-made frames in the canonical Dataset shape, so feature tests read like the tables they describe.

Imported by the tests of this folder as ``featdata`` (pytest puts the folder on ``sys.path``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

DAY0 = datetime(2020, 1, 1)  # "day 1" of the hand-made stories


def day(n: int, hour: int = 0) -> datetime:
    """Day ``n`` of the story (day 1 = 2020-01-01), optionally at an hour."""
    return DAY0 + timedelta(days=n - 1, hours=hour)


def transactions(rows: list[tuple], **extra: list) -> pl.DataFrame:
    """Rows ``(customer_id, article_id, t_dat[, quantity[, price]])``; quantity defaults to 1, price to 1.0."""
    full = [(r + (1, 1.0)[len(r) - 3 :]) if len(r) < 5 else r for r in rows]
    df = pl.DataFrame(
        {
            "t_dat": [r[2] for r in full],
            "customer_id": [r[0] for r in full],
            "article_id": [r[1] for r in full],
            "price": [r[4] for r in full],
            "quantity": [r[3] for r in full],
        },
        schema={
            "t_dat": pl.Datetime("us"),
            "customer_id": pl.String,
            "article_id": pl.Int64 if all(isinstance(r[1], int) for r in full) else pl.String,
            "price": pl.Float64,
            "quantity": pl.Int32,
        },
    )
    return df.with_columns(pl.Series(name, values) for name, values in extra.items())


def articles() -> pl.DataFrame:
    """Four articles of the history stories: A=10, B=20, C=30, D=40 (D has no colour)."""
    return pl.DataFrame(
        {
            "article_id": [10, 20, 30, 40],
            "index_group_name": ["Ladieswear", "Ladieswear", "Menswear", "Ladieswear"],
            "product_type_name": ["T-shirt", "Trousers", "T-shirt", "Dress"],
            "colour_group_name": ["Black", "Black", "White", None],
        }
    )
