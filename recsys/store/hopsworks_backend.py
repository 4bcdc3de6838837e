"""The seam over the Hopsworks SDK: the same interfaces, passed through to ``hsfs`` / ``hsml``.

The SDK is imported only inside the functions that need it, so the local backend never pays for (or depends
on) the ``hopsworks`` extra. Every call uses explicit versions and waits for Hopsworks' materialisation jobs, so
an insert has landed when ``insert`` returns, as in the local backend.

Differences a user should know about (documented in the contract tests too):

* point-in-time joins: as in the local backend, the newest right-hand row with event time ``<=`` the left row's
  time; features carry the time from which they are valid (see ``recsys.store.local.query``).
* ``find_neighbors``: one SDK call per query vector; ``filter`` takes ``hsfs`` filter objects, not polars
  expressions; ``index_type``/``nlist``/``m``/``nprobe`` are decided by Hopsworks' OpenSearch k-NN.
* model run id and feature view are recorded in the model description (hsml has no free-form metadata), as a
  trailing ``[recsys] {json}`` that :class:`HopsworksModel` reads back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.config import Settings
from recsys.store.base import (
    Direction,
    FeatureGroup,
    FeatureStore,
    FeatureView,
    JoinType,
    Model,
    ModelRegistry,
    Project,
    Query,
    TimeLike,
)
from recsys.store.embedding import EmbeddingIndex, exclude_per_query
from recsys.store.errors import NotFoundError, SchemaError, StoreError, not_found
from recsys.store.schema import check_keys, check_name, normalize_frame

WRITE_OPTIONS = {"wait_for_job": True}
SIMILARITY = {"ip": "dot_product", "l2": "l2_norm", "cosine": "cosine"}
_TAG = " [recsys] "
# Offline (Hive) types whose polars type is plain: columns of other types are read for theirs.
_PLAIN_TYPES = {
    "string": pl.String,
    "bigint": pl.Int64,
    "int": pl.Int32,
    "smallint": pl.Int16,
    "tinyint": pl.Int8,
    "boolean": pl.Boolean,
    "double": pl.Float64,
    "float": pl.Float32,
}


def login_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments for ``hopsworks.login`` from the standard ``HOPSWORKS_*`` settings; the key stays secret."""
    kwargs: dict[str, Any] = {}
    if settings.hopsworks_host:
        kwargs["host"] = settings.hopsworks_host
    if settings.hopsworks_project:
        kwargs["project"] = settings.hopsworks_project
    if settings.hopsworks_api_key is not None:
        kwargs["api_key_value"] = settings.hopsworks_api_key.get_secret_value()
    return kwargs


def connect_hopsworks(settings: Settings) -> Project:
    """Log in and wrap the project's feature store and model registry."""
    if settings.hopsworks_api_key is None:
        raise StoreError("RECSYS_BACKEND=hopsworks needs HOPSWORKS_API_KEY (and usually HOPSWORKS_HOST)")
    try:
        import hopsworks
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreError("the hopsworks backend needs the extra: pip install 'recsys-fti[hopsworks]'") from exc
    project = hopsworks.login(**login_kwargs(settings))
    return Project(
        "hopsworks",
        HopsworksFeatureStore(project.get_feature_store()),
        HopsworksModelRegistry(project.get_model_registry()),
    )


def to_hsfs_embedding_index(config: EmbeddingIndex) -> Any:
    """An ``hsfs.embedding.EmbeddingIndex`` for our configuration (Hopsworks needs the dimension)."""
    from hsfs import embedding

    if config.dimension is None:
        raise SchemaError(f"Hopsworks needs the dimension of embedding column {config.column!r}")
    index = embedding.EmbeddingIndex()
    index.add_embedding(config.column, config.dimension, similarity_function_type=SIMILARITY[config.metric])
    return index


class HopsworksQuery(Query):
    """Wraps an ``hsfs`` query; tracks the output names (with join prefixes) itself."""

    def __init__(self, query: Any, features: Sequence[str]) -> None:
        self.sdk = query
        self._features = list(features)

    @property
    def features(self) -> list[str]:
        return list(self._features)

    def join(
        self,
        sub_query: Query,
        on: Sequence[str] | None = None,
        left_on: Sequence[str] | None = None,
        right_on: Sequence[str] | None = None,
        join_type: JoinType = "left",
        prefix: str | None = None,
    ) -> HopsworksQuery:
        if not isinstance(sub_query, HopsworksQuery):
            raise SchemaError("a Hopsworks query can only join another Hopsworks query")
        joined = self.sdk.join(
            sub_query.sdk,
            on=list(on) if on is not None else None,
            left_on=list(left_on) if left_on is not None else None,
            right_on=list(right_on) if right_on is not None else None,
            join_type=join_type,
            prefix=prefix,
        )
        names = [*self._features, *[f"{prefix or ''}{name}" for name in sub_query.features]]
        return HopsworksQuery(joined, names)

    def read(self, online: bool = False) -> pl.DataFrame:
        return self.sdk.read(online=online, dataframe_type="polars")


class HopsworksFeatureGroup(FeatureGroup):
    """Wraps an ``hsfs`` feature group."""

    def __init__(self, fg: Any, embedding_index: EmbeddingIndex | None = None) -> None:
        self.sdk = fg
        self.name = fg.name
        self.version = fg.version
        self.primary_key = list(fg.primary_key)
        self.event_time = fg.event_time
        self.online_enabled = bool(fg.online_enabled)
        self.description = fg.description or ""
        self.embedding_index = embedding_index

    def insert(self, df: pl.DataFrame | Iterable[pl.DataFrame], overwrite: bool = False) -> None:
        """Chunks become one SDK insert each (the first one overwriting): not atomic across chunks on Hopsworks."""
        key = [*self.primary_key, *([self.event_time] if self.event_time not in (None, *self.primary_key) else [])]
        for i, chunk in enumerate([df] if isinstance(df, pl.DataFrame) else df):
            check_keys(chunk, key, f"feature group '{self.name}' v{self.version}")
            self.sdk.insert(normalize_frame(chunk), overwrite=overwrite and i == 0, write_options=dict(WRITE_OPTIONS))

    def read(self, online: bool = False) -> pl.DataFrame:
        return self.sdk.read(online=online, dataframe_type="polars")

    def select(self, features: Sequence[str]) -> HopsworksQuery:
        return HopsworksQuery(self.sdk.select(list(features)), features)

    def select_all(self) -> HopsworksQuery:
        return HopsworksQuery(self.sdk.select_all(), [f.name for f in self.sdk.features])

    def column_types(self, features: Sequence[str]) -> pl.Schema:
        """From the SDK's feature types when they are plain (ids are), else read (the base class's way)."""
        offline = {f.name: str(f.type).lower() for f in self.sdk.features}
        unknown = [name for name in features if name not in offline]
        if unknown:
            raise SchemaError(
                f"feature group '{self.name}' v{self.version}: unknown feature(s) {unknown}; it has {list(offline)}",
                column=unknown[0],
            )
        types = {name: _PLAIN_TYPES.get(offline[name]) for name in features}
        if all(types.values()):
            return pl.Schema(types)
        return super().column_types(features)

    def find_neighbors(
        self,
        embedding: Sequence[float] | np.ndarray,
        k: int = 10,
        filter: Any = None,
        exclude: Sequence[Any] | Sequence[Sequence[Any]] | None = None,
    ) -> pl.DataFrame:
        if isinstance(filter, pl.Expr):
            raise SchemaError("on Hopsworks, find_neighbors filters are hsfs filters (fg.feature == value)")
        queries = np.atleast_2d(np.asarray(embedding, dtype=np.float32))
        banned = exclude_per_query(exclude, len(queries)) or [[] for _ in queries]
        key = self.primary_key[0]
        names = [f.name for f in self.sdk.features]
        frames = []
        for i, vector in enumerate(queries):
            skip = set(banned[i])
            hits = self.sdk.find_neighbors(vector.tolist(), k=k + len(skip), filter=filter)
            rows = [(score, values[names.index(key)]) for score, values in hits]
            rows = [row for row in rows if row[1] not in skip][:k]
            frames.append(
                pl.DataFrame(
                    {"query": [i] * len(rows), key: [r[1] for r in rows], "score": [float(r[0]) for r in rows]},
                    schema_overrides={"query": pl.Int64, "score": pl.Float32},
                )
            )
        return pl.concat(frames) if frames else pl.DataFrame()


class HopsworksFeatureView(FeatureView):
    """Wraps an ``hsfs`` feature view; frames come back as polars."""

    def __init__(self, fv: Any, query: HopsworksQuery | None = None) -> None:
        self.sdk = fv
        self.name = fv.name
        self.version = fv.version
        self.labels = list(fv.labels or [])
        self._query = query
        self._serving_ready = False

    @property
    def query(self) -> HopsworksQuery:
        if self._query is None:
            query = self.sdk.query
            self._query = HopsworksQuery(query, [f.name for f in query.features])
        return self._query

    def _features(self, frame: pl.DataFrame) -> pl.DataFrame:
        wanted = [name for name in self.query.features if name not in self.labels and name in frame.columns]
        return frame.select(wanted) if wanted else frame

    def _labels(self, frame: pl.DataFrame | None) -> pl.DataFrame | None:
        return frame if self.labels else None

    def training_data(
        self, start_time: TimeLike | None = None, end_time: TimeLike | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        x, y = self.sdk.training_data(**_read_kwargs(start_time=start_time, end_time=end_time))
        return self._features(x), self._labels(y)

    def train_test_split(
        self,
        test_start: TimeLike,
        test_end: TimeLike | None = None,
        train_start: TimeLike | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
        x_train, x_test, y_train, y_test = self.sdk.train_test_split(
            **_read_kwargs(train_start=train_start, train_end=test_start, test_start=test_start, test_end=test_end)
        )
        return self._features(x_train), self._features(x_test), self._labels(y_train), self._labels(y_test)

    def train_validation_test_split(
        self,
        validation_start: TimeLike,
        test_start: TimeLike,
        test_end: TimeLike | None = None,
        train_start: TimeLike | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
        parts = self.sdk.train_validation_test_split(
            **_read_kwargs(
                train_start=train_start,
                train_end=validation_start,
                validation_start=validation_start,
                validation_end=test_start,
                test_start=test_start,
                test_end=test_end,
            )
        )
        x_train, x_val, x_test, y_train, y_val, y_test = parts
        xs = [self._features(x) for x in (x_train, x_val, x_test)]
        ys = [self._labels(y) for y in (y_train, y_val, y_test)]
        return xs[0], xs[1], xs[2], ys[0], ys[1], ys[2]

    def _init_serving(self) -> None:
        if not self._serving_ready:
            self.sdk.init_serving()
            self._serving_ready = True

    def get_feature_vector(self, entry: Mapping[str, Any], allow_missing: bool = False) -> pl.DataFrame:
        self._init_serving()
        return self.sdk.get_feature_vector(entry=dict(entry), return_type="polars", allow_missing=allow_missing)

    def get_feature_vectors(
        self, entries: Sequence[Mapping[str, Any]] | pl.DataFrame, allow_missing: bool = False
    ) -> pl.DataFrame:
        self._init_serving()
        rows = entries.to_dicts() if isinstance(entries, pl.DataFrame) else [dict(e) for e in entries]
        return self.sdk.get_feature_vectors(entry=rows, return_type="polars", allow_missing=allow_missing)


def _read_kwargs(**bounds: TimeLike | None) -> dict[str, Any]:
    """Keyword arguments for the SDK's training-data reads: bounds given, polars frames, keys and times kept."""
    kwargs: dict[str, Any] = {name: value for name, value in bounds.items() if value is not None}
    kwargs.update(dataframe_type="polars", primary_key=True, event_time=True)
    return kwargs


class HopsworksFeatureStore(FeatureStore):
    """Wraps an ``hsfs`` feature store."""

    def __init__(self, fs: Any) -> None:
        self.sdk = fs

    def get_or_create_feature_group(
        self,
        name: str,
        version: int,
        primary_key: Sequence[str],
        event_time: str | None = None,
        online_enabled: bool = False,
        description: str = "",
        embedding_index: EmbeddingIndex | None = None,
    ) -> HopsworksFeatureGroup:
        check_name(name, "feature group")
        fg = self.sdk.get_or_create_feature_group(
            name=name,
            version=version,
            primary_key=list(primary_key),
            event_time=event_time,
            online_enabled=online_enabled,
            description=description,
            embedding_index=to_hsfs_embedding_index(embedding_index) if embedding_index else None,
        )
        return HopsworksFeatureGroup(fg, embedding_index)

    def get_feature_group(self, name: str, version: int) -> HopsworksFeatureGroup:
        try:
            fg = self.sdk.get_feature_group(name, version=version)
        except Exception:  # the SDK raises RestAPIError / FeatureStoreException for unknown names
            fg = None
        if fg is None:
            existing = [f"'{g.name}' v{g.version}" for g in self.sdk.get_feature_groups()]
            raise not_found("feature group", f"'{name}' v{version}", existing)
        return HopsworksFeatureGroup(fg, _embedding_config(fg))

    def get_or_create_feature_view(
        self, name: str, version: int, query: Query, labels: Sequence[str] = ()
    ) -> HopsworksFeatureView:
        if not isinstance(query, HopsworksQuery):
            raise SchemaError("a Hopsworks feature view needs a query built from Hopsworks feature groups")
        fv = self.sdk.get_or_create_feature_view(name=name, query=query.sdk, version=version, labels=list(labels))
        return HopsworksFeatureView(fv, query)

    def get_feature_view(self, name: str, version: int) -> HopsworksFeatureView:
        try:
            fv = self.sdk.get_feature_view(name, version=version)
        except Exception:  # unknown name or version
            fv = None
        if fv is None:
            try:
                existing = [f"'{v.name}' v{v.version}" for v in self.sdk.get_feature_views(name)]
            except Exception:
                existing = []
            raise not_found("feature view", f"'{name}' v{version}", existing)
        return HopsworksFeatureView(fv)


def _embedding_config(fg: Any) -> EmbeddingIndex | None:
    index = getattr(fg, "embedding_index", None)
    if index is None:
        return None
    features = index.get_embeddings()
    if not features:
        return None
    first = next(iter(features))
    inverse = {value: key for key, value in SIMILARITY.items()}
    metric = inverse.get(str(first.similarity_function_type), "ip")
    return EmbeddingIndex(column=first.name, dimension=first.dimension, metric=metric)  # type: ignore[arg-type]


def describe(description: str, run_id: str | None, feature_view: FeatureView | None) -> str:
    """The description stored in Hopsworks, with our metadata appended as JSON."""
    extra = {
        "run_id": run_id,
        "feature_view_name": feature_view.name if feature_view else None,
        "feature_view_version": feature_view.version if feature_view else None,
    }
    return f"{description}{_TAG}{json.dumps(extra)}"


def parse_description(text: str | None) -> tuple[str, dict[str, Any]]:
    """Inverse of :func:`describe`: the human description and our metadata."""
    text = text or ""
    if _TAG not in text:
        return text, {}
    human, _, tail = text.rpartition(_TAG)
    try:
        return human, json.loads(tail)
    except json.JSONDecodeError:
        return text, {}


class HopsworksModel(Model):
    """Wraps an ``hsml`` model."""

    def __init__(self, model: Any, input_example: Any = None) -> None:
        self.sdk = model
        self._sync(input_example)

    def _sync(self, input_example: Any = None) -> None:
        model = self.sdk
        self.name = model.name
        self.version = model.version
        self.metrics = {k: float(v) for k, v in (model.training_metrics or {}).items()}
        self.description, extra = parse_description(model.description)
        self.run_id = extra.get("run_id")
        self.feature_view_name = extra.get("feature_view_name")
        self.feature_view_version = extra.get("feature_view_version")
        self.input_example = input_example if input_example is not None else model.input_example
        created = model.created
        if isinstance(created, int | float):
            created = datetime.fromtimestamp(created / 1000)
        self.created_at = created if isinstance(created, datetime) else None
        self.framework = str(model.framework or "python").lower()

    def save(self, path: str | Path) -> HopsworksModel:
        saved = self.sdk.save(str(path))
        self.sdk = saved or self.sdk
        self._sync(self.input_example)
        return self

    def download(self) -> Path:
        return Path(self.sdk.download())


FRAMEWORKS = ("python", "tensorflow", "sklearn", "torch")


class HopsworksModelRegistry(ModelRegistry):
    """Wraps an ``hsml`` model registry."""

    def __init__(self, mr: Any) -> None:
        self.sdk = mr

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
    ) -> HopsworksModel:
        check_name(name, "model")
        # CatBoost and other libraries without an hsml flavour are registered as plain python models.
        flavour = getattr(self.sdk, framework if framework in FRAMEWORKS else "python")
        example = input_example.to_pandas() if isinstance(input_example, pl.DataFrame) else input_example
        model = flavour.create_model(
            name=name,
            version=version,
            metrics=dict(metrics or {}),
            description=describe(description, run_id, feature_view),
            input_example=example,
            feature_view=feature_view.sdk if isinstance(feature_view, HopsworksFeatureView) else None,
        )
        return HopsworksModel(model, input_example)

    def get_model(self, name: str, version: int) -> HopsworksModel:
        try:
            model = self.sdk.get_model(name, version=version)
        except Exception:
            model = None
        if model is None:
            versions = [str(m.version) for m in self._models(name)]
            raise not_found(f"model '{name}'", f"version {version}", versions)
        return HopsworksModel(model)

    def get_models(self, name: str) -> list[HopsworksModel]:
        models = self._models(name)
        if not models:
            raise NotFoundError(f"model '{name}' not found in the Hopsworks model registry")
        return sorted((HopsworksModel(m) for m in models), key=lambda m: m.version or 0)

    def get_best_model(self, name: str, metric: str, direction: Direction = "max") -> HopsworksModel:
        model = self.sdk.get_best_model(name, metric, direction)
        if model is None:
            raise NotFoundError(f"no version of model '{name}' has metric {metric!r}")
        return HopsworksModel(model)

    def _models(self, name: str) -> list[Any]:
        try:
            return list(self.sdk.get_models(name) or [])
        except Exception:
            return []
