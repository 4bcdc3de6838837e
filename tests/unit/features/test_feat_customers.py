"""The customers group: categories cleaned, numerics with missing indicators, age groups, storable names."""

from __future__ import annotations

import polars as pl
import pytest

from recsys.data.dataset import FeatureSpec
from recsys.errors import SpecError
from recsys.features import MISSING, age_group, customer_features

HM_LIKE = {
    "FN": FeatureSpec("numeric"),
    "club_member_status": FeatureSpec("categorical"),
    "fashion_news_frequency": FeatureSpec("categorical"),
    "age": FeatureSpec("numeric"),
}


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (15.0, "<16"),
        (16.0, "16-24"),
        (24.9, "16-24"),  # fractions round down: 24.9 years is still 24
        (25.0, "25-34"),
        (34.0, "25-34"),
        (35.0, "35-44"),
        (44.0, "35-44"),
        (45.0, "45-54"),
        (54.0, "45-54"),
        (55.0, "55-64"),
        (64.0, "55-64"),
        (65.0, "65+"),
        (99.0, "65+"),
        (None, "unknown"),
        (float("nan"), "unknown"),
        (130.0, "unknown"),  # not a possible age
        (-1.0, "unknown"),
    ],
)
def test_age_group_boundaries(age: float | None, group: str) -> None:
    df = pl.DataFrame({"age": [age]}, schema={"age": pl.Float64})
    assert df.select(age_group(pl.col("age"))).item() == group


def test_categories_are_normalised_and_missing_is_a_value_of_its_own() -> None:
    customers = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            # H&M writes both "None" and "NONE"; whitespace and case differences are the same category
            "fashion_news_frequency": ["NONE", "None", " none ", None, ""],
            "club_member_status": ["ACTIVE", "LEFT  CLUB", "left club", "PRE-CREATE", None],
        }
    )
    out = customer_features(customers, HM_LIKE)
    assert out["fashion_news_frequency"].to_list() == ["NONE", "NONE", "NONE", MISSING, MISSING]
    assert out["club_member_status"].to_list() == ["ACTIVE", "LEFT CLUB", "LEFT CLUB", "PRE-CREATE", MISSING]
    assert out["club_member_status"].null_count() == 0


def test_numerics_keep_nulls_and_gain_an_indicator_and_names_are_lowercased() -> None:
    customers = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "FN": [1.0, None, float("nan"), 1.0],
            "age": [24.0, 130.0, None, 65.0],
        }
    )
    out = customer_features(customers, HM_LIKE)
    assert out.columns == ["customer_id", "fn", "fn_missing", "age", "age_missing", "age_group"]
    assert out["fn"].to_list() == [1.0, None, None, 1.0]  # NaN is missing too
    assert out["fn_missing"].to_list() == [0, 1, 1, 0]
    assert out["fn_missing"].dtype == pl.Int8
    assert out["age"].to_list() == [24.0, None, None, 65.0]  # 130 is not an age: missing
    assert out["age_missing"].to_list() == [0, 1, 1, 0]
    assert out["age_group"].to_list() == ["16-24", "unknown", "unknown", "65+"]


def test_one_row_per_customer_in_input_order_and_untyped_columns_dropped() -> None:
    customers = pl.DataFrame({"customer_id": ["b", "a"], "age": [30.0, 50.0], "untyped": [1, 2]})
    out = customer_features(customers, {"age": FeatureSpec("numeric")})
    assert out["customer_id"].to_list() == ["b", "a"]
    assert "untyped" not in out.columns
    assert out["age_group"].to_list() == ["25-34", "45-54"]


def test_no_age_column_no_age_group_and_multi_categoricals_stay_lists() -> None:
    customers = pl.DataFrame(
        {"customer_id": ["a", "b"], "tags": [[" x ", "", "y"], None]},
        schema={"customer_id": pl.String, "tags": pl.List(pl.String)},
    )
    out = customer_features(customers, {"tags": FeatureSpec("multi_categorical", "|")})
    assert "age_group" not in out.columns
    assert out["tags"].to_list() == [["X", "Y"], []]  # cleaned, upper-cased, blanks dropped; missing = empty


def test_two_columns_with_the_same_storable_name_fail_clearly() -> None:
    customers = pl.DataFrame({"customer_id": ["a"], "FN": [1.0], "fn": [1.0]})
    with pytest.raises(SpecError, match="'FN' and 'fn' both become 'fn'"):
        customer_features(customers, {"FN": FeatureSpec("numeric"), "fn": FeatureSpec("numeric")})
