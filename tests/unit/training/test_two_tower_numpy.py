"""The query tower translated to numpy (the query predictor's path) computes what the saved TensorFlow graph does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import towerdata

from recsys.serving.numpy_tower import NumpyTower, UnsupportedLayer, fastest_tower
from recsys.training.retrieval_data import candidate_inputs, query_inputs
from recsys.training.two_tower import TwoTowerConfig, build_model, load_two_tower, save_two_tower

CONFIG = TwoTowerConfig(
    embedding_dim=8,
    feature_embedding_dim=4,
    text_embedding_dim=4,
    hidden_units=(16, 8),
    batch_size=4,
    history_length=4,
    uniform_negatives=0,
    use_customer_id=True,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained one epoch (weights away from their initial values), saved as serving loads it."""
    model = build_model(CONFIG, towerdata.FEATURES, towerdata.rows(), towerdata.articles())
    model.fit(model.dataset(towerdata.rows(), towerdata.articles(), batch_size=5, seed=0), verbose=0)
    return save_two_tower(model, tmp_path_factory.mktemp("towers") / "run")


def _query_rows() -> pl.DataFrame:
    """The training rows plus strangers: an unknown customer with an unknown and a known article in the history,
    one with an empty history and missing numbers, and a category value never seen."""
    rows = towerdata.rows()
    strangers = rows.head(2).with_columns(
        customer_id=np.array(["new-1", "new-2"]),
        club_member_status=np.array(["NEVER SEEN", "MISSING"]),
        age=pl.Series([None, 41.0]),
        last_article_ids=pl.Series([[999, 1], []], dtype=pl.List(pl.Int64)),
        product_type_name_values=pl.Series([["Dress", "Hat"], None]),
        product_type_name_shares=pl.Series([[0.75, 0.25], None]),
    )
    return pl.concat([rows, strangers], how="vertical_relaxed")


def test_numpy_query_tower_equals_the_saved_graph(saved: Path) -> None:
    query, _, schema = load_two_tower(saved)
    inputs = query_inputs(_query_rows(), schema)
    expected = query(inputs)
    tower = NumpyTower.load(saved / "query")
    got = tower(inputs)
    assert got.dtype == np.float32 and got.shape == expected.shape == (7, CONFIG.embedding_dim)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # rows are independent: one row alone gives its row of the batch
    one = {k: v[5:6] for k, v in inputs.items()}
    np.testing.assert_allclose(tower(one)[0], expected[5], rtol=1e-5, atol=1e-6)
    # the customer id embedding is used: two customers differing only in id get different vectors
    twins = {k: np.repeat(v[4:5], 2, axis=0) for k, v in inputs.items()}
    twins["customer_id"] = np.array(["c1", "new-9"], dtype=object)
    assert not np.allclose(tower(twins)[0], tower(twins)[1])


def test_a_tower_with_text_is_not_translated_and_the_graph_is_kept(saved: Path) -> None:
    _, candidate, schema = load_two_tower(saved)
    with pytest.raises(UnsupportedLayer, match="TextVectorization"):
        NumpyTower.load(saved / "candidate")
    probe = candidate_inputs(towerdata.articles(), schema)
    said: list[str] = []
    assert fastest_tower(saved / "candidate", candidate, probe, said.append) is candidate
    assert len(said) == 1 and "TextVectorization" in said[0]


def test_the_numpy_tower_is_used_only_when_it_matches_the_graph(saved: Path) -> None:
    query, _, schema = load_two_tower(saved)
    probe = query_inputs(_query_rows(), schema)
    said: list[str] = []
    assert isinstance(fastest_tower(saved / "query", query, probe, said.append), NumpyTower) and not said

    def other_graph(inputs: dict[str, np.ndarray]) -> np.ndarray:  # e.g. a tower that changed under the loader
        return query(inputs)[:, ::-1].copy()

    assert fastest_tower(saved / "query", other_graph, probe, said.append) is other_graph
    assert len(said) == 1 and "differs" in said[0]
