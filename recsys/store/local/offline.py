"""The offline store: one Delta Lake table per feature group version.

Delta gives what a laptop feature store needs to keep data safe: each insert is a single commit to the
transaction log, written only after its Parquet files are complete, so a crash mid-insert leaves the table at its
previous version (the orphaned files are ignored); older versions stay readable for time travel and audits.

The first insert creates the table; later inserts MERGE on the group's key (primary key + event time): matched
rows are updated, new rows inserted. Re-running an insert is therefore idempotent. An overwrite (a backfill)
replaces every row in one commit, and the replaced version stays readable by time travel.

A MERGE scans and joins the whole target table, which at H&M scale (13M history snapshots with lists) takes more
memory than a laptop has. A daily insert of a group with an event time usually holds only rows newer than every
stored row: no key can match, so the MERGE would only insert. Such an insert is an append commit instead, which
reads nothing but the stored event-time column's maximum. Re-running it (after a crash) is a MERGE again, because
its rows are then no longer newer than the table: idempotence holds.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
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

    def write(
        self, df: pl.DataFrame, merge_key: Sequence[str], overwrite: bool = False, event_time: str | None = None
    ) -> int:
        """Upsert ``df`` (already validated) in one commit, or replace the table with it; returns the new version.

        With ``event_time`` (the last column of ``merge_key``), rows all newer than the table's newest are appended.
        """
        table = self._table()
        if overwrite or table is None or self._all_newer(df, event_time):
            if df.height > SLICE_ROWS:
                # slice by slice: Arrow copies one slice at a time, not the whole frame (H&M: 31M transactions, 2 GiB)
                return self._stream(df.iter_slices(SLICE_ROWS), overwrite)
            _to_delta(df).write_delta(str(self.path), mode="overwrite" if overwrite else "append")
            return self._latest_version()
        predicate = " AND ".join(f't."{key}" = s."{key}"' for key in merge_key)
        (
            _to_delta(df)
            .write_delta(
                str(self.path),
                mode="merge",
                delta_merge_options={"predicate": predicate, "source_alias": "s", "target_alias": "t"},
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        return self._latest_version()

    def write_chunks(
        self,
        chunks: Iterator[pl.DataFrame],
        merge_key: Sequence[str],
        overwrite: bool,
        event_time: str | None = None,
    ) -> int | None:
        """Write validated chunks with disjoint keys in one commit; ``None`` when there is no chunk.

        A new table, an overwrite or an append streams: each chunk becomes its own Parquet file as it arrives
        (only one chunk is in memory), and one Delta commit adds them all at the end — delta-rs' own writer keeps
        every batch of a stream in memory until it commits. A failure before the commit leaves the table as it
        was (the files written so far are not in the log); overwriting an existing table takes a delete commit
        first. An upsert into an existing table needs the whole source for its MERGE (or to know that every row
        is newer, for an append): the chunks are concatenated first.
        """
        first = next(chunks, None)
        if first is None:
            return None
        if not overwrite and self._table() is not None:
            return self.write(pl.concat([first, *chunks]), merge_key, event_time=event_time)
        return self._stream(itertools.chain([first], chunks), overwrite)

    def _stream(self, chunks: Iterator[pl.DataFrame], overwrite: bool) -> int:
        """Each chunk one Parquet file, then one commit that creates, replaces or appends to the table."""
        table = self._table()
        self.path.mkdir(parents=True, exist_ok=True)
        first = next(chunks)
        schema = _to_delta(first).to_arrow(compat_level=pl.CompatLevel.oldest()).schema
        actions = [self._parquet_file(chunk, schema) for chunk in itertools.chain([first], chunks)]
        if table is None:
            create_table_with_add_actions(str(self.path), DeltaSchema.from_arrow(schema), actions, mode="append")
            return self._latest_version()
        if not overwrite:
            table.create_write_transaction(actions, mode="append", schema=schema)
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

    def _parquet_file(self, chunk: pl.DataFrame, schema: pa.Schema) -> AddAction:
        """Write one chunk as a Parquet file of the table (not yet committed)."""
        data = _to_delta(chunk).to_arrow(compat_level=pl.CompatLevel.oldest()).cast(schema)
        name = f"part-{uuid.uuid4()}.snappy.parquet"
        pq.write_table(data, self.path / name, compression="snappy")
        stat = (self.path / name).stat()
        stats = json.dumps({"numRecords": data.num_rows})
        return AddAction(name, stat.st_size, {}, int(stat.st_mtime * 1000), True, stats)

    def _all_newer(self, df: pl.DataFrame, event_time: str | None) -> bool:
        """Whether every row of ``df`` has an event time after every stored row's (so no key can match)."""
        if event_time is None or df.height == 0:
            return False
        newest = self.scan().select(pl.col(event_time).max()).collect().item()
        return newest is None or df.get_column(event_time).min() > newest

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
