"""The seam between the pipelines and wherever features and models live.

Small abstract interfaces named and shaped like the Hopsworks SDK (``hsfs`` / ``hsml``) so that the Hopsworks
adapter is a thin pass-through and the embedded backend feels the same. Pipelines receive these objects from
:func:`recsys.store.connect` and never branch on the backend. Frames are polars DataFrames everywhere.

Versions are always explicit: a feature group, feature view or model is identified by ``(name, version)``, so a
pipeline never reads "latest" by accident.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from recsys.store.embedding import EmbeddingIndex

TimeLike = datetime | date | str
JoinType = Literal["inner", "left"]
Direction = Literal["max", "min"]


class Query(ABC):
    """A selection of features from one group, optionally joined with other selections.

    When both sides have an event time the join is *point-in-time*: a row at time t sees the newest right-hand
    row whose event time is at or before t (the time from which that value is valid), never a value from its
    own future (design §3; the same rule as Hopsworks).
    """

    @abstractmethod
    def join(
        self,
        sub_query: Query,
        on: Sequence[str] | None = None,
        left_on: Sequence[str] | None = None,
        right_on: Sequence[str] | None = None,
        join_type: JoinType = "left",
        prefix: str | None = None,
    ) -> Query:
        """A new query with ``sub_query`` joined on ``on`` (default: the right group's primary key)."""

    @abstractmethod
    def read(self, online: bool = False) -> pl.DataFrame:
        """Execute the query on the offline store, or, for a selection from one online group with no join, read the
        selected columns of its online rows (cheaper than the whole row when the others hold lists)."""

    @property
    @abstractmethod
    def features(self) -> list[str]:
        """The output column names, in order."""


class FeatureGroup(ABC):
    """A versioned table of features with a primary key and, optionally, an event time.

    Every group lives in the offline store (full history); ``online_enabled`` groups also keep the latest row
    per primary key in the online store for low-latency serving.
    """

    name: str
    version: int
    primary_key: list[str]
    event_time: str | None
    online_enabled: bool
    description: str
    embedding_index: EmbeddingIndex | None

    @abstractmethod
    def insert(self, df: pl.DataFrame | Iterable[pl.DataFrame], overwrite: bool = False) -> None:
        """Validate ``df`` against the group's schema and upsert it on primary key + event time, atomically.

        ``overwrite=True`` replaces all rows (offline and online) instead: a backfill. ``df`` may also be an
        iterable of frames with keys disjoint across frames, streamed so that a table larger than memory can be
        written; on the embedded backend the chunks still land in one commit.
        """

    @abstractmethod
    def read(self, online: bool = False) -> pl.DataFrame:
        """All rows: the offline table, or the online table (latest row per primary key)."""

    @abstractmethod
    def select(self, features: Sequence[str]) -> Query:
        """A query over some of the group's columns."""

    @abstractmethod
    def select_all(self) -> Query:
        """A query over all of the group's columns."""

    def column_types(self, features: Sequence[str]) -> pl.Schema:
        """The stored types of ``features``: this default reads the columns, every row of them; a backend that
        keeps its schema overrides it to read none (a click checks its ids' types this way)."""
        return self.select(features).read().schema

    @abstractmethod
    def find_neighbors(
        self,
        embedding: Sequence[float] | np.ndarray,
        k: int = 10,
        filter: pl.Expr | None = None,
        exclude: Sequence[Any] | Sequence[Sequence[Any]] | None = None,
    ) -> pl.DataFrame:
        """The ``k`` rows whose vectors are closest to ``embedding`` (one vector or a 2-D batch).

        Returns a frame with columns ``query`` (row of the batch), the primary key and ``score``, best first
        within each query. ``exclude`` lists primary-key values never to return: one list for all queries or one
        list per query. ``filter`` keeps only rows matching a polars expression over the group's columns.
        """


class FeatureView(ABC):
    """A named, versioned query plus labels: what a model trains on and what serving reads online."""

    name: str
    version: int
    labels: list[str]

    @property
    @abstractmethod
    def query(self) -> Query:
        """The query the view was created from."""

    @abstractmethod
    def training_data(
        self, start_time: TimeLike | None = None, end_time: TimeLike | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Features and labels for rows with event time in ``[start_time, end_time)``."""

    @abstractmethod
    def train_test_split(
        self,
        test_start: TimeLike,
        test_end: TimeLike | None = None,
        train_start: TimeLike | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
        """``X_train, X_test, y_train, y_test`` split by event time: train before ``test_start``."""

    @abstractmethod
    def train_validation_test_split(
        self,
        validation_start: TimeLike,
        test_start: TimeLike,
        test_end: TimeLike | None = None,
        train_start: TimeLike | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
        """``X_train, X_val, X_test, y_train, y_val, y_test`` split by event time."""

    @abstractmethod
    def get_feature_vector(self, entry: Mapping[str, Any], allow_missing: bool = False) -> pl.DataFrame:
        """One row of features from the online store for the serving keys in ``entry``."""

    @abstractmethod
    def get_feature_vectors(
        self, entries: Sequence[Mapping[str, Any]] | pl.DataFrame, allow_missing: bool = False
    ) -> pl.DataFrame:
        """One row per entry, in order, read from the online store in one batched call."""

    def get_feature_rows(
        self, entries: Sequence[Mapping[str, Any]] | pl.DataFrame, allow_missing: bool = False
    ) -> list[dict[str, Any]]:
        """:meth:`get_feature_vectors` as one dict of Python values per entry (``DataFrame.to_dicts``'s values):
        for a request handler that reads a few rows field by field, a backend may skip building the frame."""
        return self.get_feature_vectors(entries, allow_missing).to_dicts()


class FeatureStore(ABC):
    """Creates and finds feature groups and feature views by explicit ``(name, version)``."""

    @abstractmethod
    def get_or_create_feature_group(
        self,
        name: str,
        version: int,
        primary_key: Sequence[str],
        event_time: str | None = None,
        online_enabled: bool = False,
        description: str = "",
        embedding_index: EmbeddingIndex | None = None,
    ) -> FeatureGroup:
        """The group ``name`` v``version``, created on first use."""

    @abstractmethod
    def get_feature_group(self, name: str, version: int) -> FeatureGroup:
        """An existing group; :class:`~recsys.store.errors.NotFoundError` lists the ones that exist."""

    @abstractmethod
    def get_or_create_feature_view(
        self, name: str, version: int, query: Query, labels: Sequence[str] = ()
    ) -> FeatureView:
        """The view ``name`` v``version``, created on first use."""

    @abstractmethod
    def get_feature_view(self, name: str, version: int) -> FeatureView:
        """An existing view; :class:`~recsys.store.errors.NotFoundError` lists the ones that exist."""


class Model(ABC):
    """A registered model version: artefacts plus the metadata that ties it to its run and training data."""

    name: str
    version: int | None
    metrics: dict[str, float]
    description: str
    run_id: str | None
    feature_view_name: str | None
    feature_view_version: int | None
    input_example: Any
    created_at: datetime | None
    framework: str

    @abstractmethod
    def save(self, path: str | Path) -> Model:
        """Register the artefacts at ``path`` (a file or a folder) as a new version; returns the saved model."""

    @abstractmethod
    def download(self) -> Path:
        """A local folder holding the artefacts."""


class ModelRegistry(ABC):
    """Stores model versions; versions are allocated atomically by :meth:`Model.save`."""

    @abstractmethod
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
    ) -> Model:
        """A model not yet saved; call :meth:`Model.save` with the artefacts to register it."""

    @abstractmethod
    def get_model(self, name: str, version: int) -> Model:
        """One version; :class:`~recsys.store.errors.NotFoundError` lists the versions that exist."""

    @abstractmethod
    def get_models(self, name: str) -> list[Model]:
        """All versions of ``name``, oldest first."""

    @abstractmethod
    def get_best_model(self, name: str, metric: str, direction: Direction = "max") -> Model:
        """The version with the highest (``max``) or lowest (``min``) value of ``metric``."""


@dataclass(frozen=True)
class Project:
    """What :func:`recsys.store.connect` returns: the feature store and the model registry of one backend.

    Mirrors ``hopsworks.login()``'s project object so code reads the same on both backends.
    """

    backend: str
    feature_store: FeatureStore
    model_registry: ModelRegistry

    def get_feature_store(self) -> FeatureStore:
        """The feature store (Hopsworks spelling)."""
        return self.feature_store

    def get_model_registry(self) -> ModelRegistry:
        """The model registry (Hopsworks spelling)."""
        return self.model_registry
