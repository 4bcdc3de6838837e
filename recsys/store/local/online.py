"""The online store: one SQLite database in WAL mode, one typed table per online feature group version.

Why SQLite: it ships with Python, a primary-key lookup is a B-tree probe measured in microseconds, and in WAL
mode readers in other processes (the serving transformers) keep reading the last committed snapshot while a
writer (the feature pipeline) commits. Each table keeps only the latest row per primary key; for groups with an
event time an older row never overwrites a newer one (``ON CONFLICT ... DO UPDATE ... WHERE newer``).

Layout: rowid tables with the primary key as a unique index, filled in key order. A row (history lists as JSON)
is ~700 bytes; clustered on the key (``WITHOUT ROWID``), H&M's 1.4M ``customer_history`` rows took 1.8x the disk
and were 3x slower to look up 100 at a time. Their replace took 99 s in hash order, 28 s in key order (23 s as a
rowid table).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from recsys.store.local import sqlite_codec

_MAX_PARAMS = 30_000  # below SQLite's default limit of 32,766 bound parameters per statement


class SqliteOnline:
    """Upserts and batched key lookups on ``db_path``; one read connection per thread, opened lazily."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._local = threading.local()

    def upsert(
        self,
        table: str,
        df: pl.DataFrame,
        primary_key: Sequence[str],
        event_time: str | None = None,
        replace: bool = False,
    ) -> None:
        """Write ``df`` (validated, normalised) in one transaction, keeping the newest row per key.

        ``replace`` recreates the table first, in the same transaction (an overwrite: readers never see it empty).
        """
        df = newest_per_key(df, primary_key, event_time)  # in key order: the index is appended to, not split
        columns = df.columns
        names = _names(columns)
        marks = ", ".join("?" for _ in columns)
        updates = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in columns if c not in primary_key)
        sql = f"INSERT INTO {_q(table)} ({names}) VALUES ({marks}) ON CONFLICT({_names(primary_key)}) DO "
        sql += f"UPDATE SET {updates}" if updates else "NOTHING"
        if event_time is not None and updates:
            sql += f" WHERE excluded.{_q(event_time)} >= {_q(table)}.{_q(event_time)}"
        rows = sqlite_codec.encode(df).iter_rows(buffer_size=100_000)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            if replace:  # dropped rather than emptied, so that a table made by an older layout gets this one
                conn.execute(f"DROP TABLE IF EXISTS {_q(table)}")
            self._create_table(conn, table, df.schema, primary_key)
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def fetch(
        self, table: str, key_names: Sequence[str], keys: Sequence[tuple], columns: Sequence[str]
    ) -> dict[tuple, tuple]:
        """Raw rows for the (SQLite-encoded) key tuples ``keys``, in one statement per 30k parameters.

        Returns ``{key tuple: row tuple of columns}``; missing keys are absent. Values are as SQLite stores them
        (see :mod:`recsys.store.local.sqlite_codec`); the caller decodes once for the whole result.
        """
        width = len(key_names)
        select = _names([*key_names, *columns])
        conn = self._reader()
        found: dict[tuple, tuple] = {}
        chunk = max(1, _MAX_PARAMS // width)
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            if width == 1:
                where = f"{_q(key_names[0])} IN ({', '.join('?' * len(part))})"
                params = [key[0] for key in part]
            else:
                row_marks = "(" + ", ".join("?" * width) + ")"
                where = f"({_names(key_names)}) IN (VALUES {', '.join([row_marks] * len(part))})"
                params = [value for key in part for value in key]
            for row in conn.execute(f"SELECT {select} FROM {_q(table)} WHERE {where}", params):
                found[row[:width]] = row[width:]
        return found

    def read_all(self, table: str, schema: pl.Schema, primary_key: Sequence[str]) -> pl.DataFrame:
        """The whole table in key order (empty with the right columns if it does not exist yet)."""
        if not self.has_table(table):
            return pl.DataFrame(schema=schema)
        raw_schema = {name: sqlite_codec.encoded_dtype(dtype) for name, dtype in schema.items()}
        sql = f"SELECT {_names(schema.names())} FROM {_q(table)} ORDER BY {_names(primary_key)}"
        rows = self._reader().execute(sql).fetchall()
        return sqlite_codec.decode(pl.DataFrame(rows, schema=raw_schema, orient="row"), schema)

    def count(self, table: str) -> int:
        """Number of rows (0 when the table does not exist)."""
        if not self.has_table(table):
            return 0
        return int(self._reader().execute(f"SELECT count(*) FROM {_q(table)}").fetchone()[0])

    def has_table(self, table: str) -> bool:
        if not self.db_path.exists():
            return False
        row = self._reader().execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,))
        return row.fetchone() is not None

    def _create_table(
        self, conn: sqlite3.Connection, table: str, schema: pl.Schema, primary_key: Sequence[str]
    ) -> None:
        cols = ", ".join(f"{_q(name)} {sqlite_codec.sqlite_type(dtype)}" for name, dtype in schema.items())
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_q(table)} ({cols}, PRIMARY KEY ({_names(primary_key)}))")

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn


def newest_per_key(df: pl.DataFrame, primary_key: Sequence[str], event_time: str | None) -> pl.DataFrame:
    """The newest row of each key (every row without ``event_time``), sorted by key.

    Sorts only the key columns and a row index, then gathers: the wide columns (lists) are moved once.
    """
    keys = [*primary_key, *([event_time] if event_time is not None else [])]
    order = df.select(keys).with_row_index("_row").sort(keys, maintain_order=True)  # ties: the later row wins
    if event_time is not None:
        order = order.unique(subset=list(primary_key), keep="last", maintain_order=True)
    return df[order.get_column("_row")]


def _q(name: str) -> str:
    """A quoted SQL identifier (names are checked lowercase identifiers, but may be keywords like ``when``)."""
    return f'"{name}"'


def _names(names: Sequence[str]) -> str:
    return ", ".join(_q(name) for name in names)
