"""The H&M loader on real rows (../shared/data/hm-sample): types, joins, leading zeros, sampling, cache."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import recsys.data.hm as hm
from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT, Dataset
from recsys.data.hm import load_hm
from recsys.errors import DataError

FILES = ("articles.csv", "customers.csv", "transactions_train.csv")


@pytest.fixture(scope="module")
def hm_dir(shared_data: Path) -> Path:
    return shared_data / "hm-sample"


@pytest.fixture(scope="module")
def full(hm_dir: Path) -> Dataset:
    return load_hm(hm_dir)


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(src / name, dst / name)  # copyfile: the copies are writable, unlike the shared originals
    return dst


def test_counts_and_features(full: Dataset) -> None:
    assert (full.articles.height, full.customers.height, full.transactions.height) == (1_000, 4_946, 5_000)
    assert full.name == "hm"
    assert "product_code" in full.feature_columns("articles", "categorical")
    assert full.feature_columns("articles", "text") == ["prod_name", "detail_desc"]
    assert full.feature_columns("customers", "numeric") == ["FN", "Active", "age"]


def test_dtypes(full: Dataset) -> None:
    assert full.transactions.schema == pl.Schema(
        {
            T_DAT: pl.Datetime("us"),
            CUSTOMER_ID: pl.String,
            ARTICLE_ID: pl.Int64,
            PRICE: pl.Float64,
            QUANTITY: pl.Int32,
            "sales_channel_id": pl.String,
        }
    )
    assert full.articles.schema[ARTICLE_ID] == pl.Int64
    assert full.articles.schema["product_code"] == pl.String
    assert full.articles.schema["detail_desc"] == pl.String
    assert full.customers.schema[CUSTOMER_ID] == pl.String
    assert full.customers.schema["age"] == pl.Float64 and full.customers.schema["FN"] == pl.Float64
    # the sample has no sales_channel_id column: the optional feature is there, all null
    assert full.transactions["sales_channel_id"].null_count() == 5_000
    assert (full.transactions[QUANTITY] == 1).all()
    # FN and Active keep the original's nulls instead of failing the numeric cast
    assert 0 < full.customers["FN"].null_count() < full.customers.height


def test_known_values(full: Dataset) -> None:
    first = full.articles.row(0, named=True)  # articles.csv line 2
    assert (first[ARTICLE_ID], first["product_code"], first["prod_name"]) == (
        822115001,
        "822115",
        "Pola seamless leggings",
    )
    tx = full.transactions.row(0, named=True)  # 2020-06-12,cbf8a501...,640021011,0.0508...
    assert tx[T_DAT] == datetime(2020, 6, 12)
    assert tx[ARTICLE_ID] == 640021011
    assert tx[PRICE] == pytest.approx(0.050830508474576264)


def test_every_transaction_joins(full: Dataset) -> None:
    assert full.transactions.join(full.articles, on=ARTICLE_ID, how="anti").height == 0
    assert full.transactions.join(full.customers, on=CUSTOMER_ID, how="anti").height == 0
    assert full.articles[ARTICLE_ID].is_unique().all() and full.customers[CUSTOMER_ID].is_unique().all()


def test_date_range(full: Dataset) -> None:
    assert full.transactions[T_DAT].min() == datetime(2018, 9, 20)
    assert full.transactions[T_DAT].max() == datetime(2020, 9, 22)


def test_leading_zeros_load_to_identical_frames(full: Dataset, hm_dir: Path, tmp_path: Path) -> None:
    # Rewrite the sample as Kaggle ships it: article_id as 10 digits (0108775015), product_code as 7.
    padded = _copy(hm_dir, tmp_path / "padded")
    for name, pads in {
        "articles.csv": {ARTICLE_ID: 10, "product_code": 7},
        "transactions_train.csv": {ARTICLE_ID: 10},
    }.items():
        text = pl.read_csv(hm_dir / name, infer_schema=False)
        text = text.with_columns(pl.col(col).str.zfill(width) for col, width in pads.items())
        text.write_csv(padded / name)
    raw = pl.read_csv(padded / "articles.csv", infer_schema=False)
    assert raw[ARTICLE_ID].str.starts_with("0").all()  # the copy really is padded
    again = load_hm(padded)
    assert_frame_equal(again.articles, full.articles)
    assert_frame_equal(again.transactions, full.transactions)
    assert_frame_equal(again.customers, full.customers)


def test_sales_channel_kept_when_present(hm_dir: Path, tmp_path: Path) -> None:
    folder = _copy(hm_dir, tmp_path / "with-channel")
    tx = pl.read_csv(hm_dir / "transactions_train.csv", infer_schema=False)
    tx.with_columns(sales_channel_id=pl.lit("2")).write_csv(folder / "transactions_train.csv")
    ds = load_hm(folder)
    assert ds.transactions["sales_channel_id"].to_list() == ["2"] * 5_000


def test_sampling_by_customers(full: Dataset, hm_dir: Path) -> None:
    a = load_hm(hm_dir, customers=300, seed=7)
    b = load_hm(hm_dir, customers=300, seed=7)
    other = load_hm(hm_dir, customers=300, seed=8)
    assert_frame_equal(a.transactions, b.transactions)  # deterministic
    assert_frame_equal(a.customers, b.customers)
    assert set(a.customers[CUSTOMER_ID]) != set(other.customers[CUSTOMER_ID])  # the seed matters
    kept = set(a.customers[CUSTOMER_ID])
    assert len(kept) == 300
    assert set(a.transactions[CUSTOMER_ID]) == kept  # only their transactions ...
    expected = full.transactions.filter(pl.col(CUSTOMER_ID).is_in(list(kept)))
    assert_frame_equal(a.transactions, expected)  # ... and all of them, in file order
    assert_frame_equal(a.articles, full.articles)  # the catalogue stays whole
    assert load_hm(hm_dir, customers=10_000).transactions.height == 5_000  # more than there are: everyone


def test_cache_reused_then_invalidated(hm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _copy(hm_dir, tmp_path / "data")
    cache = tmp_path / "cache"
    first = load_hm(folder, cache_dir=cache)
    assert (cache / "transactions.parquet").is_file() and (cache / hm.CACHE_MANIFEST).is_file()
    assert not (folder / ".parquet-cache").exists() and sorted(p.name for p in folder.iterdir()) == sorted(FILES)

    parsed: list[str] = []
    real_read_table = hm.read_table

    def counting_read_table(spec, name):
        parsed.append(name)
        return real_read_table(spec, name)

    monkeypatch.setattr(hm, "read_table", counting_read_table)
    second = load_hm(folder, cache_dir=cache)
    assert parsed == []  # nothing parsed from CSV: all three tables came from the cache
    assert_frame_equal(second.transactions, first.transactions)
    assert_frame_equal(second.articles, first.articles)

    # Change the transactions CSV (drop its last row): only that table is parsed again, and the change shows.
    lines = (folder / "transactions_train.csv").read_text().splitlines(keepends=True)
    (folder / "transactions_train.csv").write_text("".join(lines[:-1]))
    third = load_hm(folder, cache_dir=cache)
    assert parsed == ["transactions"]
    assert third.transactions.height == 4_999
    assert third.articles.height == 1_000


def test_missing_folder_and_file(hm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere.*H&M folder not found"):
        load_hm(tmp_path / "nowhere")
    folder = _copy(hm_dir, tmp_path / "partial")
    (folder / "customers.csv").unlink()
    with pytest.raises(DataError, match=r"customers\.csv: file not found"):
        load_hm(folder)
