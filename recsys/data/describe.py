"""A one-screen summary of a data set: the numbers that decide how a recommender for it should be built.

Sparsity and transactions per customer say how much a collaborative model can learn per customer; the share of
the top 1% of articles says how hard a popularity baseline is to beat; the repurchase share says how much a
"buy it again" candidate source is worth. All of it is computed with a few vectorised polars queries.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, QUANTITY, T_DAT, Dataset

TOP_VALUES = 5
TOP_ARTICLE_SHARE = 0.01  # "the top 1% of articles"


def describe(ds: Dataset) -> dict[str, Any]:
    """Summary statistics of ``ds`` as plain values (JSON-ready).

    Definitions: *sales* are units sold (sum of ``quantity``). *Sparsity* is 1 - distinct (customer, article)
    pairs / (rows of customers x rows of articles), i.e. over the whole matrix a model scores. The *top 1% of
    articles* is ceil(1% of the catalogue) articles with the most sales. A *repurchase* is a transaction whose
    (customer, article) pair was already bought on an earlier day.
    """
    tx = ds.transactions
    n_customers, n_articles, n_tx = ds.customers.height, ds.articles.height, tx.height
    summary: dict[str, Any] = {
        "name": ds.name,
        "rows": {"customers": n_customers, "articles": n_articles, "transactions": n_tx},
    }
    if n_tx == 0:
        return summary | {"transactions": None, "top_values": {}}

    day = pl.col(T_DAT).dt.date()
    units = pl.col(QUANTITY).fill_null(1).cast(pl.Int64) if QUANTITY in tx.columns else pl.lit(1, pl.Int64)
    tx = tx.select(CUSTOMER_ID, ARTICLE_ID, day.alias("day"), units.alias("units"))

    overall = tx.select(
        first=pl.col("day").min(),
        last=pl.col("day").max(),
        customers=pl.col(CUSTOMER_ID).n_unique(),
        articles=pl.col(ARTICLE_ID).n_unique(),
        pairs=pl.struct(CUSTOMER_ID, ARTICLE_ID).n_unique(),
        units=pl.col("units").sum(),
        # bought on an earlier day by the same customer: the pair's first day is before this row's day
        repurchases=(pl.col("day") > pl.col("day").min().over(CUSTOMER_ID, ARTICLE_ID)).sum(),
        unknown_customers=(~pl.col(CUSTOMER_ID).is_in(ds.customers.get_column(CUSTOMER_ID).implode())).sum(),
        unknown_articles=(~pl.col(ARTICLE_ID).is_in(ds.articles.get_column(ARTICLE_ID).implode())).sum(),
    ).row(0, named=True)

    per_customer = tx.group_by(CUSTOMER_ID).len().get_column("len")
    sales = tx.group_by(ARTICLE_ID).agg(pl.col("units").sum().alias("sales"))
    top_k = max(1, math.ceil(TOP_ARTICLE_SHARE * (n_articles or overall["articles"])))
    top_sales = sales.get_column("sales").top_k(top_k).sum()
    cells = n_customers * n_articles

    summary["transactions"] = {
        "first_day": overall["first"].isoformat(),
        "last_day": overall["last"].isoformat(),
        "days": (overall["last"] - overall["first"]).days + 1,
        "active_customers": overall["customers"],
        "active_articles": overall["articles"],
        "pairs": overall["pairs"],
        "sparsity": 1.0 - overall["pairs"] / cells if cells else None,
        "per_customer": {
            "mean": float(per_customer.mean()),
            "median": float(per_customer.median()),
            "p90": float(per_customer.quantile(0.9, interpolation="linear")),
            "max": int(per_customer.max()),
        },
        "units": overall["units"],
        "top_1pct_articles": top_k,
        "top_1pct_share": top_sales / overall["units"] if overall["units"] else None,
        "repurchase_share": overall["repurchases"] / n_tx,
        "unknown_customers": overall["unknown_customers"],
        "unknown_articles": overall["unknown_articles"],
    }
    summary["top_values"] = _top_values(ds, sales)
    return summary


def _top_values(ds: Dataset, sales: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The most sold values of each categorical article feature (ties broken by value, for stable output)."""
    columns = [c for c in ds.feature_columns("articles", "categorical") if c in ds.articles.columns]
    if not columns:
        return {}
    joined = sales.join(ds.articles.select(ARTICLE_ID, *columns), on=ARTICLE_ID, how="inner")
    out: dict[str, list[dict[str, Any]]] = {}
    for col in columns:
        top = (
            joined.group_by(col)
            .agg(pl.col("sales").sum())
            .sort(["sales", col], descending=[True, False], nulls_last=True)
            .head(TOP_VALUES)
        )
        out[col] = [{"value": value, "sales": int(n)} for value, n in top.iter_rows()]
    return out


def render_description(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print a :func:`describe` summary as two rich tables (overview, then top values per feature)."""
    console = console or Console()
    rows = summary["rows"]
    overview = Table(title=f"Dataset {summary['name']}", show_header=False, title_justify="left")
    overview.add_column("what", style="bold")
    overview.add_column("value", justify="right")
    for table in ("customers", "articles", "transactions"):
        overview.add_row(f"{table}", f"{rows[table]:,}")
    tx = summary.get("transactions")
    if tx:
        pc = tx["per_customer"]
        sparsity = "n/a" if tx["sparsity"] is None else f"{tx['sparsity']:.4%}"
        top_share = "n/a" if tx["top_1pct_share"] is None else f"{tx['top_1pct_share']:.1%}"
        overview.add_row("dates", f"{tx['first_day']} .. {tx['last_day']} ({tx['days']:,} days)")
        overview.add_row(
            "customers / articles that transact", f"{tx['active_customers']:,} / {tx['active_articles']:,}"
        )
        overview.add_row("sparsity", sparsity)
        overview.add_row(
            "transactions per customer",
            f"mean {pc['mean']:.2f}, median {pc['median']:g}, p90 {pc['p90']:g}, max {pc['max']:,}",
        )
        overview.add_row(f"sales share of the top 1% ({tx['top_1pct_articles']:,} articles)", top_share)
        overview.add_row("repurchase share", f"{tx['repurchase_share']:.1%}")
        if tx["unknown_customers"] or tx["unknown_articles"]:
            overview.add_row(
                "transactions with unknown customer / article",
                f"[red]{tx['unknown_customers']:,} / {tx['unknown_articles']:,}[/red]",
            )
    else:
        overview.add_row("dates", "no transactions")
    console.print(overview)

    top_values = summary.get("top_values") or {}
    if top_values:
        tops = Table(title=f"Top {TOP_VALUES} values by sales", title_justify="left")
        tops.add_column("article feature", style="bold")
        tops.add_column("values (sales)")
        for col, values in top_values.items():
            shown = ", ".join(f"{'∅' if v['value'] is None else v['value']} ({v['sales']:,})" for v in values)
            tops.add_row(col, shown)
        console.print(tops)
