"""The local feature store: creates and finds groups and views under ``RECSYS_HOME``.

A thin facade: metadata lives in small JSON files (see :mod:`recsys.store.local.files`), data in the group
objects. ``get_or_create_*`` refuses to return an existing group or view whose definition differs from the one
asked for, because silently reusing it would hide a changed pipeline; bump the version instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from recsys.store.base import FeatureStore, Query
from recsys.store.embedding import EmbeddingIndex
from recsys.store.errors import SchemaError, not_found
from recsys.store.local.feature_group import LocalFeatureGroup
from recsys.store.local.feature_view import LocalFeatureView
from recsys.store.local.files import Layout, atomic_write_json, read_json
from recsys.store.local.online import SqliteOnline
from recsys.store.local.query import LocalQuery
from recsys.store.schema import check_name


class LocalFeatureStore(FeatureStore):
    """Feature groups and views of the embedded backend rooted at ``home``."""

    def __init__(self, home: Path) -> None:
        self.layout = Layout(Path(home))
        self.online = SqliteOnline(self.layout.online_db)

    def get_or_create_feature_group(
        self,
        name: str,
        version: int,
        primary_key: Sequence[str],
        event_time: str | None = None,
        online_enabled: bool = False,
        description: str = "",
        embedding_index: EmbeddingIndex | None = None,
    ) -> LocalFeatureGroup:
        check_name(name, "feature group")
        _check_version(version)
        if not primary_key:
            raise SchemaError(f"feature group '{name}' v{version}: a primary key is required")
        folder = self.layout.group_dir(name, version)
        meta = {
            "name": name,
            "version": version,
            "primary_key": list(primary_key),
            "event_time": event_time,
            "online_enabled": online_enabled,
            "embedding_index": embedding_index.to_dict() if embedding_index else None,
        }
        if (folder / "group.json").is_file():
            group = LocalFeatureGroup.load(folder, self.online)
            stored = group.to_meta()
            differs = [key for key, value in meta.items() if stored[key] != value]
            if differs:
                raise SchemaError(
                    f"feature group '{name}' v{version} exists with different {differs} "
                    f"({', '.join(f'{k}={stored[k]!r}' for k in differs)}); create a new version instead"
                )
            return group
        group = LocalFeatureGroup(folder, {**meta, "description": description}, self.online)
        group.save_meta()
        return group

    def get_feature_group(self, name: str, version: int) -> LocalFeatureGroup:
        folder = self.layout.group_dir(name, version)
        if not (folder / "group.json").is_file():
            existing = [f"'{n}' v{v}" for n, v in self.layout.groups()]
            raise not_found("feature group", f"'{name}' v{version}", existing)
        return LocalFeatureGroup.load(folder, self.online)

    def get_feature_groups(self) -> list[LocalFeatureGroup]:
        """Every group version, sorted by name and version."""
        return [self.get_feature_group(name, version) for name, version in self.layout.groups()]

    def get_or_create_feature_view(
        self, name: str, version: int, query: Query, labels: Sequence[str] = ()
    ) -> LocalFeatureView:
        check_name(name, "feature view")
        _check_version(version)
        if not isinstance(query, LocalQuery):
            raise SchemaError("a local feature view needs a query built from local feature groups")
        view = LocalFeatureView(name, version, query, labels)
        path = self.layout.view_dir(name, version) / "view.json"
        definition = {"name": name, "version": version, "query": query.to_dict(), "labels": list(labels)}
        if path.is_file():
            stored = read_json(path)
            if stored != definition:
                raise SchemaError(
                    f"feature view '{name}' v{version} exists with a different query or labels; "
                    "create a new version instead"
                )
            return view
        atomic_write_json(path, definition)
        return view

    def get_feature_view(self, name: str, version: int) -> LocalFeatureView:
        path = self.layout.view_dir(name, version) / "view.json"
        if not path.is_file():
            existing = [f"'{n}' v{v}" for n, v in self.layout.views()]
            raise not_found("feature view", f"'{name}' v{version}", existing)
        stored = read_json(path)
        query = LocalQuery.from_dict(stored["query"], self.get_feature_group)
        return LocalFeatureView(name, version, query, stored["labels"])

    def get_feature_views(self) -> list[LocalFeatureView]:
        """Every view version, sorted by name and version."""
        return [self.get_feature_view(name, version) for name, version in self.layout.views()]


def _check_version(version: int) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SchemaError(f"versions are explicit positive integers, not {version!r}")
