"""The synthetic generator on the tiny preset: H&M layout, integrity, determinism, speed."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path

import polars as pl
import pytest

from recsys.data.synthetic import PRESETS, SyntheticData, generate, get_preset
from recsys.errors import RecsysError


@pytest.fixture(scope="module")
def tiny() -> SyntheticData:
    return generate("tiny", seed=42)


def csv_header(shared_data: Path, name: str) -> list[str]:
    return (shared_data / "hm-sample" / name).read_text().splitlines()[0].split(",")


def test_tiny_is_fast() -> None:
    started = time.perf_counter()
    generate("tiny", seed=1)
    assert time.perf_counter() - started < 2.0


def test_columns_follow_hm(tiny: SyntheticData, shared_data: Path) -> None:
    assert tiny.articles.columns == csv_header(shared_data, "articles.csv")
    assert tiny.customers.columns == csv_header(shared_data, "customers.csv")
    # The sample lacks sales_channel_id; the full Kaggle file has it as the last column.
    assert tiny.transactions.columns == [*csv_header(shared_data, "transactions_train.csv"), "sales_channel_id"]
    assert tiny.transactions.schema["t_dat"] == pl.Date
    assert tiny.transactions.schema["article_id"] == pl.Int64
    assert tiny.customers["customer_id"].str.len_chars().unique().to_list() == [64]


def test_sizes_and_integrity(tiny: SyntheticData) -> None:
    preset = PRESETS["tiny"]
    assert tiny.articles.height == preset.n_articles
    assert tiny.customers.height == preset.n_customers
    assert abs(tiny.transactions.height - preset.n_transactions) < 0.05 * preset.n_transactions
    assert tiny.articles["article_id"].is_unique().all()
    assert tiny.customers["customer_id"].is_unique().all()
    tx = tiny.transactions
    assert tx.join(tiny.articles, on="article_id", how="anti").height == 0
    assert tx.join(tiny.customers, on="customer_id", how="anti").height == 0
    assert str(tx["t_dat"].min()) == "2018-09-20"
    assert str(tx["t_dat"].max()) == "2020-09-22"
    assert tx["t_dat"].is_sorted()
    assert (tx["price"] > 0).all() and tx["price"].max() < 1.0
    assert set(tx["sales_channel_id"].unique().to_list()) == {1, 2}


def test_variants_share_product_and_differ_in_colour(tiny: SyntheticData) -> None:
    per_product = tiny.articles.group_by("product_code").agg(
        n=pl.len(),
        colours=pl.col("colour_group_code").n_unique(),
        types=pl.col("product_type_name").n_unique(),
        article_prefix=(pl.col("article_id") // 1000 == pl.col("product_code")).all(),
    )
    assert per_product["n"].mean() > 2.0  # several colour variants per product on average
    assert (per_product["colours"] == per_product["n"]).all()
    assert (per_product["types"] == 1).all()
    assert per_product["article_prefix"].all()


def test_new_articles_appear_over_time(tiny: SyntheticData) -> None:
    first_sale = tiny.transactions.group_by("article_id").agg(pl.col("t_dat").min())["t_dat"]
    late = (first_sale > dt.date(2019, 9, 20)).sum()
    assert late > 0.1 * tiny.articles.height


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    def digests(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}

    generate("tiny", seed=7).write(tmp_path / "a")
    generate("tiny", seed=7).write(tmp_path / "b")
    generate("tiny", seed=8).write(tmp_path / "c")
    a, b, c = digests(tmp_path / "a"), digests(tmp_path / "b"), digests(tmp_path / "c")
    assert len(a) == 3 and a == b
    assert a["transactions_train.parquet"] != c["transactions_train.parquet"]
    assert {p.name for p in (tmp_path / "a").iterdir()} == {
        "articles.parquet",
        "customers.parquet",
        "transactions_train.parquet",
        "dataset.yaml",
        "latent.npz",
        "manifest.json",
    }


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(RecsysError, match=r"unknown preset 'huge'.*tiny, small, hm"):
        get_preset("huge")
