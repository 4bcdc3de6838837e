"""Where the embedded backend keeps things under ``RECSYS_HOME``, and how small JSON files are written safely.

Layout::

    <home>/feature_store/groups/<name>/v<version>/group.json     metadata: schema, keys, online, index config
    <home>/feature_store/groups/<name>/v<version>/offline/       the Delta Lake table
    <home>/feature_store/groups/<name>/v<version>/index/         FAISS index generations + CURRENT pointer
    <home>/feature_store/views/<name>/v<version>/view.json       a feature view: query + labels
    <home>/feature_store/online.db                               SQLite (WAL): one table per online group
    <home>/models/<name>/<version>/                              artefacts + model.json

Metadata files are replaced atomically (write a temporary file, fsync, ``os.replace``), so a crash leaves either
the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_VERSION_DIR = re.compile(r"^v(\d+)$")


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """Parse a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Layout:
    """Paths of the embedded backend under one home folder."""

    home: Path

    @property
    def feature_store(self) -> Path:
        return self.home / "feature_store"

    @property
    def online_db(self) -> Path:
        return self.feature_store / "online.db"

    @property
    def models(self) -> Path:
        return self.home / "models"

    def group_dir(self, name: str, version: int) -> Path:
        return self.feature_store / "groups" / name / f"v{version}"

    def view_dir(self, name: str, version: int) -> Path:
        return self.feature_store / "views" / name / f"v{version}"

    def groups(self) -> list[tuple[str, int]]:
        """Every ``(name, version)`` that has metadata, sorted."""
        return _versions(self.feature_store / "groups", "group.json")

    def views(self) -> list[tuple[str, int]]:
        """Every feature view ``(name, version)``, sorted."""
        return _versions(self.feature_store / "views", "view.json")


def _versions(root: Path, marker: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    if not root.is_dir():
        return found
    for name_dir in root.iterdir():
        if not name_dir.is_dir():
            continue
        for version_dir in name_dir.iterdir():
            match = _VERSION_DIR.match(version_dir.name)
            if match and (version_dir / marker).is_file():
                found.append((name_dir.name, int(match.group(1))))
    return sorted(found)
