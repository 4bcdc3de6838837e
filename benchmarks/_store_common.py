"""Shared helpers for the feature store benchmarks: H&M-shaped frames of any size (results: see ``_common``)."""

from __future__ import annotations

import statistics

import numpy as np
import polars as pl

from recsys.data.synthetic import hex_strings


def hex_ids(n: int, seed: int) -> pl.Series:
    """``n`` random 64-character lowercase hex strings (H&M customer id shape)."""
    return hex_strings(np.random.default_rng(seed), n).alias("customer_id")


def transactions(rows: int, customers: int, articles: int = 105_542, seed: int = 0) -> pl.DataFrame:
    """H&M transactions schema: t_dat, customer_id, article_id, price, sales_channel_id; unique keys."""
    rng = np.random.default_rng(seed)
    ids = hex_ids(customers, seed)
    start = np.datetime64("2018-09-20", "us").astype(np.int64)
    day_us = 86_400_000_000
    frame = pl.DataFrame(
        {
            "t_dat": pl.Series(start + rng.integers(0, 734, rows) * day_us).cast(pl.Datetime("us")),
            "customer_id": ids.gather(rng.integers(0, customers, rows)),
            "article_id": rng.integers(108_775_015, 108_775_015 + articles * 9, rows, dtype=np.int64),
            "price": rng.random(rows) * 0.1,
            "sales_channel_id": rng.integers(1, 3, rows, dtype=np.int64),
        }
    )
    return frame.unique(subset=["customer_id", "article_id", "t_dat"], keep="first", maintain_order=True)


def customers(rows: int, seed: int = 0) -> pl.DataFrame:
    """H&M customers schema (cleaned): ids, flags, status, frequency, age, postal code."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": hex_ids(rows, seed),
            "fn": rng.random(rows) < 0.35,
            "active": rng.random(rows) < 0.34,
            "club_member_status": pl.Series(np.array(["ACTIVE", "PRE-CREATE", "LEFT CLUB"])[rng.integers(0, 3, rows)]),
            "fashion_news_frequency": pl.Series(np.array(["NONE", "Regularly", "Monthly"])[rng.integers(0, 3, rows)]),
            "age": rng.integers(16, 99, rows, dtype=np.int64),
            "postal_code": hex_ids(rows, seed + 1),
        }
    )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def median(values: list[float]) -> float:
    return float(statistics.median(values))
