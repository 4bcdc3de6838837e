"""The ranker's feature function on hand-made rows, and the same rows whether built per request or in batch."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest
import rankdata
from towerdata import Tiny

from recsys.data.dataset import FeatureSpec
from recsys.features.article_popularity import article_popularity_as_of
from recsys.training.ranking_data import WEEK, week_state
from recsys.training.ranking_features import (
    RankerSchema,
    candidate_features,
    ranker_schema,
)

D = datetime
AS_OF = D(2020, 1, 15)
FEATURES = {
    "customers": {
        "club_member_status": FeatureSpec("categorical"),
        "age": FeatureSpec("numeric"),
        "nickname": FeatureSpec("text"),  # text: not a ranker feature
        "postal_code": FeatureSpec("categorical"),  # id-like: not a ranker feature
    },
    "articles": {
        "product_code": FeatureSpec("categorical"),  # id-like
        "product_type_name": FeatureSpec("categorical"),
        "colour_group_name": FeatureSpec("categorical"),
        "prod_name": FeatureSpec("text"),
        "weight": FeatureSpec("numeric"),
    },
}


def customers() -> pl.DataFrame:
    """c1 bought 3 (latest), 1, 3 again; c2 has attributes but no history; c3 is unknown (cold start)."""
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "club_member_status": ["ACTIVE", None],
            "age": [30.0, None],
            "age_group": ["25-34", "unknown"],
            "nickname": ["Cee", None],
            "postal_code": ["p1", "p2"],
            "last_article_ids": [[3, 1, 3], None],
            "last_article_gaps": [[0, 2, 6], None],
            "n_purchases": [3, None],
            "n_units": [3, None],
            "n_distinct_articles": [2, None],
            "last_purchase": [D(2020, 1, 10), None],
            "avg_price": [20.0, None],
            "price_index": [1.1, None],
            "product_type_name_values": [["Dress", "Sweater"], None],
            "product_type_name_shares": [[2 / 3, 1 / 3], None],
        },
        schema_overrides={
            "last_article_ids": pl.List(pl.Int64),
            "last_article_gaps": pl.List(pl.Int32),
            "n_purchases": pl.Int32,
        },
    )


def articles() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "article_id": [1, 2, 3, 4],
            "product_code": ["p1", "p2", "p3", "p4"],
            "product_type_name": ["Dress", "Sweater", "Dress", "Trousers"],
            "colour_group_name": ["Black", "White", None, "Blue"],
            "prod_name": ["Luna dress", "Moss sweater", "Star dress", "Sky trousers"],
            "weight": [1.0, 2.0, None, 4.0],
            "units_7d": [5, 0, 1, 2],
            "units_30d": [9, 1, 1, 2],
            "units_prev_7d": [1, 0, 0, 0],
            "trend": [3.0, 1.0, 2.0, 3.0],
            "article_price": [10.0, 30.0, 40.0, None],
        }
    )


def candidates() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2", "c3"],
            "article_id": [3, 2, 4, 1, 2],
            "retrieval_score": pl.Series([0.9, 0.8, 0.7, 0.5, 0.4], dtype=pl.Float32),
            "retrieval_rank": pl.Series([0, 1, 2, 0, 0], dtype=pl.Int32),
            WEEK: [AS_OF] * 5,  # an extra key: passed through
        }
    )


@pytest.fixture
def schema() -> RankerSchema:
    return ranker_schema(FEATURES, customers(), articles())


def test_schema_follows_the_spec_and_the_columns(schema: RankerSchema) -> None:
    assert schema.features == (
        "retrieval_score",
        "retrieval_rank",
        "club_member_status",
        "age_group",
        "age",
        "n_purchases",
        "n_units",
        "n_distinct_articles",
        "days_since_last_purchase",
        "avg_price",
        "price_index",
        "product_type_name",
        "colour_group_name",
        "weight",
        "units_7d",
        "units_30d",
        "units_prev_7d",
        "trend",
        "repurchase_count",
        "repurchase_position",
        "repurchase_days",
        "product_type_name_share",
        "article_price",
        "price_ratio",
    )
    assert schema.categorical == ("club_member_status", "age_group", "product_type_name", "colour_group_name")
    assert RankerSchema.from_dict(schema.to_dict()) == schema
    assert "age" not in ranker_schema(FEATURES, customers(), articles(), exclude=["age"]).features
    bare = ranker_schema(FEATURES, customers().select("customer_id", "age"), articles().select("article_id"))
    assert bare.features == ("retrieval_score", "retrieval_rank", "age")
    clash = articles().with_columns(pl.lit(1.0).alias("age"))
    with pytest.raises(ValueError, match="age"):
        ranker_schema({**FEATURES, "articles": {"age": FeatureSpec("numeric")}}, customers(), clash)


def test_features_by_hand(schema: RankerSchema) -> None:
    out = candidate_features(candidates(), customers(), articles(), AS_OF, schema)
    assert out.columns == ["customer_id", "article_id", WEEK, *schema.features]
    assert out.get_column(WEEK).to_list() == [AS_OF] * 5
    rows = {(r["customer_id"], r["article_id"]): r for r in out.to_dicts()}
    c1_3, c1_2, c1_4, c2_1, c3_2 = (rows[k] for k in [("c1", 3), ("c1", 2), ("c1", 4), ("c2", 1), ("c3", 2)])
    # repurchase: 3 is in c1's list twice, most recently at position 0; 2 and 4 never
    assert (c1_3["repurchase_count"], c1_3["repurchase_position"]) == (2, 0)
    assert (c1_2["repurchase_count"], c1_2["repurchase_position"]) == (0, None)
    # how long ago: 5 days since c1's last purchase (10 Jan) plus the latest purchase's gap of 0
    assert (c1_3["repurchase_days"], c1_2["repurchase_days"], c3_2["repurchase_days"]) == (5, None, None)
    # affinity: c1's share of the candidate's product type; 0 for a type never bought; null without history
    assert c1_3["product_type_name_share"] == pytest.approx(2 / 3)
    assert c1_2["product_type_name_share"] == pytest.approx(1 / 3)
    assert c1_4["product_type_name_share"] == 0.0
    assert c2_1["product_type_name_share"] is None and c3_2["product_type_name_share"] is None
    # recency is recomputed at as_of, not read from the stale history row
    assert c1_3["days_since_last_purchase"] == 5
    # price fit: article price / the customer's average price; null when either is unknown
    assert c1_3["price_ratio"] == pytest.approx(40.0 / 20.0) and c1_3["article_price"] == 40.0
    assert c1_4["price_ratio"] is None and c2_1["price_ratio"] is None
    # attributes: categoricals never null, numerics null when missing
    assert (c1_3["club_member_status"], c2_1["club_member_status"], c3_2["club_member_status"]) == (
        "ACTIVE",
        "MISSING",
        "MISSING",
    )
    assert c1_3["colour_group_name"] == "MISSING" and c1_3["weight"] is None and c1_2["weight"] == 2.0
    assert c3_2["age"] is None and c3_2["n_purchases"] is None and c3_2["repurchase_count"] == 0
    assert (c1_3["units_7d"], c1_3["trend"], c1_3["retrieval_rank"]) == (1, 2.0, 0)
    numeric = [f for f in schema.features if f not in schema.categorical]
    assert all(out.schema[f] == pl.Float32 for f in numeric)
    assert all(out.schema[f] == pl.String for f in schema.categorical)


def test_repurchase_days_count_from_as_of_to_the_latest_purchase_of_the_candidate() -> None:
    history = pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "last_article_ids": [[7, 3, 7], []],
            "last_article_gaps": [[0, 4, 9], []],
            "last_purchase": [D(2020, 1, 10), D(2020, 1, 1)],
        },
        schema_overrides={"last_article_ids": pl.List(pl.Int64), "last_article_gaps": pl.List(pl.Int32)},
    )
    schema = ranker_schema({}, history, articles().select("article_id"))
    assert schema.recency and schema.features[-1] == "repurchase_days"
    cands = pl.DataFrame({"customer_id": ["c1"] * 3 + ["c2", "c9"], "article_id": [3, 7, 2, 3, 3]})
    cands = cands.with_columns(retrieval_score=pl.lit(0.5, pl.Float32), retrieval_rank=pl.lit(0, pl.Int32))
    out = candidate_features(cands, history, articles().select("article_id"), AS_OF, schema)
    # 3 bought 4 days before the last purchase (5 days before as_of); 7 twice, latest on the last purchase day
    assert out.get_column("repurchase_days").to_list() == [9.0, 5.0, None, None, None]
    # a day later, every count is one more: the history row is not rewritten
    later = candidate_features(cands, history, articles().select("article_id"), D(2020, 1, 16), schema)
    assert later.get_column("repurchase_days").to_list() == [10.0, 6.0, None, None, None]
    without = ranker_schema({}, history.drop("last_article_gaps"), articles().select("article_id"))
    assert without.repurchase and not without.recency and "repurchase_days" not in without.features


def test_cold_start_and_bad_inputs(schema: RankerSchema) -> None:
    # the online store found nobody: an empty frame, even without the columns, means nulls
    cold = candidate_features(
        candidates(), pl.DataFrame({"customer_id": []}, {"customer_id": pl.String}), articles(), AS_OF, schema
    )
    assert cold.get_column("n_purchases").null_count() == 5
    assert cold.get_column("club_member_status").to_list() == ["MISSING"] * 5
    with pytest.raises(ValueError, match="price_index"):
        candidate_features(candidates(), customers().drop("price_index"), articles(), AS_OF, schema)
    with pytest.raises(ValueError, match="retrieval_rank"):
        candidate_features(candidates().drop("retrieval_rank"), customers(), articles(), AS_OF, schema)
    with pytest.raises(ValueError, match="one row per id"):
        candidate_features(candidates(), pl.concat([customers(), customers()]), articles(), AS_OF, schema)


def test_multi_categorical_attributes_become_one_category() -> None:
    spec = {"articles": {"genres": FeatureSpec("multi_categorical")}}
    arts = pl.DataFrame({"article_id": [1, 2], "genres": [["Drama", "Comedy"], None]})
    schema = ranker_schema(spec, pl.DataFrame({"customer_id": ["c1"]}), arts)
    cands = candidates().filter(pl.col("article_id") <= 2)
    out = candidate_features(cands, pl.DataFrame({"customer_id": ["c1"]}), arts, AS_OF, schema)
    assert dict(zip(out["article_id"], out["genres"], strict=True)) == {1: "Comedy|Drama", 2: "MISSING"}


def test_article_prices_are_point_in_time() -> None:
    tx = pl.DataFrame(
        {
            "article_id": [1, 1, 2, 1],
            "t_dat": [D(2020, 1, 1), D(2020, 1, 2), D(2020, 1, 3), D(2020, 1, 15)],
            "price": [10.0, 20.0, None, 99.0],
            "quantity": [1, 3, 1, 1],
        }
    )
    catalogue = pl.DataFrame({"article_id": [1, 2, 3]})
    prices = dict(
        article_popularity_as_of(tx, catalogue, D(2020, 1, 15, 12)).select("article_id", "article_price").rows()
    )
    assert prices == {1: pytest.approx((10 + 60) / 4), 2: None, 3: None}  # the Jan 15 sale is not seen


def test_per_request_rows_equal_the_training_rows(tiny: Tiny) -> None:
    """Serving builds one customer's rows from that customer's online row and the candidates' article rows:
    the same function on those small frames gives exactly the training rows."""
    built = rankdata.built(tiny, "baseline")
    test = built.data.test
    state, catalogue = week_state(built.transactions, tiny.customers, tiny.articles, built.data.weeks.test)
    for customer in test.get_column("customer_id").unique().sort().head(5):
        rows = test.filter(pl.col("customer_id") == customer)
        keys = rows.select("customer_id", "article_id", "retrieval_score", "retrieval_rank")
        one = candidate_features(
            keys,
            state.filter(pl.col("customer_id") == customer),
            catalogue.join(keys.select("article_id"), on="article_id", how="semi"),
            built.data.weeks.test,
            built.data.schema,
        )
        assert one.equals(rows.select(one.columns))
