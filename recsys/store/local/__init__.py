"""The embedded backend: Delta Lake offline, SQLite online, FAISS vector index, file model registry."""

from __future__ import annotations

from recsys.store.local.feature_store import LocalFeatureStore
from recsys.store.local.registry import LocalModelRegistry

__all__ = ["LocalFeatureStore", "LocalModelRegistry"]
