"""Training checks the data set it is given against the store before any work (bug: `ranking` with the default
synthetic:small on a MovieLens store generated the 28 MB data set, trained the ranker, then failed on the oracle;
with another data set's spec it registered a ranker blind to the store's features)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from recsys.config import load_settings
from recsys.data.dataset import FeatureSpec
from recsys.data.sources import dataset_features
from recsys.data.spec import SPECS_DIR, load_spec
from recsys.pipeline.groups import ARTICLES, CUSTOMERS, TRANSACTIONS
from recsys.store import Project, connect
from recsys.training.ranking_job import train_ranking
from recsys.training.retrieval_job import check_store_features
from recsys.training.splits import TrainingDataError

STORE = {  # what the feature pipeline stored from a MovieLens-like spec
    CUSTOMERS: pl.DataFrame({"customer_id": [1, 2]}),
    ARTICLES: pl.DataFrame({"article_id": [10, 11], "genres": [["Drama"], ["Comedy"]]}),
    TRANSACTIONS: pl.DataFrame(
        {"customer_id": [1, 2], "article_id": [10, 11], "t_dat": [datetime(2020, 1, 1)] * 2, "rating": [4.0, 3.0]}
    ),
}
SAME = {"transactions": {"rating": FeatureSpec("numeric")}, "articles": {"genres": FeatureSpec("multi_categorical")}}
OTHER = {"transactions": {}, "articles": {"Release Year": FeatureSpec("numeric")}, "customers": {}}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = connect(load_settings(backend="local", home=tmp_path / "home"))
    for group, frame in STORE.items():
        group.get_or_create(project.feature_store).insert(frame)
    return project


def test_the_store_features_are_checked_from_the_groups_schemas(project: Project) -> None:
    check_store_features(project, SAME)
    with pytest.raises(TrainingDataError) as exc:
        check_store_features(project, OTHER, "other/spec.yaml")
    assert str(exc.value) == (
        "dataset other/spec.yaml: its spec's features ['articles.Release Year'] are not in the feature store: was "
        "the store built from another data set? Pass the --dataset the feature pipeline used"
    )


def test_a_store_without_groups_is_left_to_the_data_loading_message(tmp_path: Path) -> None:
    check_store_features(connect(load_settings(backend="local", home=tmp_path / "empty")), OTHER)


def test_ranking_refuses_another_data_sets_spec_before_looking_for_a_run(project: Project) -> None:
    # The store holds no run: the old code got as far as looking for one (and, with a run, trained the ranker).
    with pytest.raises(TrainingDataError, match=r"\['articles.Release Year'\] are not in the feature store"):
        train_ranking(project, OTHER)


def test_synthetic_features_are_read_without_generating_the_data_set(tmp_path: Path) -> None:
    home = tmp_path / "home"
    features = dataset_features("synthetic:tiny", load_settings(backend="local", home=home))
    assert features == load_spec(SPECS_DIR / "synthetic.yaml").feature_specs()
    assert not (home / "data").exists() or not any((home / "data").iterdir())  # nothing written into the home
