"""The baselines reported beside every model (design §6), in the model's output format.

* **popularity** — everyone gets the articles that sold the most units in the week before ``as_of``. Ties (and
  articles that did not sell that week) are ordered by units sold over all time before ``as_of``, then by
  article id; articles of the catalogue that never sold come last, so a list is always full.
* **repurchase + popularity** — a customer's own past purchases first (most recently bought first, then most
  often bought, then article id), filled up with the popularity list (without repeating an article). In
  fashion a large share of purchases are re-buys of a colour or size variant, which makes this baseline hard
  to beat at small K.

Both only read purchases strictly before ``as_of``'s day and return
:class:`~recsys.training.retrieval_eval.Recommendations`, so the same metric code scores them and the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, QUANTITY, T_DAT
from recsys.features.common import cutoff
from recsys.training.retrieval_eval import Recommendations

POPULARITY_DAYS = 7


def popular_articles(
    transactions: pl.DataFrame,
    as_of: datetime | date,
    n: int,
    *,
    days: int = POPULARITY_DAYS,
    catalogue: Sequence | np.ndarray | pl.Series | None = None,
) -> pl.DataFrame:
    """The ``n`` most popular articles before ``as_of`` (see the module docstring): ``article_id``, ``units``.

    ``units`` are the units sold in the ``days`` days before ``as_of``'s day. Raises when fewer than ``n``
    articles are known (sold before ``as_of`` or listed in ``catalogue``).
    """
    end = cutoff(as_of)
    start = end - timedelta(days=days)
    past = transactions.filter(pl.col(T_DAT) < end)
    quantity = pl.col(QUANTITY).cast(pl.Int64) if QUANTITY in past.columns else pl.lit(1, pl.Int64)
    ranked = past.group_by(ARTICLE_ID).agg(
        quantity.filter(pl.col(T_DAT) >= start).sum().alias("units"),
        quantity.sum().alias("_all"),
    )
    if catalogue is not None:
        ids = pl.Series(ARTICLE_ID, catalogue).cast(ranked.schema[ARTICLE_ID]).unique()
        unsold = pl.DataFrame({ARTICLE_ID: ids}).join(ranked, on=ARTICLE_ID, how="anti")
        ranked = pl.concat([ranked, unsold.with_columns(units=pl.lit(0, pl.Int64), _all=pl.lit(0, pl.Int64))])
    if ranked.height < n:
        raise ValueError(f"only {ranked.height} articles are known before {end:%Y-%m-%d}; cannot rank {n}")
    ranked = ranked.sort(["units", "_all", ARTICLE_ID], descending=[True, True, False])
    return ranked.head(n).select(ARTICLE_ID, "units")


def _matrix(lists: pl.Series, n: int) -> np.ndarray:
    """Equal-length lists (every one is filled up to ``n``) as an [len, n] array."""
    return lists.explode().to_numpy().reshape(lists.len(), n)


def popularity_baseline(
    customer_ids: Sequence | np.ndarray | pl.Series,
    transactions: pl.DataFrame,
    as_of: datetime | date,
    n: int,
    *,
    days: int = POPULARITY_DAYS,
    catalogue: Sequence | np.ndarray | pl.Series | None = None,
) -> Recommendations:
    """The same ``n`` most popular articles for every customer; scores = units sold in the last ``days`` days."""
    top = popular_articles(transactions, as_of, n, days=days, catalogue=catalogue)
    customers = np.asarray(customer_ids)
    ids = top.get_column(ARTICLE_ID).to_numpy()
    units = top.get_column("units").to_numpy().astype(np.float32)
    return Recommendations(customers, np.tile(ids, (len(customers), 1)), np.tile(units, (len(customers), 1)))


def repurchase_baseline(
    customer_ids: Sequence | np.ndarray | pl.Series,
    transactions: pl.DataFrame,
    as_of: datetime | date,
    n: int,
    *,
    days: int = POPULARITY_DAYS,
    catalogue: Sequence | np.ndarray | pl.Series | None = None,
) -> Recommendations:
    """Each customer's own past purchases (latest first, then most often), filled up with popularity."""
    end = cutoff(as_of)
    popular = popular_articles(transactions, as_of, n, days=days, catalogue=catalogue).get_column(ARTICLE_ID)
    id_type = transactions.schema[CUSTOMER_ID]
    customers = pl.DataFrame({CUSTOMER_ID: pl.Series(np.asarray(customer_ids)).cast(id_type)})
    own = (
        transactions.filter(pl.col(T_DAT) < end)
        .join(customers, on=CUSTOMER_ID, how="semi")
        .group_by(CUSTOMER_ID, ARTICLE_ID)
        .agg(pl.col(T_DAT).max().alias("_last"), pl.col(T_DAT).n_unique().alias("_days"))
        .sort([CUSTOMER_ID, "_last", "_days", ARTICLE_ID], descending=[False, True, True, False])
        .group_by(CUSTOMER_ID, maintain_order=True)
        .agg(pl.col(ARTICLE_ID).head(n).alias("_own"))
    )
    lists = (
        customers.join(own, on=CUSTOMER_ID, how="left", maintain_order="left")
        .select(
            pl.concat_list(
                pl.col("_own").fill_null(pl.lit([], dtype=pl.List(popular.dtype))),
                pl.lit(popular.to_list(), dtype=pl.List(popular.dtype)),
            )
            .list.unique(maintain_order=True)
            .list.head(n)
            .alias("_top")
        )
        .get_column("_top")
    )
    return Recommendations(np.asarray(customer_ids), _matrix(lists, n))
