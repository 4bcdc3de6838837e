"""The length of the last-purchases list (``n_last``) that the stored ``customer_history`` was written with.

An incremental run with another ``n_last`` than the backfill's would give the customers who buy again lists of
another length than everyone else's, so it is refused (:func:`check_n_last`). Nothing needs to record the value:
the rows show it. A history row holds a customer's last ``min(n_purchases, n_last)`` purchases, so a row with more
purchases than list items was cut at ``n_last`` exactly; where no row was cut, any ``n_last`` at least as long as
the longest list would have written the same rows. The customer with the most purchases has the row cut first, so
one online row answers, found from the stored transactions that the incremental run reads anyway: one keyed read
through the customers view on either backend, not a scan of the history, and stores written before this check are
checked alike. The shop's :func:`~recsys.serving.actions.record_purchase` writes its buyers' rows with the
stored value too.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from recsys.data.dataset import CUSTOMER_ID
from recsys.errors import DataError
from recsys.features.customer_history import LAST_ARTICLES
from recsys.pipeline.groups import CUSTOMER_HISTORY
from recsys.pipeline.views import CUSTOMERS_VIEW
from recsys.store.base import FeatureStore
from recsys.store.errors import NotFoundError

N_PURCHASES = "n_purchases"
N_LAST = 20  # the default length of the last-purchases list


@dataclass(frozen=True)
class StoredLength:
    """What the stored rows say about ``n_last``: exactly ``length`` when a list was cut, else at least it."""

    length: int
    exact: bool

    def allows(self, n_last: int) -> bool:
        """Whether ``n_last`` would have written the stored rows."""
        return n_last == self.length if self.exact else n_last >= self.length


def stored_length(fs: FeatureStore, transactions: pl.DataFrame) -> StoredLength | None:
    """The stored history's ``n_last`` (:class:`StoredLength`), read from the online row of the customer with the
    most rows in ``transactions`` (the stored daily purchases); ``None`` when there is no such row to read."""
    if transactions.height == 0:
        return None
    top = transactions.get_column(CUSTOMER_ID).value_counts(sort=True).item(0, CUSTOMER_ID)
    try:
        view = fs.get_feature_view(*CUSTOMERS_VIEW)
    except NotFoundError:  # a run stopped before it created the views; its rerun writes the history whole anyway
        return None
    row = view.get_feature_vectors([{CUSTOMER_ID: top}], allow_missing=True).row(0, named=True)
    items, purchases = row.get(LAST_ARTICLES), row.get(N_PURCHASES)
    if items is None or purchases is None:
        return None
    return StoredLength(len(items), exact=purchases > len(items))


def check_n_last(fs: FeatureStore, transactions: pl.DataFrame, n_last: int) -> None:
    """Refuse an ``n_last`` that would not have written the stored history (a :class:`DataError`, one line)."""
    stored = stored_length(fs, transactions)
    if stored is None or stored.allows(n_last):
        return
    group = f"{CUSTOMER_HISTORY.name} v{CUSTOMER_HISTORY.version}"
    if stored.exact:
        what, fix = f"differs from the stored {group}'s n_last, {stored.length}", f"pass --n-last {stored.length}"
    else:
        what = f"is shorter than the stored {group}'s longest list ({stored.length} purchases, so n_last >= it)"
        fix = f"pass --n-last {stored.length} or more"
    raise DataError(
        f"--n-last {n_last} {what}: the customers buying again would get lists of another length than the rest; "
        f"{fix} (the backfill's), or run `python -m feature_pipeline backfill --n-last {n_last}` to change it"
    )
