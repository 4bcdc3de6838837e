"""Properties of the embedded backend that Hopsworks does not expose the same way: time travel, the SQLite
statements issued, the FAISS files, metadata checks, and the `store` CLI."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from pathlib import Path

import faiss
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from feature_pipeline.store_cli import store_app
from recsys.store import EmbeddingIndex, NotFoundError, Project, SchemaError
from recsys.store.local import offline, sqlite_codec
from recsys.store.local.feature_group import LocalFeatureGroup


def test_old_versions_stay_readable(local_project: Project) -> None:
    group = local_project.feature_store.get_or_create_feature_group("articles", 1, ["article_id"])
    group.insert(pl.DataFrame({"article_id": [1, 2], "colour": ["red", "blue"]}))
    group.insert(pl.DataFrame({"article_id": [2, 3], "colour": ["green", "black"]}))
    assert isinstance(group, LocalFeatureGroup)
    assert group.read(as_of_version=0).sort("article_id")["colour"].to_list() == ["red", "blue"]
    assert group.read().sort("article_id")["colour"].to_list() == ["red", "green", "black"]
    assert [c["operation"] for c in group.commit_details()] == ["MERGE", "WRITE"]
    with pytest.raises(NotFoundError, match=r"0\.\.1"):
        group.read(as_of_version=5)


def test_column_types_come_from_the_metadata_without_reading_the_table(
    local_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = local_project.feature_store.get_or_create_feature_group("articles", 1, ["article_id"])
    group.insert(pl.DataFrame({"article_id": [1, 2], "colour": ["red", "blue"]}))

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the table was read")

    monkeypatch.setattr(offline.DeltaOffline, "scan", no_read)
    monkeypatch.setattr(offline.DeltaOffline, "read", no_read)
    assert group.column_types(["colour", "article_id"]) == pl.Schema({"colour": pl.String, "article_id": pl.Int64})


def test_a_large_frame_is_written_in_slices_and_replaced_whole(local_project: Project, monkeypatch) -> None:
    monkeypatch.setattr(offline, "SLICE_ROWS", 4)
    group = local_project.feature_store.get_or_create_feature_group("transactions", 1, ["customer_id", "article_id"])
    frame = pl.DataFrame({"customer_id": [f"c{i % 3}" for i in range(10)], "article_id": list(range(10))})
    group.insert(frame)
    assert isinstance(group, LocalFeatureGroup)
    assert len(list(group.offline.path.glob("*.parquet"))) == 3  # 4 + 4 + 2 rows
    assert_frame_equal(group.read().sort("article_id"), frame)
    group.insert(frame.with_columns(pl.col("article_id") + 100), overwrite=True)
    assert group.read().sort("article_id")["article_id"].to_list() == list(range(100, 110))
    assert group.read(as_of_version=0).height == 10


def test_rows_newer_than_the_table_are_appended_and_a_repeat_is_still_a_merge(
    local_project: Project, monkeypatch
) -> None:
    group = local_project.feature_store.get_or_create_feature_group(
        "history", 1, ["customer_id"], event_time="as_of", online_enabled=True
    )
    assert isinstance(group, LocalFeatureGroup)

    def day(d: int) -> pl.Expr:
        return pl.lit(f"2020-01-{d:02d}").str.to_datetime()

    def rows(customers: list[str], d: int, n: int) -> pl.DataFrame:
        return pl.DataFrame({"customer_id": customers, "n": [n] * len(customers)}).with_columns(day(d).alias("as_of"))

    group.insert(rows(["a", "b"], 1, 1))
    newer = rows(["a", "c"], 2, 2)
    group.insert(newer)  # a daily insert: no stored key can match, so nothing of the table is joined
    group.insert(newer)  # a re-run after a crash: the rows are not newer any more -> MERGE, no duplicates
    group.insert(rows(["a"], 2, 3))  # same key, new value: updated in place
    assert [c["operation"] for c in group.commit_details()] == ["MERGE", "MERGE", "WRITE", "WRITE"]
    stored = group.read().sort("as_of", "customer_id")
    assert stored.select("customer_id", "n").rows() == [("a", 1), ("b", 1), ("a", 3), ("c", 2)]
    assert group.read(online=True).sort("customer_id")["n"].to_list() == [3, 1, 2]
    # a large append streams in slices and still lands in one commit
    monkeypatch.setattr(offline, "SLICE_ROWS", 2)
    group.insert(rows(["a", "b", "c", "d", "e"], 3, 4))
    assert group.commit_details(1)[0]["operation"] != "MERGE" and group.offline.version() == 4
    assert group.read().height == 9 and group.read(online=True)["n"].to_list() == [4] * 5


def test_dtypes_are_normalised_and_nested_types_survive_the_online_store(local_project: Project) -> None:
    group = local_project.feature_store.get_or_create_feature_group(
        "customer_history", 1, ["customer_id"], online_enabled=True
    )
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series(["a", "b"], dtype=pl.Categorical),
            "n": pl.Series([1, 2], dtype=pl.UInt32),
            "vec": pl.Series([[0.1, 0.2], [0.3, 0.4]], dtype=pl.Array(pl.Float32, 2)),
            "last": [[1, 2, 3], None],
            "when": pl.Series(["2020-01-01 10:00", "2020-01-02 11:00"]).str.to_datetime(time_unit="ns"),
        }
    )
    group.insert(frame)
    expected = pl.Schema(
        {
            "customer_id": pl.String,
            "n": pl.Int64,
            "vec": pl.Array(pl.Float32, 2),
            "last": pl.List(pl.Int64),
            "when": pl.Datetime("us"),
        }
    )
    assert group.schema == expected
    offline = group.read().sort("customer_id")
    online = group.read(online=True).sort("customer_id")
    assert offline.schema == expected and online.schema == expected
    assert online.equals(offline)
    assert online["vec"].to_list() == frame["vec"].to_list()  # float32 survives JSON exactly


@pytest.mark.parametrize("with_struct", [False, True], ids=["python decoders", "a struct: polars decodes"])
def test_feature_rows_are_the_feature_vectors_as_dicts(local_project: Project, with_struct: bool) -> None:
    fs = local_project.feature_store
    group = fs.get_or_create_feature_group(f"rows{int(with_struct)}", 1, ["customer_id"], online_enabled=True)
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "small": pl.Series([1, None, -3], dtype=pl.Int8),
            "share": pl.Series([0.1, 2.5, None], dtype=pl.Float32),
            "price": [0.1, None, 1e-9],
            "member": [True, False, None],
            "last": pl.Series(["2020-01-01 10:00:00.123456", None, "1969-12-31 23:59:59"]).str.to_datetime(),
            "born": [date(1990, 5, 1), None, date(1969, 1, 1)],
            "ids": [[1, 2, 3], [], None],
            "names": [["Dress", "Top"], None, []],
            "shares": [[0.4, 0.6], [1 / 3], None],
            "flags": [[True, False], None, [False]],
            **({"box": [{"x": 1, "y": "p"}, None, {"x": None, "y": "q"}]} if with_struct else {}),
        }
    )
    group.insert(frame)
    view = fs.get_or_create_feature_view(f"rows{int(with_struct)}", 1, group.select_all())
    keys = [{"customer_id": c} for c in ("c", "zz", "a", "b")]  # zz: not in the store
    decoded_in_python = sqlite_codec.value_decoders(tuple(group.schema.dtypes())) is not None
    assert decoded_in_python is not with_struct
    rows = view.get_feature_rows(keys, allow_missing=True)
    assert rows == view.get_feature_vectors(keys, allow_missing=True).to_dicts()
    assert rows[0]["last"] == datetime(1969, 12, 31, 23, 59, 59) and rows[1]["small"] is None
    assert rows[2]["ids"] == [1, 2, 3] and rows[2]["member"] is True and rows[3]["names"] is None


def test_a_batch_of_online_keys_is_one_sql_statement(local_project: Project) -> None:
    fs = local_project.feature_store
    group = fs.get_or_create_feature_group("customers", 1, ["customer_id"], online_enabled=True)
    group.insert(pl.DataFrame({"customer_id": [f"c{i}" for i in range(500)], "age": list(range(500))}))
    view = fs.get_or_create_feature_view("customers", 1, group.select(["customer_id", "age"]))
    statements: list[str] = []
    fs.online._reader().set_trace_callback(statements.append)
    got = view.get_feature_vectors([{"customer_id": f"c{i}"} for i in (400, 3, 77)])
    assert got["age"].to_list() == [400, 3, 77]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    mode = sqlite3.connect(fs.layout.online_db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_online_rows_are_a_rowid_table_filled_in_key_order_and_an_overwrite_rebuilds_an_older_layout(
    local_project: Project,
) -> None:
    fs = local_project.feature_store
    group = fs.get_or_create_feature_group("customers", 1, ["customer_id"], online_enabled=True)
    db = sqlite3.connect(fs.layout.online_db)
    # a table as an older version made it: clustered on the key, which is slow and large for wide rows
    db.execute(
        f'CREATE TABLE "{group.online_table}" (customer_id TEXT, age INTEGER, PRIMARY KEY (customer_id)) WITHOUT ROWID'
    )
    db.execute(f'INSERT INTO "{group.online_table}" VALUES (?, ?)', ("old", 1))
    db.commit()
    group.insert(pl.DataFrame({"customer_id": ["c", "a", "b"], "age": [3, 1, 2]}))  # an upsert keeps the table
    assert group.read(online=True).sort("customer_id")["customer_id"].to_list() == ["a", "b", "c", "old"]

    group.insert(pl.DataFrame({"customer_id": ["z", "x", "y"], "age": [26, 24, 25]}), overwrite=True)
    ddl = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (group.online_table,)).fetchone()[0]
    assert "WITHOUT ROWID" not in ddl.upper() and "PRIMARY KEY" in ddl.upper()
    in_rowid_order = db.execute(f'SELECT customer_id, age FROM "{group.online_table}" ORDER BY rowid').fetchall()
    assert in_rowid_order == [("x", 24), ("y", 25), ("z", 26)]  # the old rows are gone, the new ones in key order
    group.insert(pl.DataFrame({"customer_id": ["w"], "age": [23]}))  # stored after the others
    assert group.read(online=True)["customer_id"].to_list() == ["w", "x", "y", "z"]  # read back in key order


def test_get_or_create_refuses_a_changed_definition(local_project: Project) -> None:
    fs = local_project.feature_store
    group = fs.get_or_create_feature_group("customers", 1, ["customer_id"], online_enabled=True)
    group.insert(pl.DataFrame({"customer_id": ["a"], "age": [3]}))
    with pytest.raises(SchemaError, match="primary_key"):
        fs.get_or_create_feature_group("customers", 1, ["age"], online_enabled=True)
    fs.get_or_create_feature_view("v", 1, group.select(["age"]))
    with pytest.raises(SchemaError, match="different query"):
        fs.get_or_create_feature_view("v", 1, group.select(["customer_id", "age"]))
    with pytest.raises(SchemaError, match="versions are explicit"):
        fs.get_or_create_feature_group("customers", 0, ["customer_id"])


def _embedding_group(project: Project, n: int, dim: int, **index: object) -> tuple[LocalFeatureGroup, np.ndarray]:
    vectors = np.random.default_rng(3).normal(size=(n, dim)).astype(np.float32)
    group = project.feature_store.get_or_create_feature_group(
        "candidate_embeddings", 1, ["article_id"], embedding_index=EmbeddingIndex("embedding", dim, **index)
    )
    group.insert(pl.DataFrame({"article_id": np.arange(n), "embedding": vectors, "colour": np.arange(n) % 3}))
    assert isinstance(group, LocalFeatureGroup)
    return group, vectors


def test_index_is_rebuilt_on_write_and_when_stale(local_project: Project) -> None:
    group, vectors = _embedding_group(local_project, 50, 4)
    folder = group.folder / "index"
    first = (folder / "CURRENT").read_text()
    target = vectors[7]
    assert group.find_neighbors(target, k=1)["article_id"].to_list() == [int(np.argmax(vectors @ target))]
    group.insert(pl.DataFrame({"article_id": [49], "embedding": vectors[7:8] * 1000, "colour": [0]}))
    assert (folder / "CURRENT").read_text() != first
    assert group.find_neighbors(target, k=1)["article_id"].to_list() == [49]
    # A crash between the Delta commit and the index build leaves the index stale: the next search rebuilds it.
    group.offline.write(
        pl.DataFrame({"article_id": [48], "embedding": vectors[7:8] * 5000, "colour": [0]}), group.merge_key
    )
    fresh = local_project.feature_store.get_feature_group("candidate_embeddings", 1)
    assert fresh.find_neighbors(target, k=1)["article_id"].to_list() == [48]
    assert len([p for p in folder.iterdir() if p.name.startswith("g")]) <= 2


def test_a_loaded_reader_sees_a_rebuild_by_another_writer(local_project: Project) -> None:
    # the reader checks the CURRENT pointer's stamp on every search; a writer elsewhere replaces the pointer
    reader, vectors = _embedding_group(local_project, 50, 4)
    target = vectors[7]
    for _ in range(2):  # the second search is served by the stamp check alone
        assert reader.find_neighbors(target, k=1)["article_id"].to_list() == [int(np.argmax(vectors @ target))]
    writer = local_project.feature_store.get_feature_group("candidate_embeddings", 1)
    assert writer is not reader
    writer.insert(pl.DataFrame({"article_id": [49], "embedding": vectors[7:8] * 1000, "colour": [0]}))
    assert reader.find_neighbors(target, k=1)["article_id"].to_list() == [49]


@pytest.mark.parametrize("ids", [pl.Series(np.arange(40) * 3, dtype=pl.Int32), pl.Series([f"a{i}" for i in range(40)])])
def test_search_keeps_the_key_type(local_project: Project, ids: pl.Series) -> None:
    vectors = np.random.default_rng(5).normal(size=(40, 4)).astype(np.float32)
    group = local_project.feature_store.get_or_create_feature_group(
        "keyed", 1, ["key"], embedding_index=EmbeddingIndex("embedding", 4)
    )
    group.insert(pl.DataFrame({"key": ids, "embedding": vectors}))
    got = group.find_neighbors(vectors[:3], k=4)
    assert got.schema["key"] == ids.dtype
    brute = np.argsort(-(vectors[:3] @ vectors.T), axis=1)[:, :4].ravel()
    assert got["key"].to_list() == ids.gather(brute).to_list()


def test_filter_and_ivfpq_option(local_project: Project) -> None:
    group, vectors = _embedding_group(local_project, 3000, 16, index_type="ivfpq", nlist=16, m=8, nbits=4, nprobe=16)
    assert isinstance(group._loaded_index().index, faiss.IndexIVFPQ)
    queries = vectors[:20]
    got = group.find_neighbors(queries, k=10)
    brute = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean(
        [
            len(set(g) & set(b)) / 10
            for g, b in zip(
                got.group_by("query", maintain_order=True).agg("article_id")["article_id"].to_list(), brute, strict=True
            )
        ]
    )
    assert recall > 0.4  # approximate, but far better than chance (10/3000)
    filtered = group.find_neighbors(queries[:2], k=5, filter=pl.col("colour") == 1)
    assert len(filtered) == 10 and (filtered["article_id"] % 3 == 1).all()


def test_store_cli_lists_and_shows(local_project: Project, tmp_path: Path) -> None:
    fs = local_project.feature_store
    group = fs.get_or_create_feature_group("customers", 1, ["customer_id"], online_enabled=True, description="who")
    group.insert(pl.DataFrame({"customer_id": ["a", "b"], "age": [3, 4]}))
    group.insert(pl.DataFrame({"customer_id": ["c"], "age": [5]}))
    fs.get_or_create_feature_view("customers", 1, group.select(["age"]))
    home = str(tmp_path / "home")
    runner = CliRunner()
    listed = runner.invoke(store_app, ["ls", "--home", home], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "customers" in listed.output and "yes" in listed.output and "3" in listed.output
    shown = runner.invoke(store_app, ["show", "customers", "--version", "1", "--home", home], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "primary key" in shown.output and "MERGE" in shown.output and "WRITE" in shown.output
    missing = runner.invoke(store_app, ["show", "nope", "--version", "1", "--home", home])
    assert isinstance(missing.exception, NotFoundError) and "'customers' v1" in str(missing.exception)


def test_fp16_option_scans_half_precision_vectors(local_project: Project) -> None:
    group, vectors = _embedding_group(local_project, 3000, 16, index_type="fp16")
    index = group._loaded_index().index
    assert isinstance(index, faiss.IndexScalarQuantizer) and index.sq.qtype == faiss.ScalarQuantizer.QT_fp16
    queries = vectors[:20]
    got = group.find_neighbors(queries, k=10)
    exact = queries @ vectors.T
    brute = np.argsort(-exact, axis=1)[:, :10]
    found = got.group_by("query", maintain_order=True).agg("article_id")["article_id"].to_list()
    assert np.mean([len(set(g) & set(b)) / 10 for g, b in zip(found, brute, strict=True)]) >= 0.98
    # scores are the inner products of the half-precision vectors: within fp16 rounding of the exact ones
    rows = got["query"].to_numpy(), got["article_id"].to_numpy()
    np.testing.assert_allclose(got["score"].to_numpy(), exact[rows], atol=1e-2 * np.abs(exact).max())


def test_fp16_index_answers_large_batches_from_its_decoded_vectors(local_project: Project) -> None:
    group, _ = _embedding_group(local_project, 3000, 16, index_type="fp16")
    loaded = group._loaded_index()
    rng = np.random.default_rng(3)
    big = faiss.cvar.distance_compute_blas_threshold // 16 + 1  # the batch from which FAISS's exact scan uses BLAS
    queries = rng.standard_normal((big, 16)).astype(np.float32)
    batch = group.find_neighbors(queries, k=10)
    assert isinstance(loaded._decoded, faiss.IndexFlat) and loaded._decoded.ntotal == 3000
    # the same neighbours and scores as the half-precision scan answers query by query in small batches
    small = pl.concat(
        group.find_neighbors(queries[start : start + 500], k=10).with_columns(pl.col("query") + start)
        for start in range(0, big, 500)
    )
    assert batch.height == small.height == 10 * big
    assert (batch["article_id"] == small["article_id"]).mean() > 0.999  # only near-ties may swap
    np.testing.assert_allclose(batch["score"].to_numpy(), small["score"].to_numpy(), atol=1e-5)


def test_joins_keep_the_root_rows_order_and_gather_the_matched_rows(local_project: Project) -> None:
    """The root's rows come back in stored order, whatever order the joins match them in (as-of: by time)."""
    fs = local_project.feature_store
    tx = fs.get_or_create_feature_group("tx_order", 1, ["customer_id", "article_id", "t_dat"], event_time="t_dat")
    days = [datetime(2020, 1, d) for d in (9, 2, 5, 7)]
    tx.insert(pl.DataFrame({"customer_id": ["a", "b", "a", "z"], "article_id": [1, 2, 3, 4], "t_dat": days}))
    history = fs.get_or_create_feature_group("history_order", 1, ["customer_id"], event_time="as_of")
    history.insert(
        pl.DataFrame(
            {
                "customer_id": ["a", "a", "b"],
                "as_of": [datetime(2020, 1, 1), datetime(2020, 1, 6), datetime(2020, 1, 1)],
                "last": [["x"], ["x", "y"], ["w"]],
            }
        )
    )
    sizes = fs.get_or_create_feature_group("sizes_order", 1, ["article_id", "size"])  # several rows per article
    sizes.insert(pl.DataFrame({"article_id": [3, 1, 3], "size": ["M", "S", "L"]}))
    stored = tx.read().get_column("article_id").to_list()
    got = tx.select_all().join(history.select(["last"]), on=["customer_id"]).read()
    assert got["article_id"].to_list() == stored
    by_article = dict(zip(got["article_id"], got["last"].to_list(), strict=True))
    assert by_article == {1: ["x", "y"], 2: ["w"], 3: ["x"], 4: None}  # z has no history: a null list
    inner = tx.select(["article_id"]).join(sizes.select(["size"]), on=["article_id"], join_type="inner").read()
    assert inner["article_id"].to_list() == [a for a in stored if a in (1, 3) for _ in range(1 if a == 1 else 2)]
    assert sorted(inner.filter(pl.col("article_id") == 3)["size"].to_list()) == ["L", "M"]
    unmatched = fs.get_or_create_feature_group("colours_order", 1, ["article_id"])
    unmatched.insert(pl.DataFrame({"article_id": [99], "colour": ["red"]}))
    left = tx.select(["article_id"]).join(unmatched.select(["colour"]), on=["article_id"]).read()
    assert left["article_id"].to_list() == stored and left["colour"].null_count() == 4
    promos = fs.get_or_create_feature_group("promos_order", 1, ["customer_id", "t_dat"])  # keyed by the time too
    promos.insert(pl.DataFrame({"customer_id": ["a"], "t_dat": [datetime(2020, 1, 5)], "promo": [True]}))
    on_day = tx.select_all().join(promos.select(["promo"]), on=["customer_id", "t_dat"]).read()
    assert on_day["promo"].to_list() == [True if a == 3 else None for a in stored]
    no_features = tx.select(["article_id"]).join(sizes.select([]), on=["article_id"], join_type="inner").read()
    assert no_features.columns == ["article_id"]  # a join without features only filters (the MovieLens customers)
    assert no_features["article_id"].to_list() == inner["article_id"].to_list()
