"""Behaviour every feature store backend must have; each test runs once per backend (see conftest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recsys.store import EmbeddingIndex, NotFoundError, Project, SchemaError, ValidationError

D = datetime


def customers_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "age": [21, 35, 60],
            "club_member_status": ["ACTIVE", "PRE-CREATE", None],
            "last_articles": [[1, 2], [], [3]],
        }
    )


def customers(project: Project, unique: Callable[[str], str]):
    fs = project.feature_store
    group = fs.get_or_create_feature_group(unique("customers"), 1, ["customer_id"], online_enabled=True)
    group.insert(customers_frame())
    return group


def test_insert_then_read_round_trips_values_and_dtypes(project: Project, unique) -> None:
    group = customers(project, unique)
    got = group.read().sort("customer_id")
    assert got.equals(customers_frame())
    assert got.schema == customers_frame().schema


def test_column_types_are_the_stored_types_and_name_an_unknown_column(project: Project, unique) -> None:
    group = customers(project, unique)
    assert group.column_types(["age", "customer_id"]) == pl.Schema({"age": pl.Int64, "customer_id": pl.String})
    with pytest.raises(SchemaError, match="nope"):
        group.column_types(["customer_id", "nope"])


def test_insert_upserts_on_primary_key(project: Project, unique) -> None:
    group = customers(project, unique)
    update = pl.DataFrame(
        {
            "customer_id": ["c2", "c4"],
            "age": [36, 18],
            "club_member_status": ["ACTIVE", "ACTIVE"],
            "last_articles": [[9], [4, 5]],
        }
    )
    group.insert(update)
    got = group.read().sort("customer_id")
    assert got["customer_id"].to_list() == ["c1", "c2", "c3", "c4"]
    assert got["age"].to_list() == [21, 36, 60, 18]  # c2 updated, c4 added, the rest untouched
    assert got.filter(pl.col("customer_id") == "c2")["last_articles"].to_list() == [[9]]
    online = group.read(online=True).sort("customer_id")
    assert online["age"].to_list() == [21, 36, 60, 18]


def test_a_selection_reads_the_online_rows_columns(project: Project, unique) -> None:
    group = customers(project, unique)
    group.insert(
        pl.DataFrame({"customer_id": ["c2"], "age": [36], "club_member_status": ["ACTIVE"], "last_articles": [[9]]})
    )
    online = group.select(["age", "customer_id"]).read(online=True).sort("customer_id")
    assert online.equals(pl.DataFrame({"age": [21, 36, 60], "customer_id": ["c1", "c2", "c3"]}))


def test_missing_primary_key_column_is_a_schema_error_naming_it(project: Project, unique) -> None:
    group = customers(project, unique)
    with pytest.raises(SchemaError, match="customer_id") as info:
        group.insert(customers_frame().drop("customer_id"))
    assert info.value.column == "customer_id"
    assert len(group.read()) == 3


def test_wrong_dtype_is_a_schema_error_and_nothing_is_written(project: Project, unique) -> None:
    group = customers(project, unique)
    bad = customers_frame().with_columns(pl.col("age").cast(pl.Float64) + 0.5, pl.lit("z").alias("customer_id"))
    with pytest.raises(SchemaError, match=r"'age'.*Float64.*expected Int64"):
        group.insert(bad.head(1))
    assert group.read().sort("customer_id").equals(customers_frame())


def test_null_and_duplicate_keys_are_validation_errors_with_rows(project: Project, unique) -> None:
    group = customers(project, unique)
    nulls = customers_frame().with_columns(
        pl.when(pl.col("age") > 30).then(None).otherwise(pl.col("customer_id")).alias("customer_id")
    )
    with pytest.raises(ValidationError, match="2 null") as info:
        group.insert(nulls)
    assert info.value.column == "customer_id"
    assert info.value.rows["age"].to_list() == [35, 60]  # the offending rows are shown

    dups = pl.concat(
        [customers_frame(), customers_frame().head(1).with_columns(pl.lit(99, dtype=pl.Int64).alias("age"))]
    )
    with pytest.raises(ValidationError, match="share a key") as info:
        group.insert(dups)
    assert info.value.rows["customer_id"].to_list() == ["c1", "c1"]
    assert group.read().sort("customer_id").equals(customers_frame())


def test_overwrite_replaces_every_row_offline_and_online(project: Project, unique) -> None:
    group = customers(project, unique)
    replacement = customers_frame().filter(pl.col("customer_id") != "c1").with_columns(pl.col("age") + 1)
    group.insert(replacement, overwrite=True)
    assert group.read().sort("customer_id").equals(replacement)
    assert group.read(online=True).sort("customer_id")["customer_id"].to_list() == ["c2", "c3"]


def test_chunked_insert_lands_all_chunks_and_the_newest_rows_online(project: Project, unique) -> None:
    fs = project.feature_store
    group = fs.get_or_create_feature_group(
        unique("history"), 1, ["customer_id"], event_time="as_of", online_enabled=True
    )
    chunks = [
        pl.DataFrame({"customer_id": ["a", "a"], "as_of": [D(2020, 1, 2), D(2020, 1, 5)], "n": [1, 2]}),
        pl.DataFrame({"customer_id": ["b"], "as_of": [D(2020, 1, 3)], "n": [7]}),
    ]
    group.insert(iter(chunks), overwrite=True)
    assert group.read().sort("customer_id", "as_of")["n"].to_list() == [1, 2, 7]
    assert group.read(online=True).sort("customer_id")["n"].to_list() == [2, 7]


def test_a_bad_chunk_writes_nothing(project: Project, unique) -> None:
    group = customers(project, unique)
    good = customers_frame().with_columns(pl.col("age") + 10)
    bad = customers_frame().with_columns(pl.lit(None, dtype=pl.String).alias("customer_id"))
    with pytest.raises(ValidationError, match="null"):
        group.insert(iter([good, bad]), overwrite=True)
    assert group.read().sort("customer_id").equals(customers_frame())
    assert group.read(online=True).sort("customer_id")["age"].to_list() == [21, 35, 60]


def test_unknown_names_list_what_exists(project: Project, unique) -> None:
    group = customers(project, unique)
    fs = project.feature_store
    with pytest.raises(NotFoundError, match=rf"'{group.name}' v1"):
        fs.get_feature_group(group.name, 7)
    with pytest.raises(NotFoundError, match="feature view"):
        fs.get_feature_view(unique("nope"), 1)
    with pytest.raises(NotFoundError):
        project.model_registry.get_model(unique("nope"), 1)


def point_in_time_setup(project: Project, unique):
    """Hand-made rows where a leak changes the answer.

    Customer c1 buys on Jan 5 and Jan 10. Her history snapshots carry the time from which they are valid: Jan 1
    (n_purchases=0), Jan 6 (n_purchases=1: the Jan 5 purchase, valid from the next day) and Jan 11 (n=2). A
    purchase at time t sees the newest snapshot valid at t: Jan 5 -> 0, Jan 10 -> 1. A leaky join (latest, or
    any later snapshot) would give 1 and 2, i.e. the label hidden in the feature. c2 has a snapshot valid from
    Jan 3 exactly, the time of its purchase: valid at t means visible at t (Hopsworks' rule too).
    """
    fs = project.feature_store
    tx = fs.get_or_create_feature_group(
        unique("transactions"), 1, ["customer_id", "article_id", "t_dat"], event_time="t_dat"
    )
    tx.insert(
        pl.DataFrame(
            {
                "customer_id": ["c1", "c1", "c2"],
                "article_id": [10, 11, 12],
                "t_dat": [D(2020, 1, 5), D(2020, 1, 10), D(2020, 1, 3)],
                "price": [1.0, 2.0, 3.0],
            }
        )
    )
    hist = fs.get_or_create_feature_group(
        unique("customer_history"), 1, ["customer_id"], event_time="as_of", online_enabled=True
    )
    hist.insert(
        pl.DataFrame(
            {
                "customer_id": ["c1", "c1", "c1", "c2"],
                "as_of": [D(2020, 1, 1), D(2020, 1, 6), D(2020, 1, 11), D(2020, 1, 3)],
                "n_purchases": [0, 1, 2, 1],
            }
        )
    )
    return tx, hist


def test_point_in_time_join_sees_only_features_valid_at_the_row_time(project: Project, unique) -> None:
    tx, hist = point_in_time_setup(project, unique)
    query = tx.select(["customer_id", "article_id", "t_dat"]).join(hist.select(["n_purchases"]), on=["customer_id"])
    got = query.read().sort("t_dat")
    assert got["article_id"].to_list() == [12, 10, 11]
    # c2 on Jan 3: its snapshot valid from Jan 3 is visible; c1: 0 then 1, never a later snapshot (docstring)
    assert got["n_purchases"].to_list() == [1, 0, 1]


def test_feature_view_time_splits(project: Project, unique) -> None:
    tx, hist = point_in_time_setup(project, unique)
    query = tx.select(["customer_id", "t_dat", "price"]).join(hist.select(["n_purchases"]))
    fv = project.feature_store.get_or_create_feature_view(unique("retrieval"), 1, query, labels=["price"])
    x_train, x_test, y_train, y_test = fv.train_test_split(test_start="2020-01-05")
    assert x_train["t_dat"].to_list() == [D(2020, 1, 3)]
    assert sorted(x_test["t_dat"].to_list()) == [D(2020, 1, 5), D(2020, 1, 10)]
    assert "price" not in x_train.columns and y_train["price"].to_list() == [3.0]
    assert sorted(y_test["price"].to_list()) == [1.0, 2.0]

    x_tr, x_val, x_te, _y_tr, y_val, y_te = fv.train_validation_test_split(
        validation_start="2020-01-04", test_start="2020-01-06", test_end="2020-02-01"
    )
    assert [len(x_tr), len(x_val), len(x_te)] == [1, 1, 1]
    assert y_val["price"].to_list() == [1.0] and y_te["price"].to_list() == [2.0]

    x, y = fv.training_data(start_time="2020-01-04", end_time="2020-01-06")
    assert x["t_dat"].to_list() == [D(2020, 1, 5)] and y["price"].to_list() == [1.0]
    again = project.feature_store.get_feature_view(fv.name, 1)
    assert again.labels == ["price"]


def test_online_feature_vectors_are_batched_ordered_and_latest(project: Project, unique) -> None:
    group = customers(project, unique)
    _, hist = point_in_time_setup(project, unique)
    query = group.select(["customer_id", "age"]).join(hist.select(["n_purchases"]))
    fv = project.feature_store.get_or_create_feature_view(unique("customers_online"), 1, query)
    got = fv.get_feature_vectors([{"customer_id": "c2"}, {"customer_id": "c1"}])
    assert got["customer_id"].to_list() == ["c2", "c1"]
    assert got["age"].to_list() == [35, 21]
    assert got["n_purchases"].to_list() == [1, 2]  # online keeps the newest snapshot per key
    one = fv.get_feature_vector({"customer_id": "c1"})
    assert one.row(0, named=True) == {"customer_id": "c1", "age": 21, "n_purchases": 2}
    with pytest.raises(NotFoundError, match="c9"):
        fv.get_feature_vectors([{"customer_id": "c9"}])
    missing = fv.get_feature_vectors([{"customer_id": "c9"}, {"customer_id": "c3"}], allow_missing=True)
    assert missing["age"].to_list() == [None, 60]


def test_online_older_event_time_never_overwrites_newer(project: Project, unique) -> None:
    _, hist = point_in_time_setup(project, unique)
    hist.insert(pl.DataFrame({"customer_id": ["c1"], "as_of": [D(2019, 12, 1)], "n_purchases": [-1]}))
    online = hist.read(online=True).sort("customer_id")
    assert online["n_purchases"].to_list() == [2, 1]
    assert len(hist.read()) == 5  # offline keeps the full history


def embeddings(project: Project, unique, n: int = 200, dim: int = 8):
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    group = project.feature_store.get_or_create_feature_group(
        unique("candidate_embeddings"),
        1,
        ["article_id"],
        online_enabled=True,
        embedding_index=EmbeddingIndex("embedding", dim),
    )
    group.insert(pl.DataFrame({"article_id": np.arange(n) * 10, "embedding": vectors}))
    return group, vectors


def test_find_neighbors_is_exact_inner_product_with_exclusions(project: Project, unique) -> None:
    group, vectors = embeddings(project, unique)
    queries = np.random.default_rng(1).normal(size=(3, vectors.shape[1])).astype(np.float32)
    brute = np.argsort(-(queries @ vectors.T), axis=1)[:, :5] * 10
    got = group.find_neighbors(queries[0], k=5)
    assert got["article_id"].to_list() == brute[0].tolist()
    assert got["score"].to_list() == pytest.approx(np.sort(queries[0] @ vectors.T)[::-1][:5].tolist(), rel=1e-5)

    batch = group.find_neighbors(queries, k=5, exclude=[[int(brute[0, 0])], [], [int(brute[2, 1])]])
    per_query = batch.group_by("query", maintain_order=True).agg("article_id")["article_id"].to_list()
    expected2 = [a for a in np.argsort(-(queries[2] @ vectors.T))[:6] * 10 if a != brute[2, 1]]
    assert per_query[0] == [*brute[0, 1:].tolist(), int(np.argsort(-(queries[0] @ vectors.T))[5] * 10)]
    assert per_query[1] == brute[1].tolist()
    assert per_query[2] == expected2[:5]


def test_model_registry_versions_metadata_and_best(project: Project, unique, tmp_path: Path) -> None:
    artefacts = tmp_path / "artefacts"
    artefacts.mkdir()
    (artefacts / "weights.bin").write_bytes(b"\x00\x01")
    mr = project.model_registry
    name = unique("ranker")
    first = mr.create_model(name, metrics={"map12": 0.02}, description="first", run_id="run-a").save(artefacts)
    second = mr.create_model(name, metrics={"map12": 0.05}, run_id="run-b", input_example={"x": 1}).save(artefacts)
    assert (first.version, second.version) == (1, 2)
    got = mr.get_model(name, 1)
    assert got.run_id == "run-a" and got.metrics == {"map12": 0.02} and got.description == "first"
    assert got.created_at is not None
    assert (got.download() / "weights.bin").read_bytes() == b"\x00\x01"
    assert mr.get_best_model(name, "map12", "max").version == 2
    assert mr.get_best_model(name, "map12", "min").version == 1
    assert [m.version for m in mr.get_models(name)] == [1, 2]
    with pytest.raises(NotFoundError, match="1, 2"):
        mr.get_model(name, 3)
