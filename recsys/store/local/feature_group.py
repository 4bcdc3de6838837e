"""A local feature group: Delta offline table, optional SQLite online table, optional FAISS index.

An insert is validated first (nothing is written if it fails), then committed to Delta in one atomic commit, then
mirrored to the online table, then the vector index is rebuilt. Delta is the source of truth: if the process dies
after the Delta commit, re-running the same insert is a no-op merge offline and repairs the online table and the
index; the index also notices on load that it is older than the table and rebuilds itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.store.base import FeatureGroup
from recsys.store.embedding import EmbeddingIndex, exclude_per_query
from recsys.store.errors import NotFoundError, SchemaError
from recsys.store.local import vector_index
from recsys.store.local.files import atomic_write_json, read_json
from recsys.store.local.offline import DeltaOffline
from recsys.store.local.online import SqliteOnline, newest_per_key
from recsys.store.local.query import LocalQuery
from recsys.store.schema import check_new_schema, schema_from_json, schema_to_json, validate_frame


class LocalFeatureGroup(FeatureGroup):
    """One ``(name, version)`` of a feature group under ``folder``."""

    def __init__(self, folder: Path, meta: dict[str, Any], online_store: SqliteOnline) -> None:
        self.folder = folder
        self.name = meta["name"]
        self.version = int(meta["version"])
        self.primary_key = list(meta["primary_key"])
        self.event_time = meta.get("event_time")
        self.online_enabled = bool(meta.get("online_enabled", False))
        self.description = meta.get("description", "")
        index = meta.get("embedding_index")
        self.embedding_index = EmbeddingIndex.from_dict(index) if index else None
        self.created_at = meta.get("created_at")
        self.schema: pl.Schema | None = schema_from_json(meta["schema"]) if meta.get("schema") else None
        self._online_store = online_store
        self._index: vector_index.LoadedIndex | None = None
        self._pointer_seen: tuple[int, int, int] | None = None  # the CURRENT file behind self._index

    # -- metadata ----------------------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        return f"'{self.name}' v{self.version}"

    @property
    def merge_key(self) -> list[str]:
        """Offline rows are unique on primary key + event time."""
        key = list(self.primary_key)
        if self.event_time and self.event_time not in key:
            key.append(self.event_time)
        return key

    @property
    def online_table(self) -> str:
        return f"{self.name}__v{self.version}"

    @property
    def offline(self) -> DeltaOffline:
        return DeltaOffline(self.folder / "offline", self.schema)

    def to_meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "primary_key": self.primary_key,
            "event_time": self.event_time,
            "online_enabled": self.online_enabled,
            "description": self.description,
            "embedding_index": self.embedding_index.to_dict() if self.embedding_index else None,
            "schema": schema_to_json(self.schema) if self.schema is not None else None,
            "created_at": self.created_at or datetime.now(UTC).isoformat(),
        }

    def save_meta(self) -> None:
        atomic_write_json(self.folder / "group.json", self.to_meta())

    @classmethod
    def load(cls, folder: Path, online_store: SqliteOnline) -> LocalFeatureGroup:
        return cls(folder, read_json(folder / "group.json"), online_store)

    def require_schema(self) -> pl.Schema:
        if self.schema is None:
            raise SchemaError(f"feature group {self.label} has no schema yet: insert data first")
        return self.schema

    # -- writing -----------------------------------------------------------------------------------------------

    def insert(self, df: pl.DataFrame | Iterable[pl.DataFrame], overwrite: bool = False) -> None:
        fresh = self.schema is None
        try:
            if isinstance(df, pl.DataFrame):
                clean = self._validated(df)
                table_version = self.offline.write(clean, self.merge_key, overwrite, self.event_time)
                latest = [self._latest(clean)] if self.online_enabled else []
            else:
                latest = []
                stream = self._stream(df, latest)
                table_version = self.offline.write_chunks(stream, self.merge_key, overwrite, self.event_time)
                if table_version is None:  # no chunk at all: nothing to write
                    return
        except BaseException:
            if fresh:  # the schema is fixed only by an insert that lands
                self.schema = None
            raise
        if fresh:
            self.save_meta()
        if self.online_enabled:
            rows = pl.concat(latest) if latest else self.offline.read().head(0)
            self._online_store.upsert(self.online_table, rows, self.primary_key, self.event_time, replace=overwrite)
        if self.embedding_index is not None:
            self._index = self._build_index(table_version)

    def _validated(self, df: pl.DataFrame) -> pl.DataFrame:
        if self.schema is None:
            schema = check_new_schema(df, self.primary_key, self.event_time, f"feature group {self.label}")
            self._check_embedding_column(schema)
            self.schema = schema
        clean = validate_frame(df, self.schema, self.merge_key, f"feature group {self.label}")
        if self.embedding_index is not None:
            vector_index.as_matrix(clean[self.embedding_index.column], self.embedding_index.dimension)
        return clean

    def _stream(self, chunks: Iterable[pl.DataFrame], latest: list[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """Validated chunks; keeps each chunk's newest row per key for the online table (a small fraction)."""
        for chunk in chunks:
            clean = self._validated(chunk)
            if self.online_enabled:
                latest.append(self._latest(clean))
            yield clean

    def _latest(self, df: pl.DataFrame) -> pl.DataFrame:
        return df if self.event_time is None else newest_per_key(df, self.primary_key, self.event_time)

    def _check_embedding_column(self, schema: pl.Schema) -> None:
        config = self.embedding_index
        if config is None:
            return
        dtype = schema.get(config.column)
        if not isinstance(dtype, pl.List | pl.Array) or not dtype.inner.is_float():
            raise SchemaError(
                f"feature group {self.label}: embedding column {config.column!r} must be a list/array of floats, "
                f"not {dtype}",
                column=config.column,
            )
        if len(self.primary_key) != 1:
            raise SchemaError(f"feature group {self.label}: an embedding index needs a one-column primary key")

    # -- reading -----------------------------------------------------------------------------------------------

    def scan(self, as_of_version: int | None = None) -> pl.LazyFrame:
        """Lazy offline rows (optionally at an older Delta version)."""
        return self.offline.scan(as_of_version)

    def read(self, online: bool = False, as_of_version: int | None = None) -> pl.DataFrame:
        """Offline rows (optionally time-travelled to Delta ``as_of_version``), or the online table."""
        if online:
            return self.read_online(self.require_schema().names())
        return self.offline.read(as_of_version)

    def read_online(self, features: Sequence[str]) -> pl.DataFrame:
        """The online table's ``features`` columns, in key order."""
        if not self.online_enabled:
            raise NotFoundError(f"feature group {self.label} is not online-enabled")
        schema = self.require_schema()
        return self._online_store.read_all(
            self.online_table, pl.Schema({n: schema[n] for n in features}), self.primary_key
        )

    def select(self, features: Sequence[str]) -> LocalQuery:
        return LocalQuery(self, list(features))

    def select_all(self) -> LocalQuery:
        return LocalQuery(self, list(self.require_schema().names()))

    def column_types(self, features: Sequence[str]) -> pl.Schema:
        schema = self.require_schema()  # the group's metadata: no table read
        return pl.Schema({name: schema[name] for name in self.select(features).features})  # unknown: SchemaError

    def commit_details(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Delta commit history, newest first (like ``hsfs`` ``commit_details``)."""
        return self.offline.history(limit)

    def count(self, online: bool = False) -> int:
        """Number of rows offline (latest version) or online."""
        if online:
            return self._online_store.count(self.online_table) if self.online_enabled else 0
        return self.offline.count()

    # -- vector search -----------------------------------------------------------------------------------------

    def find_neighbors(
        self,
        embedding: Sequence[float] | np.ndarray,
        k: int = 10,
        filter: pl.Expr | None = None,
        exclude: Sequence[Any] | Sequence[Sequence[Any]] | None = None,
    ) -> pl.DataFrame:
        index = self._loaded_index()
        queries = np.atleast_2d(np.asarray(embedding, dtype=np.float32))
        if queries.shape[1] != index.index.d:
            raise SchemaError(f"query vectors have dimension {queries.shape[1]}, the index has {index.index.d}")
        allowed = None
        if filter is not None:
            allowed = self.offline.scan().filter(filter).select(self.primary_key[0]).collect().to_series()
        return index.search(queries, k, exclude_per_query(exclude, len(queries)), allowed)

    def _loaded_index(self) -> vector_index.LoadedIndex:
        if self.embedding_index is None:
            raise NotFoundError(f"feature group {self.label} has no embedding index")
        folder = self.folder / "index"
        # one stat per search while the pointer file is the one read last (a build replaces it: new inode)
        seen = vector_index.pointer_stamp(folder)
        if self._index is not None and seen is not None and seen == self._pointer_seen:
            return self._index
        pointer = vector_index.current_generation(folder)
        if self._index is not None and pointer and pointer["generation"] == self._index.generation:
            self._pointer_seen = seen
            return self._index
        self._pointer_seen = None
        table_version = self.offline.version()
        if table_version is None:
            raise NotFoundError(f"feature group {self.label} has no rows to search: insert data first")
        if pointer is None or pointer["source_version"] != table_version:
            self._index = self._build_index(table_version)
        else:
            self._index = vector_index.load(folder)
        assert self._index is not None
        return self._index

    def _build_index(self, table_version: int) -> vector_index.LoadedIndex:
        config = self.embedding_index
        assert config is not None
        key = self.primary_key[0]
        rows = self.offline.scan(table_version)
        if self.event_time:
            rows = rows.sort(self.event_time).unique(subset=[key], keep="last")
        frame = rows.select(key, config.column).sort(key).collect()
        matrix = vector_index.as_matrix(frame[config.column], config.dimension)
        return vector_index.build(self.folder / "index", matrix, frame[key], config, table_version)
