"""The ``tiny`` synthetic preset through the local feature store: the frames the two-tower model trains on.

Built once per session (a few seconds): 2k customers, 1k articles, ~40k daily purchases over two years. The
last 7 days are the test week and the 7 days before them the validation week (design §6).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from towerdata import Tiny

from recsys.config import load_settings
from recsys.data.sources import load_dataset
from recsys.pipeline.feature_job import backfill
from recsys.pipeline.views import CUSTOMERS_VIEW, RETRIEVAL_VIEW
from recsys.store import connect


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    settings = load_settings(backend="local", home=tmp_path_factory.mktemp("tiny_home"))
    ds = load_dataset("synthetic:tiny", settings)
    project = connect(settings)
    backfill(project, ds)
    fs = project.feature_store
    view = fs.get_feature_view(*RETRIEVAL_VIEW)
    rows, _ = view.training_data()
    test_start = rows.get_column("t_dat").max() - timedelta(days=6)
    val_start = test_start - timedelta(days=7)
    train, val, test, *_ = view.train_validation_test_split(validation_start=val_start, test_start=test_start)
    articles, _ = fs.get_feature_view("articles", 1).training_data()
    customers, _ = fs.get_feature_view(*CUSTOMERS_VIEW).training_data()
    return Tiny(ds.features, train, val, test, articles, customers, val_start, test_start)
