"""What the demo reads from the feature store and writes back to it.

Reads are for display only — the choice of customers (never hard-coded: they come from the store, so the demo
works on any dataset), a customer's recent purchases, article fields and prices — and the form of a new
customer (which features the served query tower accepts). Writes are what a shopper does: a purchase goes through
:func:`recsys.serving.actions.record_purchase`, which updates the online history at once, so the next answer of
the endpoint already leaves the article out; a click goes to the ``clicks`` group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID
from recsys.errors import RecsysError
from recsys.features.article_popularity import ARTICLE_PRICE
from recsys.features.customer_history import LAST_ARTICLES
from recsys.features.customers import AGE
from recsys.pipeline.groups import CUSTOMER_HISTORY, CUSTOMERS
from recsys.pipeline.views import ARTICLES_VIEW, CUSTOMERS_VIEW, RANKING_VIEW
from recsys.serving.actions import Purchase, record_click, record_purchase
from recsys.store.base import Project

INDEX_GROUP = "index_group_name"  # H&M's top level (Ladieswear, Menswear, ...): the cold-start form offers it
LAST_PURCHASE = "last_purchase"


@dataclass(frozen=True)
class NewCustomerForm:
    """What a new (unknown) customer may tell the endpoint: the inputs the served query tower reads."""

    age: bool  # the tower reads a numeric age
    index_groups: list[str]  # values offered as preferred index groups (empty: the tower does not read them)


class Shop:
    """The feature-store side of the demo for one project (see the module docstring)."""

    def __init__(self, project: Project, n_last: int | None = None) -> None:
        self.project = project
        self.fs = project.feature_store
        self.n_last = n_last  # the history's list length; None: the stored histories' (record_purchase reads it)

    @cached_property
    def _customers(self) -> Any:
        return self.fs.get_feature_view(*CUSTOMERS_VIEW)

    @cached_property
    def _articles(self) -> Any:
        return self.fs.get_feature_view(*ARTICLES_VIEW)

    @cached_property
    def _ranking(self) -> Any:  # the articles' fields again, with popularity and the price level
        return self.fs.get_feature_view(*RANKING_VIEW)

    # -- customers -------------------------------------------------------------------------------------------

    @cached_property
    def id_dtype(self) -> pl.DataType:
        """The store's customer id type: typed ids are converted to it (a string "42" is not the integer 42)."""
        return CUSTOMERS.get(self.fs).select([CUSTOMER_ID]).read().schema[CUSTOMER_ID]

    @cached_property
    def active_customers(self) -> pl.Series:
        """Ids of customers with at least one purchase (a history row), sorted.

        One column of the offline history: the online table has the same customers, but reading it decodes every
        row's lists (20-28 s for H&M's 1.4M customers, against ~2 s).
        """
        history = CUSTOMER_HISTORY.get(self.fs).select([CUSTOMER_ID]).read()
        return history.get_column(CUSTOMER_ID).unique().sort()

    def random_active_customer(self, rng: np.random.Generator) -> str | int:
        ids = self.active_customers
        if ids.is_empty():
            raise RecsysError("the store has no customer with purchases yet: run the feature pipeline (make demo)")
        return ids[int(rng.integers(ids.len()))]

    def parse_customer_id(self, text: str) -> str | int:
        """A typed id in the store's id type; a clear error when the store's ids are numbers and this is not."""
        text = text.strip()
        if not text:
            raise RecsysError("type a customer id")
        if self.id_dtype.is_integer():
            try:
                return int(text)
            except ValueError:
                raise RecsysError(f"customer ids are integers in this store, got {text!r}") from None
        return text

    def new_customer_id(self, rng: np.random.Generator) -> str | int:
        """An id the store does not have: a negative number or ``new-<hex>`` (the id type of the store)."""
        if self.id_dtype.is_integer():
            return -int(rng.integers(1, 2**31))
        return f"new-{rng.integers(16**8):08x}"

    def customer_row(self, customer_id: str | int) -> dict[str, Any] | None:
        """The customers view's online row (attributes + latest history), ``None`` if the store has neither."""
        row = self._customers.get_feature_vector({CUSTOMER_ID: customer_id}, allow_missing=True).row(0, named=True)
        known = any(value is not None for name, value in row.items() if name != CUSTOMER_ID)
        return row if known else None

    def recent_purchases(self, customer_id: str | int, n: int = 8) -> pl.DataFrame:
        """The last ``n`` articles the customer bought (newest first) with their display fields and price."""
        row = self.customer_row(customer_id)
        ids = list((row or {}).get(LAST_ARTICLES) or [])[:n]
        return self.articles(ids)

    # -- articles --------------------------------------------------------------------------------------------

    def articles(self, ids: Sequence[Any]) -> pl.DataFrame:
        """One row per id, in order: the articles view's online fields and ``article_price`` (the mean price paid
        per unit, as the ranker reads it; null if unknown)."""
        keys = [{ARTICLE_ID: a} for a in ids] or [{ARTICLE_ID: -1}]  # the store refuses an empty batch
        rows = self._ranking.get_feature_vectors(keys, allow_missing=True)
        shown = {ARTICLE_ID, *self._articles.query.features, ARTICLE_PRICE}
        rows = rows.select(c for c in rows.columns if c in shown)
        return rows if ids else rows.clear()

    def price_of(self, article_id: Any) -> float | None:
        return self.articles([article_id]).get_column(ARTICLE_PRICE)[0]

    def new_customer_form(self, accepted: dict[str, str]) -> NewCustomerForm:
        """The cold-start inputs ``accepted`` (feature name → kind, from the served query tower) allows."""
        groups: list[str] = []
        if accepted.get(INDEX_GROUP) == "list":
            catalogue = self._articles.query.read()
            if INDEX_GROUP in catalogue.columns:
                groups = catalogue.get_column(INDEX_GROUP).drop_nulls().unique().sort().to_list()
        return NewCustomerForm(age=accepted.get(AGE) == "numeric", index_groups=groups)

    # -- actions ---------------------------------------------------------------------------------------------

    def buy(self, customer_id: str | int, article_id: Any) -> Purchase:
        """Record a purchase at today's price; the customer's online history is updated before this returns."""
        return record_purchase(
            self.project, customer_id, article_id, price=self.price_of(article_id), n_last=self.n_last
        )

    def click(self, customer_id: str | int, article_id: Any) -> None:
        record_click(self.project, customer_id, article_id)
