"""The bring-your-own-data path on real data: MovieLens latest-small described by a spec written here."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT
from recsys.data.spec import load_spec, read_dataset, spec_to_dict, write_spec

SPEC = """\
name: movielens-small
id_types: {customer_id: int, article_id: int}
transactions:
  path: ratings.csv
  customer_id: userId
  article_id: movieId
  timestamp: {column: timestamp, unit: s}
  features: {rating: numeric}
articles:
  path: movies.csv
  article_id: movieId
  features:
    title: text
    genres: {type: multi_categorical, separator: "|"}
"""


@pytest.fixture(scope="module")
def ml_dir(shared_data: Path) -> Path:
    return shared_data / "ml-latest-small"


@pytest.fixture(scope="module")
def movielens(ml_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    # The spec lives elsewhere than the data: base_dir (absolute) says where its relative paths start.
    spec_path = tmp_path_factory.mktemp("spec") / "ml.yaml"
    spec_path.write_text(SPEC)
    return read_dataset(load_spec(spec_path, base_dir=ml_dir.resolve()))


def test_counts(movielens) -> None:
    assert movielens.name == "movielens-small"
    assert movielens.transactions.height == 100_836
    assert movielens.articles.height == 9_742  # movies.csv; 9,724 of them are rated
    assert movielens.transactions[ARTICLE_ID].n_unique() == 9_724
    # no customers table: the customers are the distinct raters, without features
    assert movielens.customers.columns == [CUSTOMER_ID]
    assert movielens.customers.height == 610
    assert movielens.customers[CUSTOMER_ID].is_sorted()


def test_canonical_columns_and_types(movielens) -> None:
    tx = movielens.transactions
    assert tx.columns == [T_DAT, CUSTOMER_ID, ARTICLE_ID, PRICE, QUANTITY, "rating"]
    assert tx.schema[T_DAT] == pl.Datetime("us")
    assert tx.schema[CUSTOMER_ID] == pl.Int64 and tx.schema[ARTICLE_ID] == pl.Int64
    assert tx.schema["rating"] == pl.Float64
    assert tx[PRICE].null_count() == tx.height and tx.schema[PRICE] == pl.Float64  # no price in MovieLens
    assert (tx[QUANTITY] == 1).all() and tx.schema[QUANTITY] == pl.Int32
    assert movielens.articles.schema["genres"] == pl.List(pl.String)
    assert movielens.articles.schema["title"] == pl.String
    assert movielens.feature_columns("articles", "multi_categorical") == ["genres"]
    assert movielens.feature_columns("transactions", "numeric") == ["rating"]


def test_known_rows(movielens) -> None:
    # ratings.csv line 2: 1,1,4.0,964982703  -> 2000-07-30 18:45:03 UTC
    first = movielens.transactions.row(0, named=True)
    assert (first[CUSTOMER_ID], first[ARTICLE_ID], first["rating"]) == (1, 1, 4.0)
    assert first[T_DAT] == datetime(2000, 7, 30, 18, 45, 3)
    toy_story = movielens.articles.filter(pl.col(ARTICLE_ID) == 1).row(0, named=True)
    assert toy_story["title"] == "Toy Story (1995)"
    assert toy_story["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]


def test_every_rating_joins_to_a_movie(movielens) -> None:
    orphans = movielens.transactions.join(movielens.articles, on=ARTICLE_ID, how="anti")
    assert orphans.height == 0


def test_absolute_paths_and_round_trip(ml_dir: Path, tmp_path: Path) -> None:
    # Absolute table paths work without base_dir; a written spec reads back to the same spec and data.
    text = SPEC.replace("ratings.csv", str(ml_dir.resolve() / "ratings.csv")).replace(
        "movies.csv", str(ml_dir.resolve() / "movies.csv")
    )
    (tmp_path / "abs.yaml").write_text(text)
    spec = load_spec(tmp_path / "abs.yaml")
    again = load_spec(write_spec(spec, tmp_path / "copy" / "ml.yaml"))
    assert spec_to_dict(again) == spec_to_dict(spec)
    assert spec_to_dict(spec)["articles"]["features"]["title"] == "text"  # written as a person would write it
    ds = read_dataset(again)
    assert ds.transactions.height == 100_836
