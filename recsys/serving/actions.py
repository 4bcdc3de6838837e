"""What a customer does on the site, written back to the feature store: purchases (and clicks).

:func:`record_purchase` appends the purchase to the ``transactions`` group (offline) and writes the customer's
recomputed ``customer_history`` row — offline and online — so the very next request sees it: the bought
article is filtered out, and the query tower reads the new history. The history is computed by the feature
pipeline's own function (:func:`~recsys.features.customer_history.customer_history_as_of`) over the customer's
stored purchases, as of the day after the newest one: the same row the pipeline's next run would write.

Cost: the store's query interface has no row filter, so the stored transactions are read whole (the customer's
rows and the market price level need them): fine for a demo or the ``small`` preset, seconds at H&M scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT
from recsys.errors import RecsysError
from recsys.features.common import MISSING, cutoff
from recsys.features.customer_history import AS_OF, customer_history_as_of, market_prices
from recsys.features.transactions import month_features
from recsys.pipeline.groups import CUSTOMER_HISTORY, TRANSACTIONS, GroupDef
from recsys.pipeline.views import ARTICLES_VIEW
from recsys.serving.requests import utc_now
from recsys.store.base import Project

CLICKS = GroupDef(
    "clicks", 1, ("customer_id", "article_id", "clicked_at"), "clicked_at", False, "Articles a customer clicked on."
)
VALUES = "_values"


class ActionError(RecsysError):
    """An action that cannot be recorded (e.g. an article the catalogue does not have)."""


@dataclass(frozen=True)
class Purchase:
    """What :func:`record_purchase` wrote."""

    customer_id: str | int
    article_id: int | str
    day: datetime
    quantity: int
    history_as_of: datetime
    n_purchases: int


def record_purchase(
    project: Project,
    customer_id: str | int,
    article_id: int | str,
    when: datetime | None = None,
    *,
    quantity: int = 1,
    price: float | None = None,
    n_last: int = 20,
    extra: Mapping[str, Any] | None = None,
) -> Purchase:
    """Append a purchase and refresh the customer's history online (see the module docstring).

    ``when`` defaults to now (naive UTC); purchases are counted per day, so a second purchase of the same article
    on the same day adds to that day's quantity. ``extra`` gives values for other transaction columns (e.g. a
    sales channel); those not given are null (``MISSING`` for categories). ``n_last`` must be the feature
    pipeline's history length.
    """
    if quantity < 1:
        raise ActionError(f"quantity must be at least 1, got {quantity}")
    fs = project.feature_store
    day = cutoff(when or utc_now())
    articles = fs.get_feature_view(*ARTICLES_VIEW)
    known = articles.get_feature_vectors([{ARTICLE_ID: article_id}], allow_missing=True)
    if known.select(pl.all_horizontal(pl.exclude(ARTICLE_ID).is_null())).item():  # the store had no row
        raise ActionError(f"article {article_id!r} is not in the catalogue (the articles feature group)")

    tx_group = TRANSACTIONS.get(fs)
    stored = tx_group.select_all().read()
    row = _transaction_row(stored, customer_id, article_id, day, quantity, price, extra or {})
    tx_group.insert(row)

    everything = pl.concat(
        [stored.join(row.select(TRANSACTIONS.primary_key), on=list(TRANSACTIONS.primary_key), how="anti"), row]
    )
    mine = everything.filter(pl.col(CUSTOMER_ID) == customer_id)
    bought = mine.get_column(ARTICLE_ID).unique().to_list()
    catalogue = articles.get_feature_vectors([{ARTICLE_ID: a} for a in bought], allow_missing=True)
    history_group = CUSTOMER_HISTORY.get(fs)
    columns = history_group.select_all().features
    affinity = [c[: -len(VALUES)] for c in columns if c.endswith(VALUES) and c[: -len(VALUES)] in catalogue.columns]
    as_of = mine.get_column(T_DAT).max() + timedelta(days=1)
    history = customer_history_as_of(
        mine, catalogue, as_of, n_last=n_last, affinity_columns=affinity, market=market_prices(everything)
    )
    history_group.insert(history.select(columns))
    return Purchase(
        customer_id,
        article_id,
        day,
        int(row.get_column(QUANTITY).item()),
        history.get_column(AS_OF).item(),
        int(history.get_column("n_purchases").item()),
    )


def _transaction_row(
    stored: pl.DataFrame,
    customer_id: str | int,
    article_id: int | str,
    day: datetime,
    quantity: int,
    price: float | None,
    extra: Mapping[str, Any],
) -> pl.DataFrame:
    """The day's row for (customer, article) in the stored schema, added to a row already stored that day."""
    schema = stored.schema
    same = stored.filter(
        (pl.col(CUSTOMER_ID) == customer_id) & (pl.col(ARTICLE_ID) == article_id) & (pl.col(T_DAT) == day)
    )
    values: dict[str, Any] = {name: (MISSING if dtype == pl.String else None) for name, dtype in schema.items()}
    unknown = [k for k in extra if k not in schema]
    if unknown:
        raise ActionError(f"unknown transaction column(s) {unknown}; the transactions group has {list(schema)}")
    values |= dict(extra)
    values |= {CUSTOMER_ID: customer_id, ARTICLE_ID: article_id, T_DAT: day, QUANTITY: quantity, PRICE: price}
    if same.height:  # add to the day's purchase: quantity summed, price the mean per unit of the priced units
        before = same.row(0, named=True)
        values |= {k: v for k, v in before.items() if k not in (QUANTITY, PRICE)}
        values[QUANTITY] = before[QUANTITY] + quantity
        prices = [(p, q) for p, q in ((before[PRICE], before[QUANTITY]), (price, quantity)) if p is not None]
        values[PRICE] = sum(p * q for p, q in prices) / sum(q for _, q in prices) if prices else None
    row = pl.DataFrame([values], schema=schema)
    context = [e for e in month_features(pl.col(T_DAT)) if e.meta.output_name() in schema]
    return row.with_columns(context).with_columns(pl.col(c).cast(schema[c]) for c in row.columns)


def record_click(project: Project, customer_id: str | int, article_id: int | str, when: datetime | None = None) -> None:
    """Append a click to the offline ``clicks`` group (what a customer looked at; not a feature yet)."""
    row = pl.DataFrame(
        {CUSTOMER_ID: [customer_id], ARTICLE_ID: [article_id], "clicked_at": [when or utc_now()]},
        schema_overrides={"clicked_at": pl.Datetime("us")},
    )
    CLICKS.get_or_create(project.feature_store).insert(row)
