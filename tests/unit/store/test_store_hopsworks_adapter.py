"""The Hopsworks adapter against the SDK's real classes, without a cluster.

Calls go to ``unittest.mock.create_autospec`` objects built from the installed ``hsfs`` / ``hsml`` classes, so a
keyword the SDK does not accept fails here exactly as it would against a cluster. Queries and embedding indexes
are the SDK's own objects, constructed offline.
"""

from __future__ import annotations

from datetime import datetime
from unittest.mock import create_autospec

import numpy as np
import polars as pl
import pytest

pytest.importorskip("hopsworks")

import hopsworks
import hopsworks_common.connection
from hsfs import embedding, feature, feature_group, feature_store, feature_view
from hsfs.constructor.query import Query as SdkQuery
from hsml import model as hsml_model
from hsml import model_registry
from hsml.python import signature as python_signature

from recsys.config import load_settings
from recsys.store import EmbeddingIndex, NotFoundError, SchemaError, ValidationError
from recsys.store import hopsworks_backend as hb


@pytest.fixture
def python_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``hopsworks.login()`` sets; lets SDK objects be built offline (the SDK's own tests do the same)."""
    monkeypatch.setattr(hopsworks_common.connection, "_hsfs_engine_type", "python")


def sdk_group(name: str, pk: list[str], features: list[tuple[str, str]], event_time: str | None = None):
    return feature_group.FeatureGroup(
        name=name,
        version=1,
        featurestore_id=1,
        partition_key=[],
        primary_key=pk,
        event_time=event_time,
        online_enabled=True,
        features=[feature.Feature(n, t) for n, t in features],
    )


def test_login_arguments_come_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOPSWORKS_API_KEY", "secret-key")
    monkeypatch.setenv("HOPSWORKS_HOST", "c.app.hopsworks.ai")
    monkeypatch.setenv("HOPSWORKS_PROJECT", "recsys")
    kwargs = hb.login_kwargs(load_settings())
    assert kwargs == {"host": "c.app.hopsworks.ai", "project": "recsys", "api_key_value": "secret-key"}
    hopsworks_login = create_autospec(hopsworks.login)
    hopsworks_login(**kwargs)  # the real signature accepts exactly these


def test_embedding_index_is_the_sdks_object() -> None:
    index = hb.to_hsfs_embedding_index(EmbeddingIndex("embedding", 64, metric="ip"))
    assert isinstance(index, embedding.EmbeddingIndex)
    emb = index.get_embedding("embedding")
    assert emb.dimension == 64 and str(emb.similarity_function_type) == "dot_product"


def test_feature_group_calls_match_the_sdk(python_engine: None) -> None:
    fs = create_autospec(feature_store.FeatureStore, instance=True)
    fg = create_autospec(feature_group.FeatureGroup, instance=True)
    fg.name, fg.version, fg.primary_key, fg.event_time = "candidate_embeddings", 1, ["article_id"], None
    fg.online_enabled, fg.description = True, ""
    fg.features = [feature.Feature("article_id", "bigint"), feature.Feature("embedding", "array<float>")]
    fs.get_or_create_feature_group.return_value = fg
    store = hb.HopsworksFeatureStore(fs)
    group = store.get_or_create_feature_group(
        "candidate_embeddings", 1, ["article_id"], online_enabled=True, embedding_index=EmbeddingIndex(dimension=2)
    )
    kwargs = fs.get_or_create_feature_group.call_args.kwargs
    assert kwargs["version"] == 1 and isinstance(kwargs["embedding_index"], embedding.EmbeddingIndex)

    group.insert(pl.DataFrame({"article_id": [1, 2], "embedding": [[0.1, 0.2], [0.3, 0.4]]}))
    assert fg.insert.call_args.kwargs["write_options"] == {"wait_for_job": True}
    with pytest.raises(ValidationError):
        group.insert(pl.DataFrame({"article_id": [1, 1], "embedding": [[0.1, 0.2], [0.3, 0.4]]}))
    assert fg.insert.call_count == 1  # the bad frame never reached the SDK
    chunks = [pl.DataFrame({"article_id": [i], "embedding": [[0.1, 0.2]]}) for i in (3, 4)]
    group.insert(iter(chunks), overwrite=True)
    assert [c.kwargs["overwrite"] for c in fg.insert.call_args_list[1:]] == [True, False]  # only the first clears

    group.read(online=True)
    fg.read.assert_called_with(online=True, dataframe_type="polars")
    fg.find_neighbors.return_value = [(0.9, [5, [0.0, 1.0]]), (0.8, [7, [1.0, 0.0]]), (0.1, [9, [0.0, 0.0]])]
    got = group.find_neighbors(np.array([[0.0, 1.0]]), k=2, exclude=[5])
    assert got["article_id"].to_list() == [7, 9]
    assert fg.find_neighbors.call_args.kwargs["k"] == 3  # over-fetch by the number of exclusions


def test_unknown_group_lists_existing(python_engine: None) -> None:
    fs = create_autospec(feature_store.FeatureStore, instance=True)
    fs.get_feature_group.side_effect = RuntimeError("not found")
    existing = create_autospec(feature_group.FeatureGroup, instance=True)
    existing.name, existing.version = "customers", 2
    fs.get_feature_groups.return_value = [existing]
    with pytest.raises(NotFoundError, match="'customers' v2"):
        hb.HopsworksFeatureStore(fs).get_feature_group("customers", 1)


def test_queries_are_real_sdk_queries_with_prefixes(python_engine: None) -> None:
    customers = sdk_group("customers", ["customer_id"], [("customer_id", "string"), ("age", "bigint")])
    history = sdk_group(
        "customer_history",
        ["customer_id"],
        [("customer_id", "string"), ("as_of", "timestamp"), ("n", "bigint")],
        event_time="as_of",
    )
    group = hb.HopsworksFeatureGroup(customers)
    query = group.select(["customer_id", "age"]).join(
        hb.HopsworksFeatureGroup(history).select(["n"]), on=["customer_id"], join_type="inner", prefix="h_"
    )
    assert isinstance(query.sdk, SdkQuery)
    assert query.features == ["customer_id", "age", "h_n"]
    join = query.sdk._joins[0]
    assert join._prefix == "h_" and join._join_type == "INNER" and [f.name for f in join._on] == ["customer_id"]


def test_column_types_of_plain_features_read_no_rows(python_engine: None, monkeypatch: pytest.MonkeyPatch) -> None:
    tx = sdk_group(
        "transactions",
        ["customer_id"],
        [("customer_id", "string"), ("article_id", "bigint"), ("t_dat", "timestamp")],
        event_time="t_dat",
    )
    group = hb.HopsworksFeatureGroup(tx)
    read = create_autospec(SdkQuery.read, return_value=pl.DataFrame({"t_dat": [datetime(2020, 1, 1)]}))
    monkeypatch.setattr(SdkQuery, "read", read)
    ids = pl.Schema({"customer_id": pl.String, "article_id": pl.Int64})
    assert group.column_types(["customer_id", "article_id"]) == ids
    read.assert_not_called()
    assert group.column_types(["t_dat"]) == pl.Schema({"t_dat": pl.Datetime("us")})  # not a plain type: read
    read.assert_called_once()
    with pytest.raises(SchemaError, match=r"unknown feature\(s\) \['nope'\]"):
        group.column_types(["nope"])


def test_feature_view_calls_match_the_sdk(python_engine: None) -> None:
    fs = create_autospec(feature_store.FeatureStore, instance=True)
    fv = create_autospec(feature_view.FeatureView, instance=True)
    fv.name, fv.version, fv.labels = "retrieval", 1, ["price"]
    fs.get_or_create_feature_view.return_value = fv
    customers = sdk_group("customers", ["customer_id"], [("customer_id", "string"), ("price", "double")])
    query = hb.HopsworksFeatureGroup(customers).select(["customer_id", "price"])
    view = hb.HopsworksFeatureStore(fs).get_or_create_feature_view("retrieval", 1, query, labels=["price"])
    assert fs.get_or_create_feature_view.call_args.kwargs["query"] is query.sdk

    x = pl.DataFrame({"customer_id": ["a"], "extra_pk": [1]})
    y = pl.DataFrame({"price": [1.0]})
    fv.train_validation_test_split.return_value = (x, x, x, y, y, y)
    x_train, _, _, y_train, _, _ = view.train_validation_test_split("2020-09-01", "2020-09-08")
    kwargs = fv.train_validation_test_split.call_args.kwargs
    assert kwargs["train_end"] == kwargs["validation_start"] == "2020-09-01"
    assert kwargs["validation_end"] == kwargs["test_start"] == "2020-09-08"
    assert "test_end" not in kwargs and kwargs["dataframe_type"] == "polars"
    assert x_train.columns == ["customer_id"] and y_train is y
    fv.train_test_split.return_value = (x, x, y, y)
    view.train_test_split("2020-09-08", train_start="2020-01-01")
    assert fv.train_test_split.call_args.kwargs["train_end"] == "2020-09-08"
    fv.training_data.return_value = (x, y)
    view.training_data(end_time="2020-09-08")

    view.get_feature_vectors([{"customer_id": "a"}])
    fv.init_serving.assert_called_once()
    assert fv.get_feature_vectors.call_args.kwargs["return_type"] == "polars"
    view.get_feature_vector({"customer_id": "a"}, allow_missing=True)
    assert fv.get_feature_vector.call_args.kwargs == {
        "entry": {"customer_id": "a"},
        "return_type": "polars",
        "allow_missing": True,
    }


def test_model_registry_calls_match_the_sdk() -> None:
    mr = create_autospec(model_registry.ModelRegistry, instance=True)
    mr.python = create_autospec(python_signature, instance=False)
    sdk_model = create_autospec(hsml_model.Model, instance=True)
    mr.python.create_model.return_value = sdk_model
    sdk_view = create_autospec(feature_view.FeatureView, instance=True)
    sdk_view.name, sdk_view.version, sdk_view.labels = "ranking", 3, []
    view = hb.HopsworksFeatureView(sdk_view)
    registry = hb.HopsworksModelRegistry(mr)
    registry.create_model(
        "ranker", metrics={"map12": 0.1}, description="cb", feature_view=view, run_id="r7", framework="catboost"
    )
    kwargs = mr.python.create_model.call_args.kwargs
    assert kwargs["metrics"] == {"map12": 0.1} and kwargs["feature_view"] is sdk_view
    description, extra = hb.parse_description(kwargs["description"])
    assert description == "cb" and extra == {"run_id": "r7", "feature_view_name": "ranking", "feature_view_version": 3}
    mr.get_best_model.return_value = None
    with pytest.raises(NotFoundError):
        registry.get_best_model("ranker", "map12", "max")
    mr.get_best_model.assert_called_with("ranker", "map12", "max")


def test_a_selection_reads_online_through_the_sdk_query(python_engine: None, monkeypatch: pytest.MonkeyPatch) -> None:
    history = sdk_group("customer_history", ["customer_id"], [("customer_id", "string"), ("n", "bigint")])
    read = create_autospec(SdkQuery.read, return_value=pl.DataFrame({"customer_id": ["c1"]}))
    monkeypatch.setattr(SdkQuery, "read", read)
    hb.HopsworksFeatureGroup(history).select(["customer_id"]).read(online=True)
    assert read.call_args.kwargs == {"online": True, "dataframe_type": "polars"}
