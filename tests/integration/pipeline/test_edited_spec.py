"""A run with a data set whose columns differ from the stored groups' (an edited spec, another data set): one clear
error naming every group and column that changed, and a store exactly as it was (no group half-replaced)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import polars as pl
import pytest

from recsys.data.dataset import Dataset, FeatureSpec
from recsys.pipeline.feature_job import FeatureOptions, backfill, incremental
from recsys.store import Project
from recsys.store.errors import SchemaError
from tests.integration.pipeline.conftest import assert_unchanged, hand_made, snapshot

NOW = datetime(2020, 2, 1)


def drop_article_feature(ds: Dataset) -> Dataset:
    features = {
        **ds.features,
        "articles": {k: v for k, v in ds.features["articles"].items() if k != "colour_group_name"},
    }
    return replace(ds, articles=ds.articles.drop("colour_group_name"), features=features)


def add_customer_feature(ds: Dataset) -> Dataset:
    features = {**ds.features, "customers": {**ds.features["customers"], "postal_code": FeatureSpec("categorical")}}
    customers = ds.customers.with_columns(pl.Series("postal_code", ["A1", "B2"]))
    return replace(ds, customers=customers, features=features)


def string_article_ids(ds: Dataset) -> Dataset:
    as_text = pl.col("article_id").cast(pl.String)
    return replace(ds, articles=ds.articles.with_columns(as_text), transactions=ds.transactions.with_columns(as_text))


EDITS: dict[str, tuple[Callable[[Dataset], Dataset], list[str]]] = {
    "a feature dropped": (
        drop_article_feature,
        ["feature group 'articles' v1: missing column(s) ['colour_group_name']"],
    ),
    "a feature added": (add_customer_feature, ["feature group 'customers' v1: new column(s) ['postal_code']"]),
    "ids of another type": (
        string_article_ids,
        [
            "feature group 'articles' v1: retyped column(s) 'article_id' String (stored Int64)",
            "feature group 'transactions' v1: retyped column(s) 'article_id' String (stored Int64)",
        ],
    ),
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_an_edited_spec_is_refused_before_anything_is_written(project: Project, edit: str) -> None:
    change, named = EDITS[edit]
    backfill(project, hand_made(), FeatureOptions(now=NOW, until=datetime(2020, 1, 5)))
    before = snapshot(project)
    for run, fix in ((backfill, "--home NEW_FOLDER"), (incremental, "with the spec the store was backfilled with")):
        # incremental: the Jan 10 purchase is new, so it would write every group
        with pytest.raises(SchemaError) as info:
            run(project, change(hand_made()), FeatureOptions(now=NOW, on_bad_rows="quarantine"))
        message = str(info.value)
        assert "\n" not in message and "nothing was written" in message and fix in message, message
        assert all(part in message for part in named), message
        assert_unchanged(project, before)


def test_the_same_spec_again_passes_the_check(project: Project) -> None:
    """The snapshot groups' schemas are computed from a sample of rows: they must equal the full computation's."""
    backfill(project, hand_made(), FeatureOptions(now=NOW, until=datetime(2020, 1, 5)))
    assert incremental(project, hand_made(), FeatureOptions(now=NOW)).written["transactions"] == 1
    assert backfill(project, hand_made(), FeatureOptions(now=NOW)).written["transactions"] == 5
