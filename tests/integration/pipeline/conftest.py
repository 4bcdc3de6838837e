"""Fixtures for the feature pipeline tests: a hand-made data set where every answer is known, and stores."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from recsys.config import load_settings
from recsys.data.dataset import Dataset, FeatureSpec
from recsys.pipeline.groups import FEATURE_GROUPS
from recsys.store import Project, connect

D = datetime
CATEGORICAL = FeatureSpec("categorical")


def hand_made() -> Dataset:
    """Two customers, three articles, five purchase rows over ten days.

    c1 buys a1 on Jan 1, a2 and a3 on Jan 3, a1 again on Jan 10; c2 buys a2 on Jan 3 (two rows: two units).
    """
    customers = pl.DataFrame({"customer_id": ["c1", "c2"], "age": [30.0, None], "club_member_status": ["ACTIVE", None]})
    articles = pl.DataFrame(
        {
            "article_id": [1, 2, 3],
            "product_type_name": ["Dress", "Sweater", "Dress"],
            "index_group_name": ["Ladieswear", "Ladieswear", "Divided"],
            "colour_group_name": ["Black", "White", "Black"],
        }
    )
    transactions = pl.DataFrame(
        {
            "t_dat": [D(2020, 1, 1), D(2020, 1, 3), D(2020, 1, 3), D(2020, 1, 3), D(2020, 1, 3), D(2020, 1, 10)],
            "customer_id": ["c1", "c1", "c1", "c2", "c2", "c1"],
            "article_id": [1, 2, 3, 2, 2, 1],
            "price": [10.0, 20.0, 30.0, 20.0, 20.0, 12.0],
            "quantity": [1, 1, 1, 1, 1, 1],
        }
    )
    features = {
        "customers": {"age": FeatureSpec("numeric"), "club_member_status": CATEGORICAL},
        "articles": {name: CATEGORICAL for name in ("product_type_name", "index_group_name", "colour_group_name")},
    }
    return Dataset("hand-made", customers, articles, transactions, features)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return connect(load_settings(backend="local", home=tmp_path / "home"))


def snapshot(project: Project) -> dict[str, tuple[int, pl.DataFrame, pl.DataFrame | None]]:
    fs = project.feature_store
    state = {}
    for group in FEATURE_GROUPS:
        fg = group.get(fs)
        online = fg.read(online=True).sort(group.primary_key) if group.online_enabled else None
        state[group.name] = (len(fg.commit_details()), fg.read(), online)
    return state


def assert_unchanged(project: Project, before: dict) -> None:
    after = snapshot(project)
    for name, (commits, offline, online) in before.items():
        assert after[name][0] == commits, f"{name} got a new commit"
        assert_frame_equal(after[name][1], offline)
        if online is not None:
            assert_frame_equal(after[name][2], online)
