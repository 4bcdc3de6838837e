"""The offline store: one Delta Lake table per feature group version.

Delta gives what a laptop feature store needs to keep data safe: each insert is a single commit to the
transaction log, written only after its Parquet files are complete, so a crash mid-insert leaves the table at its
previous version (the orphaned files are ignored); older versions stay readable for time travel and audits.

The first insert creates the table; later inserts MERGE on the group's key (primary key + event time): matched
rows are updated, new rows inserted. Re-running an insert is therefore idempotent. An overwrite (a backfill)
replaces every row in one commit, and the replaced version stays readable by time travel.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions

from recsys.store.errors import NotFoundError
from recsys.store.schema import listify

SLICE_ROWS = 4_000_000  # a new or replaced table is written in Parquet files of this many rows


class DeltaOffline:
    """Read and write the Delta table at ``path``; ``schema`` is the group's polars schema for read-back casts."""

    def __init__(self, path: Path, schema: pl.Schema | None = None) -> None:
        self.path = path
        self.schema = schema

    def version(self) -> int | None:
        """The latest committed table version, or ``None`` before the first commit."""
        table = self._table()
        return None if table is None else table.version()

    def write(self, df: pl.DataFrame, merge_key: Sequence[str], overwrite: bool = False) -> int:
        """Upsert ``df`` (already validated) in one commit, or replace the table with it; returns the new version."""
        if (overwrite or self._table() is None) and df.height > SLICE_ROWS:
            # slice by slice: Arrow copies one slice at a time, not the whole frame (H&M: 31M transactions, 2 GiB)
            version = self.write_chunks(df.iter_slices(SLICE_ROWS), merge_key, overwrite)
            assert version is not None
            return version
        frame = _to_delta(df)
        if overwrite or self._table() is None:
            frame.write_delta(str(self.path), mode="overwrite" if overwrite else "append")
        else:
            predicate = " AND ".join(f't."{key}" = s."{key}"' for key in merge_key)
            (
                frame.write_delta(
                    str(self.path),
                    mode="merge",
                    delta_merge_options={"predicate": predicate, "source_alias": "s", "target_alias": "t"},
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        return self._latest_version()

    def write_chunks(self, chunks: Iterator[pl.DataFrame], merge_key: Sequence[str], overwrite: bool) -> int | None:
        """Write validated chunks with disjoint keys in one commit; ``None`` when there is no chunk.

        A new table or an overwrite streams: each chunk becomes its own Parquet file as it arrives (only one chunk
        is in memory), and one Delta commit adds them all at the end — delta-rs' own writer keeps every batch of
        a stream in memory until it commits. A failure before the commit leaves the table as it was (the files
        written so far are not in the log); overwriting an existing table takes a delete commit first. An upsert
        into an existing table needs the whole source for its MERGE: the chunks are concatenated first.
        """
        first = next(chunks, None)
        if first is None:
            return None
        table = self._table()
        if not overwrite and table is not None:
            return self.write(pl.concat([first, *chunks]), merge_key)
        self.path.mkdir(parents=True, exist_ok=True)
        schema = _to_delta(first).to_arrow(compat_level=pl.CompatLevel.oldest()).schema
        actions = []
        for chunk in itertools.chain([first], chunks):
            data = _to_delta(chunk).to_arrow(compat_level=pl.CompatLevel.oldest()).cast(schema)
            name = f"part-{uuid.uuid4()}.snappy.parquet"
            pq.write_table(data, self.path / name, compression="snappy")
            stat = (self.path / name).stat()
            stats = json.dumps({"numRecords": data.num_rows})
            actions.append(AddAction(name, stat.st_size, {}, int(stat.st_mtime * 1000), True, stats))
        if table is None:
            create_table_with_add_actions(str(self.path), DeltaSchema.from_arrow(schema), actions, mode="append")
            return self._latest_version()
        # delta-rs adds files in a transaction but cannot remove them in the same one: an overwrite of an existing
        # table is a delete commit, then the add commit; if the add fails, the table is restored to before both.
        before = table.version()
        table.delete()
        try:
            table.create_write_transaction(actions, mode="append", schema=schema)
        except BaseException:
            DeltaTable(str(self.path)).restore(before)
            raise
        return self._latest_version()

    def _latest_version(self) -> int:
        version = self.version()
        assert version is not None
        return version

    def scan(self, as_of_version: int | None = None) -> pl.LazyFrame:
        """A lazy frame over the table (optionally as it was at ``as_of_version``), in the group's dtypes."""
        if self._table() is None:
            if self.schema is None:
                return pl.LazyFrame()
            return pl.LazyFrame(schema=self.schema)
        if as_of_version is not None:
            self._check_version(as_of_version)
        lazy = pl.scan_delta(str(self.path), version=as_of_version)
        return _from_delta(lazy, self.schema)

    def read(self, as_of_version: int | None = None) -> pl.DataFrame:
        """The whole table, optionally at an older version."""
        return self.scan(as_of_version).collect()

    def count(self) -> int:
        """Number of rows in the latest version."""
        if self._table() is None:
            return 0
        return int(pl.scan_delta(str(self.path)).select(pl.len()).collect().item())

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commit log, newest first: version, timestamp, operation, metrics."""
        table = self._table()
        return [] if table is None else table.history(limit)

    def _check_version(self, version: int) -> None:
        latest = self.version()
        if latest is None or not 0 <= version <= latest:
            have = "none" if latest is None else f"0..{latest}"
            raise NotFoundError(f"table version {version} of {self.path} not found; existing: {have}")

    def _table(self) -> DeltaTable | None:
        try:
            return DeltaTable(str(self.path))
        except TableNotFoundError:
            return None


def _to_delta(df: pl.DataFrame) -> pl.DataFrame:
    """Fixed-size arrays are stored as Delta lists (Delta has no fixed-size array type)."""
    casts = {name: listify(dtype) for name, dtype in df.schema.items() if listify(dtype) != dtype}
    return df.cast(casts) if casts else df


def _from_delta(lazy: pl.LazyFrame, schema: pl.Schema | None) -> pl.LazyFrame:
    if schema is None:
        return lazy
    have = lazy.collect_schema()
    casts = {name: dtype for name, dtype in schema.items() if name in have and have[name] != dtype}
    return lazy.cast(casts) if casts else lazy
