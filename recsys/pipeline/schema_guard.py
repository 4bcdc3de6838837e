"""Refuse a feature run whose groups would not fit the stored ones, before it writes any of them.

A group's schema is fixed by its first insert and every insert is checked against it, but a run writes its groups
one after another: with an edited spec (a feature dropped or added, an id type changed, another data set) the
first group whose columns changed failed only after the groups before it were overwritten, leaving a store that
mixed two data sets. So every group a run will write is compared with the stored one first, from schemas alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from recsys.pipeline.groups import GroupDef
from recsys.store.base import FeatureStore
from recsys.store.errors import NotFoundError, SchemaError
from recsys.store.schema import schema_changes

# What to do instead: groups are versioned by constants in recsys.pipeline.groups, so a run cannot pick another
# version; another data set (or spec) needs a store of its own.
BACKFILL_FIX = (
    "backfill this data set into a fresh store (--home NEW_FOLDER; on Hopsworks another project), "
    "or go back to the spec the store was written with"
)
INCREMENTAL_FIX = (
    "run incremental with the spec the store was backfilled with, "
    "or backfill this data set into a fresh store (--home NEW_FOLDER; on Hopsworks another project)"
)


def stored_schema(fs: FeatureStore, group: GroupDef) -> pl.Schema | None:
    """The schema ``group`` was first written with; ``None`` while it has none (not created, or never written)."""
    try:
        fg = group.get(fs)
        return fg.column_types(fg.select_all().features)  # the group's metadata on the embedded store: no rows read
    except (NotFoundError, SchemaError):
        return None


def check_fits(fs: FeatureStore, schemas: Mapping[GroupDef, pl.Schema], fix: str) -> None:
    """:class:`SchemaError` naming every group in ``schemas`` whose stored schema differs, and ``fix``."""
    problems = []
    for group, schema in schemas.items():
        stored = stored_schema(fs, group)
        changes = [] if stored is None else schema_changes(schema, stored)
        if changes:
            problems.append(f"feature group '{group.name}' v{group.version}: {', '.join(changes)}")
    if problems:
        raise SchemaError(
            f"the data set does not fit the stored feature groups ({'; '.join(problems)}); nothing was written: {fix}"
        )
