"""The towers on hand-made frames: shapes, unit vectors for unseen ids, masked history, the loss, save/reload."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import towerdata

from recsys.training.retrieval_data import ARTICLE_INDEX, PAD_INT, candidate_inputs, query_inputs
from recsys.training.two_tower import (
    PaddingMask,
    TwoTowerConfig,
    TwoTowerModel,
    WeightedMean,
    batch_probability,
    build_model,
    load_two_tower,
    save_two_tower,
    tower_function,
)

CONFIG = TwoTowerConfig(
    embedding_dim=8,
    feature_embedding_dim=4,
    text_embedding_dim=4,
    hidden_units=(16,),
    batch_size=4,
    history_length=4,
    uniform_negatives=0,  # the loss tests below work the batch's candidates out by hand
)


@pytest.fixture(scope="module")
def model() -> TwoTowerModel:
    return build_model(CONFIG, towerdata.FEATURES, towerdata.rows(), towerdata.articles())


def _norms(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x, axis=1)


def test_towers_give_unit_vectors_of_one_size(model: TwoTowerModel) -> None:
    assert model.schema is not None
    q = tower_function(model.query_model)(query_inputs(towerdata.rows(), model.schema))
    c = tower_function(model.candidate_model)(candidate_inputs(towerdata.articles(), model.schema))
    assert q.shape == (5, 8) and c.shape == (4, 8)
    np.testing.assert_allclose(_norms(q), 1.0, rtol=1e-5)
    np.testing.assert_allclose(_norms(c), 1.0, rtol=1e-5)


def test_unseen_customers_and_articles_get_finite_unit_vectors(model: TwoTowerModel) -> None:
    assert model.schema is not None
    strangers = (
        towerdata.rows()
        .head(2)
        .with_columns(
            customer_id=np.array(["new-1", "new-2"]),
            club_member_status=np.array(["NEVER SEEN", "MISSING"]),
            # an unknown article in the history, and an empty history
            last_article_ids=pl.Series([[999, 1], []], dtype=pl.List(pl.Int64)),
        )
    )
    q = tower_function(model.query_model)(query_inputs(strangers, model.schema))
    assert np.isfinite(q).all()
    np.testing.assert_allclose(_norms(q), 1.0, rtol=1e-5)
    # articles 4 (never bought) and 5 (a new id) both fall in the id OOV bucket; their content tells them apart
    new = (
        towerdata.articles()
        .tail(1)
        .with_columns(
            article_id=np.array([5]),
            product_type_name=np.array(["Dress"]),
            description=np.array(["Luna dress. Dress."]),
        )
    )
    catalogue = towerdata.articles().vstack(new)
    c = tower_function(model.candidate_model)(candidate_inputs(catalogue, model.schema))
    assert np.isfinite(c).all()
    np.testing.assert_allclose(_norms(c), 1.0, rtol=1e-5)
    assert not np.allclose(c[3], c[4])


def test_weighted_mean_masks_padding() -> None:
    emb = np.array([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]], [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]]], np.float32)
    ids = np.array([[4, 6, PAD_INT], [PAD_INT, PAD_INT, PAD_INT]])
    mask = PaddingMask(PAD_INT)(ids)
    out = WeightedMean()(emb, mask).numpy()
    # row 0: mean of the first two vectors, the padded 100s ignored; row 1: no history -> zeros
    np.testing.assert_allclose(out, [[2.0, 1.0], [0.0, 0.0]])
    shares = np.array([[0.75, 0.25, 0.0]], np.float32)
    np.testing.assert_allclose(WeightedMean()(emb[:1], shares).numpy(), [[1.5, 0.5]])  # 0.75*(1,0) + 0.25*(3,2)


def test_history_is_a_masked_mean_of_the_shared_article_embedding(model: TwoTowerModel) -> None:
    assert model.schema is not None
    inputs = query_inputs(towerdata.rows().tail(1), model.schema)
    run = tower_function(model.query_model)

    def with_history(ids: list[int]) -> np.ndarray:
        return run({**inputs, "last_article_ids": np.array([ids + [PAD_INT] * (4 - len(ids))])})

    np.testing.assert_allclose(with_history([1]), with_history([1, 1]), atol=1e-6)  # a mean, not a sum
    assert not np.allclose(with_history([1]), with_history([1, 2]))
    assert not np.allclose(with_history([1]), with_history([]))
    shared = [w for w in model.query_model.trainable_weights if "article_id_embedding" in w.name]
    assert len(shared) == 1 and any(w is shared[0] for w in model.candidate_model.trainable_weights)


def _batch(model: TwoTowerModel) -> dict:
    ds = model.dataset(towerdata.rows(), towerdata.articles(), batch_size=5, seed=0, shuffle=False)
    return next(iter(ds))


def test_training_encoding_matches_the_raw_towers(model: TwoTowerModel) -> None:
    """Training runs the cores on inputs encoded once; the saved towers encode raw values: the same vectors."""
    assert model.schema is not None
    batch = _batch(model)
    encoded = model.query_core({k: batch[k] for k in model.query_core.input_names}).numpy()
    raw = tower_function(model.query_model)(query_inputs(towerdata.rows(), model.schema))
    np.testing.assert_allclose(encoded, raw, atol=2e-3)  # training keeps shares as float16 (3 digits)
    assert batch["last_article_ids"].numpy()[0].tolist() == [-1] * 4  # no history: all padding
    catalogue = model._catalogue.gather(np.arange(4))
    c_raw = tower_function(model.candidate_model)(candidate_inputs(towerdata.articles(), model.schema))
    np.testing.assert_allclose(model.candidate_core(catalogue).numpy(), c_raw, atol=1e-6)


def test_loss_is_softmax_over_distinct_in_batch_candidates_with_logq_correction(model: TwoTowerModel) -> None:
    assert model.schema is not None
    batch = _batch(model)
    rows = batch[ARTICLE_INDEX].numpy()
    assert rows.tolist() == [0, 1, 2, 1, 0]  # articles 1, 2, 3, 2, 1 (unshuffled)
    q = tower_function(model.query_model)(query_inputs(towerdata.rows(), model.schema))
    # the candidates are the distinct articles 1, 2, 3, each once: an article bought twice is not its own negative
    c = tower_function(model.candidate_model)(candidate_inputs(towerdata.articles(), model.schema))[:3]
    p = batch_probability(np.array([2.0, 2.0, 1.0, 0.0]), CONFIG.batch_size)[:3]  # training purchases per article
    np.testing.assert_allclose(p, 1 - (1 - np.array([0.4, 0.4, 0.2])) ** 4)  # P(among a batch of 4)
    logits = q @ c.T / CONFIG.temperature - np.log(p)[None, :]
    top = logits.max(axis=1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(5), rows].mean()
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)


def test_the_popularity_weight_scales_the_logq_correction() -> None:
    config = replace(CONFIG, popularity_weight=1.5)
    heavier = build_model(config, towerdata.FEATURES, towerdata.rows(), towerdata.articles())
    assert heavier.schema is not None
    batch = next(iter(heavier.dataset(towerdata.rows(), towerdata.articles(), batch_size=5, seed=0, shuffle=False)))
    rows = batch[ARTICLE_INDEX].numpy()
    q = tower_function(heavier.query_model)(query_inputs(towerdata.rows(), heavier.schema))
    c = tower_function(heavier.candidate_model)(candidate_inputs(towerdata.articles(), heavier.schema))[:3]
    p = batch_probability(np.array([2.0, 2.0, 1.0, 0.0]), config.batch_size)[:3]
    logits = q @ c.T / config.temperature - 1.5 * np.log(p)[None, :]
    top = logits.max(axis=1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    assert float(heavier.compute_loss(batch)) == pytest.approx(-log_softmax[np.arange(5), rows].mean(), rel=1e-4)
    with pytest.raises(ValueError, match="invalid two-tower config"):
        replace(CONFIG, popularity_weight=-1.0)


def test_a_smaller_pool_of_negatives_is_shared_by_every_query() -> None:
    config = replace(CONFIG, negatives=2)
    pooled = build_model(config, towerdata.FEATURES, towerdata.rows(), towerdata.articles())
    assert pooled.schema is not None
    batch = next(iter(pooled.dataset(towerdata.rows(), towerdata.articles(), batch_size=5, seed=0, shuffle=False)))
    rows = batch[ARTICLE_INDEX].numpy()  # [0, 1, 2, 1, 0]: the pool is the first 2 rows' articles, 0 and 1
    q = tower_function(pooled.query_model)(query_inputs(towerdata.rows(), pooled.schema))
    c = tower_function(pooled.candidate_model)(candidate_inputs(towerdata.articles(), pooled.schema))
    log_q = np.log(batch_probability(np.array([2.0, 2.0, 1.0]), 2))  # P(in a pool of 2 draws), articles 1-3
    logits = q @ c[:3].T / config.temperature - log_q[None, :]
    expected = []
    for i, own in enumerate(rows):
        row = [logits[i, own]] + [logits[i, j] for j in (0, 1) if j != own]  # its own article, then the pool
        expected.append(np.log(np.exp(row).sum()) - row[0])
    assert float(pooled.compute_loss(batch)) == pytest.approx(np.mean(expected), rel=1e-4)


def test_uniform_negatives_bring_articles_nobody_bought_into_the_softmax() -> None:
    config = replace(CONFIG, uniform_negatives=64)  # 64 uniform draws over 4 articles: all 4 are drawn (1 - 4e-8)
    mixed = build_model(config, towerdata.FEATURES, towerdata.rows(), towerdata.articles())
    assert mixed.schema is not None
    batch = next(iter(mixed.dataset(towerdata.rows(), towerdata.articles(), batch_size=5, seed=0, shuffle=False)))
    rows = batch[ARTICLE_INDEX].numpy()
    q = tower_function(mixed.query_model)(query_inputs(towerdata.rows(), mixed.schema))
    c = tower_function(mixed.candidate_model)(candidate_inputs(towerdata.articles(), mixed.schema))
    p = batch_probability(np.array([2.0, 2.0, 1.0, 0.0]), config.batch_size, uniform_negatives=64)
    logits = q @ c.T / config.temperature - np.log(p)[None, :]  # article 4, never bought, is a negative too
    top = logits.max(axis=1, keepdims=True)
    log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(5), rows].mean()
    assert float(mixed.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)


def test_uniform_negatives_enter_the_candidate_probability() -> None:
    counts = np.array([3.0, 1.0, 0.0, 0.0])
    p = batch_probability(counts, 2, uniform_negatives=2)
    # absent from 2 draws by purchase share and from 2 uniform draws over 4 articles
    np.testing.assert_allclose(p, 1 - (1 - np.array([0.75, 0.25, 0, 0])) ** 2 * 0.75**2)


def test_fit_one_step_save_reload_identical_outputs(model: TwoTowerModel, tmp_path: Path) -> None:
    assert model.schema is not None
    before = [w.copy() for w in model.query_model.get_weights()]
    model.fit(model.dataset(towerdata.rows(), towerdata.articles(), batch_size=5, seed=0), verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.query_model.get_weights(), strict=True))
    q_in = query_inputs(towerdata.rows(), model.schema)
    c_in = candidate_inputs(towerdata.articles(), model.schema)
    save_two_tower(model, tmp_path / "run")
    query, candidate, schema = load_two_tower(tmp_path / "run")
    assert schema == model.schema
    assert set(query.input_specs) == set(schema.query_inputs())  # the serving signature matches the schema
    assert set(candidate.input_specs) == set(schema.candidate_inputs())
    np.testing.assert_array_equal(query(q_in), tower_function(model.query_model)(q_in))
    np.testing.assert_array_equal(candidate(c_in), tower_function(model.candidate_model)(c_in))


def test_vocabularies_are_not_tracked_item_by_item() -> None:
    """Keras walks every tracked list when it lists the model's variables (fit does so at start and at every
    epoch end); a vocabulary held as a list made that ~1 s with 0.5M customer ids. Lookups hold arrays."""
    import tensorflow as tf

    model = build_model(
        replace(CONFIG, use_customer_id=True), towerdata.FEATURES, towerdata.rows(), towerdata.articles()
    )
    lookups = [layer for layer in model._flatten_layers() if layer.name.endswith("_lookup")]
    assert {"customer_id_lookup", "article_id_lookup"} <= {layer.name for layer in lookups}
    for layer in lookups:
        assert not isinstance(layer.input_vocabulary, tf.__internal__.tracking.TrackableDataStructure), layer.name
    assert (
        model.query_model.get_layer("customer_id_lookup").vocabulary_size()
        == 1 + towerdata.rows()["customer_id"].n_unique()
    )


def test_no_customer_id_vocabulary_unless_the_tower_uses_it(model: TwoTowerModel) -> None:
    assert not CONFIG.use_customer_id
    assert model.query_model.get_layer("customer_id_lookup").vocabulary_size() == 2  # OOV and a placeholder


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("embedding_dim", "abc", "an integer"),
        ("embedding_dim", 8.5, "an integer"),
        ("epochs", True, "an integer"),
        ("temperature", "hot", "a number"),
        ("popularity_correction", 1, "true or false"),
        ("hidden_units", [64, "x"], "a list of integers"),
        ("hidden_units", 64, "a list of integers"),
    ],
)
def test_config_values_of_the_wrong_type_are_named(key: str, value: object, kind: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}' must be {kind}"):
        TwoTowerConfig.from_dict({key: value})


def test_config_values_are_converted_and_bad_ranges_are_named() -> None:
    config = TwoTowerConfig.from_dict({"temperature": 1, "hidden_units": [32, 16], "embedding_dim": 8})
    assert config.temperature == 1.0 and isinstance(config.temperature, float)
    assert config.hidden_units == (32, 16) and config.embedding_dim == 8
    assert TwoTowerConfig.from_dict(json.loads(json.dumps(asdict(config)))) == config  # as saved with a model
    with pytest.raises(ValueError, match=r"invalid two-tower config: epochs=0, negatives=-1$"):
        TwoTowerConfig.from_dict({"epochs": 0, "negatives": -1})
