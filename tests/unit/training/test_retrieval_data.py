"""Frames to tower inputs: the schema follows the spec's types, lists are padded, nothing leaks from the future."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
import towerdata

from recsys.data.dataset import FeatureSpec
from recsys.training.retrieval_data import (
    ARTICLE_INDEX,
    EXAMPLE_AGE,
    PAD_INT,
    TowerFeatures,
    candidate_inputs,
    catalogue_rows,
    queries_as_of,
    query_inputs,
    tower_features,
    training_dataset,
    vocabulary,
)


@pytest.fixture
def schema() -> TowerFeatures:
    return tower_features(towerdata.FEATURES, towerdata.rows(), towerdata.articles(), history_length=4)


def test_schema_follows_the_spec_types(schema: TowerFeatures) -> None:
    assert schema.customer_categorical == ("club_member_status", "age_group")  # spec categorical + derived group
    assert schema.customer_numeric == ("age",)  # age_missing is derived inside the tower from NaN
    assert schema.article_categorical == ("product_type_name", "colour_group_name")
    assert schema.text == "description"  # prod_name reaches the tower through the description
    assert schema.history_numeric == ("n_purchases", "days_since_last_purchase")
    assert schema.affinities == ("product_type_name",)
    assert schema.list_lengths == {"last_article_ids": 4, "product_type_name": 2}
    names = set(schema.query_inputs())
    assert "sales_channel_id" not in names and "nickname" not in names  # not known at request time / text
    assert TowerFeatures.from_json(schema.to_json()) == schema


def test_schema_of_a_movielens_like_spec() -> None:
    features = {
        "transactions": {"rating": FeatureSpec("numeric")},
        "articles": {"title": FeatureSpec("text"), "genres": FeatureSpec("multi_categorical", "|")},
    }
    rows = pl.DataFrame({"customer_id": [7, 8], "article_id": [1, 2], "t_dat": [datetime(2020, 1, 1)] * 2})
    movies = pl.DataFrame(
        {"article_id": [1, 2], "title": ["Heat", "Up"], "genres": [["Crime", "Drama"], []], "description": ["a", "b"]}
    )
    schema = tower_features(features, rows, movies)
    assert (schema.customer_id_kind, schema.article_id_kind) == ("int", "int")
    assert schema.article_multi == ("genres",) and schema.list_lengths["genres"] == 2
    assert not schema.history and schema.context == ()
    inputs = candidate_inputs(movies, schema)
    assert inputs["genres"].tolist() == [["Crime", "Drama"], ["", ""]]
    assert query_inputs(rows, schema)["customer_id"].tolist() == [7, 8]


def test_query_inputs_pad_lists_and_keep_missing_as_nan(schema: TowerFeatures) -> None:
    inputs = query_inputs(towerdata.rows(), schema)
    history = inputs["last_article_ids"]
    assert history.dtype == np.int64 and history.shape == (5, 4)
    assert history[4].tolist() == [3, 2, 1, PAD_INT]
    assert (history[0] == PAD_INT).all()  # first purchase: no history, all padding
    assert inputs["product_type_name_values"][4].tolist() == ["Dress", "Sweater"]
    assert inputs["product_type_name_shares"][1].tolist() == [1.0, 0.0]
    assert np.isnan(inputs["age"][3]) and inputs["age"][0] == 30.0
    # recency from each row's own day: c1's Jan 10 row last bought on Jan 3
    assert inputs["days_since_last_purchase"][4] == 7.0 and np.isnan(inputs["days_since_last_purchase"][0])
    assert inputs["club_member_status"].tolist()[3] == "MISSING"


def test_request_time_sets_month_and_recency(schema: TowerFeatures) -> None:
    inputs = query_inputs(towerdata.rows().tail(1), schema, at=datetime(2020, 4, 2, 15))
    assert inputs["month_sin"][0] == pytest.approx(1.0) and inputs["month_cos"][0] == pytest.approx(0.0, abs=1e-7)
    assert inputs["days_since_last_purchase"][0] == (datetime(2020, 4, 2) - datetime(2020, 1, 3)).days


def test_example_age_counts_days_before_the_end_of_training() -> None:
    rows = towerdata.rows()
    schema = tower_features(towerdata.FEATURES, rows, towerdata.articles(), age_reference=datetime(2020, 1, 11))
    assert schema.age_reference == "2020-01-11" and schema.query_inputs()[EXAMPLE_AGE] == ("float", None)
    assert query_inputs(rows, schema)[EXAMPLE_AGE].tolist() == [10.0, 8.0, 8.0, 8.0, 1.0]
    # serving (any request after the end of training) asks about "now"
    assert query_inputs(rows.head(2), schema, at=datetime(2020, 3, 1, 9))[EXAMPLE_AGE].tolist() == [0.0, 0.0]
    assert TowerFeatures.from_json(schema.to_json()) == schema


def test_queries_as_of_use_only_earlier_days(schema: TowerFeatures) -> None:
    # the customers view holds the latest history ([1, 3, 2, 1]...): it must be replaced, not used
    customers = pl.DataFrame(
        {"customer_id": ["c1", "c2", "c9"], "club_member_status": ["ACTIVE", "MISSING", "ACTIVE"]}
    ).with_columns(
        last_article_ids=pl.lit([99], dtype=pl.List(pl.Int64)), last_article_gaps=pl.lit([99], dtype=pl.List(pl.Int32))
    )
    state = queries_as_of(customers, towerdata.rows(), towerdata.articles(), datetime(2020, 1, 10, 12), schema)
    assert state.get_column("customer_id").to_list() == ["c1", "c2", "c9"]
    assert state.get_column("last_article_ids").to_list() == [[3, 2, 1], [2], None]  # Jan 10 itself is not seen
    assert [g is None or 99 not in g for g in state.get_column("last_article_gaps").to_list()] == [True] * 3
    assert state.get_column("n_purchases").to_list() == [3, 1, None]
    assert state.get_column("product_type_name_values").to_list()[0] == ["Dress", "Sweater"]


def test_vocabulary_by_frequency_then_value() -> None:
    values = pl.Series("v", ["b", "a", "c", "b", "a", "d", None, ""])
    assert vocabulary(values) == ["a", "b", "c", "d"]
    assert vocabulary(values, min_count=2) == ["a", "b"]
    assert vocabulary(values, max_size=3) == ["a", "b", "c"]
    assert vocabulary(pl.Series("l", [[3, 1], [1]])) == [1, 3]


def test_catalogue_rows() -> None:
    rows = pl.DataFrame({"article_id": [3, 9, 1]})
    assert catalogue_rows(rows, towerdata.articles()).tolist() == [2, -1, 0]


def test_training_dataset_is_deterministic_and_points_into_the_catalogue(schema: TowerFeatures) -> None:
    rows, articles = towerdata.rows(), towerdata.articles()

    def batches(seed: int) -> list[dict[str, np.ndarray]]:
        ds = training_dataset(rows, schema, articles, batch_size=2, seed=seed)
        return [{k: v.numpy() for k, v in b.items()} for b in ds]

    first, again = batches(1), batches(1)
    assert [b[ARTICLE_INDEX].tolist() for b in first] == [b[ARTICLE_INDEX].tolist() for b in again]
    assert sum(len(b[ARTICLE_INDEX]) for b in first) == 5
    order = np.concatenate([b[ARTICLE_INDEX] for b in first])
    assert sorted(order.tolist()) == [0, 0, 1, 1, 2]
    batch = first[0]
    assert set(batch) == {*schema.query_inputs(), ARTICLE_INDEX}
    assert batch["last_article_ids"].shape == (2, 4) and batch["customer_id"].dtype == object
    # decoded strings match the rows they came from
    customers = np.concatenate([b["customer_id"] for b in first]).astype(str).tolist()
    bought = dict(zip(order.tolist(), customers, strict=True))
    assert bought[2] == "c1"  # article 3 (catalogue row 2) was bought by c1 only


def test_dictionary_encoding_with_padding_among_values_is_stable() -> None:
    """Many distinct values beside the padding string: the dictionary must be built from one unique() call."""
    from recsys.training.retrieval_data import PAD_STRING, _dictionary_encode

    values = pl.Series([PAD_STRING, *[f"v{i}" for i in range(300)], None, "v7"])
    for _ in range(20):  # unique() order varies between calls; the encoding must not
        codes, dictionary = _dictionary_encode(values)
        assert dictionary[0] == PAD_STRING and len(set(dictionary)) == len(dictionary) == 301
        assert [dictionary[c] for c in codes[-3:]] == ["v299", PAD_STRING, "v7"] and dictionary[codes[0]] == PAD_STRING
