"""Purchases the site recorded (the shop's Buy, :func:`recsys.serving.actions.record_purchase`) beside the source.

They live in the ``purchases`` group, in the transactions columns, never in ``transactions``: that group is the
source data's, whose newest day the feature pipeline's incremental run and training's time split both start from.
A recorded purchase counts in its buyer's history (online, and in the snapshots the feature pipeline writes) until
the source data covers its day; from then on the source is the record of that day, the site's purchase included.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from recsys.data.dataset import T_DAT
from recsys.pipeline.groups import TRANSACTIONS, GroupDef
from recsys.store.base import FeatureStore
from recsys.store.errors import NotFoundError

PURCHASES = GroupDef(
    "purchases",
    1,
    TRANSACTIONS.primary_key,
    T_DAT,
    False,
    "Purchases the site recorded after the source data's newest day, in the transactions columns: read with the "
    "transactions for the buyer's history until the source data covers their day.",
)


def uncovered_purchases(fs: FeatureStore, newest: datetime) -> pl.DataFrame | None:
    """The recorded purchases after ``newest`` (the source data's newest day); ``None`` when none was recorded."""
    try:
        recorded = PURCHASES.get(fs).read()
    except NotFoundError:
        return None
    return recorded.filter(pl.col(T_DAT) > newest)
