"""The feature store seam: one call picks the backend, pipelines never branch on it.

>>> project = connect(load_settings())          # RECSYS_BACKEND=local (default) or hopsworks
>>> fs, mr = project.feature_store, project.model_registry

The local backend keeps everything under ``RECSYS_HOME``; the Hopsworks backend imports the SDK only when chosen.
"""

from __future__ import annotations

from recsys.config import Settings
from recsys.store.base import FeatureGroup, FeatureStore, FeatureView, Model, ModelRegistry, Project, Query
from recsys.store.embedding import EmbeddingIndex
from recsys.store.errors import NotFoundError, SchemaError, StoreError, ValidationError

__all__ = [
    "EmbeddingIndex",
    "FeatureGroup",
    "FeatureStore",
    "FeatureView",
    "Model",
    "ModelRegistry",
    "NotFoundError",
    "Project",
    "Query",
    "SchemaError",
    "StoreError",
    "ValidationError",
    "connect",
]


def connect(settings: Settings) -> Project:
    """The feature store and model registry of ``settings.backend``."""
    if settings.backend == "hopsworks":
        from recsys.store.hopsworks_backend import connect_hopsworks

        return connect_hopsworks(settings)
    from recsys.store.local import LocalFeatureStore, LocalModelRegistry

    home = settings.home
    return Project("local", LocalFeatureStore(home), LocalModelRegistry(home / "models"))
