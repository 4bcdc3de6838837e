"""The articles group: cleaned attributes and the description text built from the spec's types."""

from __future__ import annotations

import polars as pl
import pytest

from recsys.data.dataset import FeatureSpec
from recsys.features import MISSING, article_features

# In H&M's spec order (a subset): the code is id-like and stays out of the description.
SPEC = {
    "product_code": FeatureSpec("categorical"),
    "prod_name": FeatureSpec("text"),
    "product_type_name": FeatureSpec("categorical"),
    "colour_group_name": FeatureSpec("categorical"),
    "index_name": FeatureSpec("categorical"),
    "index_group_name": FeatureSpec("categorical"),
    "section_name": FeatureSpec("categorical"),
    "detail_desc": FeatureSpec("text"),
}


def _articles(**overrides: list) -> pl.DataFrame:
    base = {
        "article_id": [108775015],
        "product_code": ["0108775"],
        "prod_name": ["Luna t-shirt"],
        "product_type_name": ["T-shirt"],
        "colour_group_name": ["Black"],
        "index_name": ["Ladieswear"],
        "index_group_name": ["Ladieswear"],
        "section_name": ["Womens Everyday Collection"],
        "detail_desc": ["T-shirt in organic cotton."],
    }
    return pl.DataFrame({**base, **overrides}, schema={k: pl.Int64 if k == "article_id" else pl.String for k in base})


def test_description_reads_name_then_categories_then_details() -> None:
    out = article_features(_articles(), SPEC)
    # name. distinct categories (Ladieswear once, no product code). detail (its own full stop kept once).
    assert out["description"].item() == (
        "Luna t-shirt. T-shirt, Black, Ladieswear, Womens Everyday Collection. T-shirt in organic cotton."
    )


def test_missing_parts_are_left_out_of_the_description_but_kept_as_missing_categories() -> None:
    out = article_features(_articles(colour_group_name=[None], detail_desc=["  "], prod_name=[None]), SPEC)
    assert out["colour_group_name"].item() == MISSING
    assert out["detail_desc"].item() is None  # blank text is missing text
    assert out["description"].item() == "T-shirt, Ladieswear, Womens Everyday Collection."


def test_an_article_without_any_words_gets_a_fallback_description() -> None:
    empty = {col: [None] for col in SPEC}
    out = article_features(_articles(**empty), SPEC)
    assert out["description"].item() == "Article 108775015"
    assert out["product_type_name"].item() == MISSING


def test_description_columns_override_the_default_order() -> None:
    out = article_features(_articles(), SPEC, description_columns=["prod_name", "colour_group_name"])
    assert out["description"].item() == "Luna t-shirt. Black."
    with pytest.raises(ValueError, match="not text or categorical"):
        article_features(_articles(), SPEC, description_columns=["nope"])


def test_multi_categorical_articles_as_in_movielens() -> None:
    movies = pl.DataFrame(
        {
            "article_id": [1, 2],
            "title": ["Toy Story (1995)", "Heat (1995)"],
            "genres": [["Adventure", " Animation"], None],
        },
        schema={"article_id": pl.Int64, "title": pl.String, "genres": pl.List(pl.String)},
    )
    spec = {"title": FeatureSpec("text"), "genres": FeatureSpec("multi_categorical", "|")}
    out = article_features(movies, spec)
    assert out["genres"].to_list() == [["Adventure", "Animation"], []]  # kept as lists, case kept
    assert out["description"].to_list() == ["Toy Story (1995). Adventure, Animation.", "Heat (1995)."]


def test_numeric_article_features_get_a_missing_indicator() -> None:
    df = pl.DataFrame({"article_id": [1, 2], "Weight": [0.5, None]})
    out = article_features(df, {"Weight": FeatureSpec("numeric")})
    assert out.columns == ["article_id", "weight", "weight_missing", "description"]
    assert out["weight_missing"].to_list() == [0, 1]
    assert out["description"].to_list() == ["Article 1", "Article 2"]
