"""The local model registry: ``<home>/models/<name>/<version>/`` holding the artefacts and a ``model.json``.

Versions are allocated atomically without a lock server: a save copies the artefacts and ``model.json`` into a
private staging folder, then renames it to ``<version>``. ``rename`` onto a folder that already holds another
save fails, so two concurrent saves can never get the same version; the loser simply tries the next number.
Readers never see a half-copied version because the folder appears in one step.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.store.base import Direction, FeatureView, Model, ModelRegistry
from recsys.store.errors import NotFoundError, SchemaError, StoreError, not_found
from recsys.store.local.files import atomic_write_json, read_json
from recsys.store.schema import check_name

MODEL_JSON = "model.json"


class LocalModel(Model):
    """A model version; before :meth:`save` it has no version and no artefacts."""

    def __init__(self, root: Path, meta: Mapping[str, Any]) -> None:
        self._root = root
        self.name = meta["name"]
        self.version = meta.get("version")
        self.metrics = {key: float(value) for key, value in (meta.get("metrics") or {}).items()}
        self.description = meta.get("description", "")
        self.run_id = meta.get("run_id")
        self.feature_view_name = meta.get("feature_view_name")
        self.feature_view_version = meta.get("feature_view_version")
        self.input_example = meta.get("input_example")
        created = meta.get("created_at")
        self.created_at = datetime.fromisoformat(created) if created else None
        self.framework = meta.get("framework", "python")

    @property
    def path(self) -> Path:
        """The version folder (only meaningful once saved)."""
        if self.version is None:
            raise StoreError(f"model '{self.name}' is not saved yet")
        return self._root / self.name / str(self.version)

    def to_meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "metrics": self.metrics,
            "description": self.description,
            "run_id": self.run_id,
            "feature_view_name": self.feature_view_name,
            "feature_view_version": self.feature_view_version,
            "input_example": self.input_example,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "framework": self.framework,
        }

    def save(self, path: str | Path) -> LocalModel:
        source = Path(path)
        if not source.exists():
            raise NotFoundError(f"model artefacts {source} not found")
        if self.version is not None and (self._root / self.name / str(self.version)).exists():
            raise StoreError(f"model '{self.name}' v{self.version} already exists")
        model_dir = self._root / self.name
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = model_dir / f".staging-{uuid.uuid4().hex}"
        try:
            _copy_artifacts(source, staging)
            self.created_at = datetime.now(UTC)
            explicit = self.version
            candidate = explicit or _next_version(model_dir)
            while True:
                self.version = candidate
                atomic_write_json(staging / MODEL_JSON, self.to_meta())
                try:
                    os.rename(staging, model_dir / str(candidate))
                    return self
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or explicit is not None:
                        self.version = explicit
                        raise StoreError(f"model '{self.name}' v{candidate} already exists") from exc
                    candidate = max(candidate + 1, _next_version(model_dir))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def download(self) -> Path:
        return self.path


class LocalModelRegistry(ModelRegistry):
    """Models of the embedded backend under ``<home>/models``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def create_model(
        self,
        name: str,
        metrics: Mapping[str, float] | None = None,
        description: str = "",
        feature_view: FeatureView | None = None,
        input_example: Any = None,
        run_id: str | None = None,
        framework: str = "python",
        version: int | None = None,
    ) -> LocalModel:
        check_name(name, "model")
        if version is not None and (not isinstance(version, int) or version < 1):
            raise SchemaError(f"model versions are positive integers, not {version!r}")
        meta = {
            "name": name,
            "version": version,
            "metrics": dict(metrics or {}),
            "description": description,
            "run_id": run_id,
            "feature_view_name": feature_view.name if feature_view else None,
            "feature_view_version": feature_view.version if feature_view else None,
            "input_example": _jsonable(input_example),
            "framework": framework,
        }
        return LocalModel(self.root, meta)

    def get_model(self, name: str, version: int) -> LocalModel:
        path = self.root / name / str(version) / MODEL_JSON
        if not path.is_file():
            versions = [str(v) for v in _versions(self.root / name)]
            if not versions:
                raise not_found("model", f"'{name}'", self.list_names())
            raise not_found(f"model '{name}'", f"version {version}", versions)
        return LocalModel(self.root, read_json(path))

    def get_models(self, name: str) -> list[LocalModel]:
        versions = _versions(self.root / name)
        if not versions:
            raise not_found("model", f"'{name}'", self.list_names())
        return [self.get_model(name, version) for version in versions]

    def get_best_model(self, name: str, metric: str, direction: Direction = "max") -> LocalModel:
        if direction not in ("max", "min"):
            raise SchemaError(f"direction must be 'max' or 'min', not {direction!r}")
        scored = [model for model in self.get_models(name) if metric in model.metrics]
        if not scored:
            raise NotFoundError(f"no version of model '{name}' has metric {metric!r}")
        pick = max if direction == "max" else min
        return pick(scored, key=lambda model: model.metrics[metric])

    def list_names(self) -> list[str]:
        """Every model name with at least one version."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _versions(p))


def _versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit() and (p / MODEL_JSON).is_file())


def _next_version(model_dir: Path) -> int:
    taken = [int(p.name) for p in model_dir.iterdir() if p.name.isdigit()]
    return max(taken, default=0) + 1


def _copy_artifacts(source: Path, staging: Path) -> None:
    if source.is_dir():
        if (source / MODEL_JSON).exists():
            raise SchemaError(f"{source} contains a {MODEL_JSON}; that name is reserved for the registry")
        shutil.copytree(source, staging)
    else:
        staging.mkdir()
        shutil.copy2(source, staging / source.name)


def _jsonable(value: Any) -> Any:
    """An input example as JSON: frames become lists of row dicts, arrays become lists."""
    if value is None:
        return None
    if isinstance(value, pl.DataFrame):
        return value.head(5).to_dicts()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "to_dict") and hasattr(value, "head"):  # pandas, without importing it
        return value.head(5).to_dict(orient="records")
    return value
