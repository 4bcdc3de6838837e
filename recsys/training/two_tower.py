"""The two-tower retrieval model: a query tower and a candidate tower trained with in-batch negatives.

Retrieval has to score a whole catalogue in milliseconds, so the model is *factorised*: the query tower turns a
customer at a moment (id, attributes, month, what they bought lately) into a unit vector, the candidate tower
turns an article (id, attributes, description) into a unit vector of the same size, and the score is their dot
product — the catalogue is embedded once and searched with a nearest-neighbour index.

Training sees only positives (purchases). Every other article in the batch serves as a negative
(``tfrs.tasks.Retrieval``: a softmax over the batch's candidates). Popular articles appear in many batches and
would be pushed down as negatives far more often than rare ones; the optional *logQ correction* subtracts the
log of each candidate's probability of being in the batch from its logit, so the model learns preference
rather than anti-popularity. The temperature sharpens the softmax over cosine scores (in [-1, 1]).

Both towers give unseen ids a vector: ids outside the training vocabulary share an out-of-vocabulary
embedding, and the rest of each tower (attributes, history, description text) still tells them apart. The
history of the query tower is pooled with the *same* article-id embedding table as the candidate tower, and the
category affinities with the candidate tower's category embeddings, so both towers speak one vocabulary.

Stack: TensorFlow 2.21 with Keras 2 (``tf_keras``) and TFRS 0.7.7. TFRS refuses Keras 3, and TensorFlow reads
``TF_USE_LEGACY_KERAS`` when ``tf.keras`` is first touched, so this module sets it before importing TensorFlow;
a process that has already imported Keras 3 through ``tf.keras`` gets a clear error.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import polars as pl
import tensorflow as tf

try:
    import tensorflow_recommenders as tfrs
    import tf_keras as keras
except ImportError as exc:  # pragma: no cover - depends on the process's import order
    raise ImportError(
        "the two-tower model needs Keras 2 (tf_keras) for TensorFlow Recommenders: set TF_USE_LEGACY_KERAS=1 "
        f"before anything imports TensorFlow ({exc})"
    ) from exc

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, T_DAT, FeatureSpec
from recsys.features.common import cutoff
from recsys.features.customer_history import LAST_ARTICLES
from recsys.training import retrieval_eval
from recsys.training.retrieval_data import (
    ARTICLE_INDEX,
    PAD_INT,
    PAD_STRING,
    SHARES,
    VALUES,
    TowerFeatures,
    candidate_inputs,
    catalogue_rows,
    customer_attributes,
    decode,
    encode,
    numeric_stats,
    queries_as_of,
    query_inputs,
    tower_features,
    training_dataset,
    vocabulary,
)

QUERY_DIR, CANDIDATE_DIR, SCHEMA_FILE, CONFIG_FILE = "query", "candidate", "tower_features.json", "config.json"
TOWER_DIR = "tower"  # the SavedModel inside one tower's registry folder
EMBEDDING = "embedding"  # the output of a saved tower's serving signature
UNUSED = "[unused]"  # the placeholder of an empty vocabulary


@dataclass(frozen=True)
class TwoTowerConfig:
    """Every knob of the two-tower model and its training; the defaults suit the synthetic presets and H&M."""

    embedding_dim: int = 64  # output of both towers, and the id embeddings
    feature_embedding_dim: int = 16  # each categorical feature
    text_embedding_dim: int = 32
    hidden_units: tuple[int, ...] = (128,)
    temperature: float = 0.05
    popularity_correction: bool = True
    remove_accidental_hits: bool = True  # the same article twice in a batch is not its own negative
    learning_rate: float = 0.003
    batch_size: int = 1024
    epochs: int = 10
    patience: int = 2  # epochs without a better validation recall before stopping
    seed: int = 42
    max_customer_vocab: int = 2_000_000
    max_article_vocab: int = 500_000
    max_category_vocab: int = 10_000
    min_category_customers: int = 5  # a customer category needs this many customers (postal codes: most do not)
    min_category_articles: int = 2  # an article category needs this many articles (product codes: siblings)
    text_tokens: int = 10_000
    text_length: int = 48
    history_length: int = 20
    max_list_length: int = 16
    use_history_features: bool = True  # history counts and category affinities in the query tower
    eval_k: int = 100  # early stopping watches validation recall@eval_k

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.batch_size < 2 or self.epochs < 1 or self.temperature <= 0:
            raise ValueError(f"invalid two-tower config: {self}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TwoTowerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown two-tower config keys {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# -- layers (registered, so that a tower also reloads as a Keras model) ----------------------------------------


@keras.saving.register_keras_serializable(package="recsys")
class PaddingMask(keras.layers.Layer):
    """1.0 where a padded list holds a value, 0.0 at its padding."""

    def __init__(self, pad: str | int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, values: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.not_equal(values, tf.constant(self.pad, dtype=values.dtype)), tf.float32)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="recsys")
class WeightedMean(keras.layers.Layer):
    """Σ w·e / Σ w over a list: a masked mean (w = mask) or a weighted bag (w = shares); zeros for no weight."""

    def call(self, embeddings: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        total = tf.reduce_sum(weights, axis=1, keepdims=True)
        pooled = tf.reduce_sum(embeddings * weights[:, :, None], axis=1)
        return tf.math.divide_no_nan(pooled, total)


@keras.saving.register_keras_serializable(package="recsys")
class NumericEncoder(keras.layers.Layer):
    """Numbers with NaN for missing → [standardised signed log, missing flag] per feature, missing values at 0.

    The flag carries what the feature pipeline's ``<name>_missing`` columns say; mean and std come from the
    training split (see :func:`~recsys.training.retrieval_data.numeric_stats`).
    """

    def __init__(self, mean: list[float], std: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mean, self.std = list(mean), list(std)

    def call(self, values: tf.Tensor) -> tf.Tensor:
        missing = tf.math.is_nan(values)
        x = tf.where(missing, tf.zeros_like(values), values)
        z = (tf.sign(x) * tf.math.log1p(tf.abs(x)) - self.mean) / self.std
        z = tf.where(missing, tf.zeros_like(z), z)
        return tf.concat([z, tf.cast(missing, tf.float32)], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "std": self.std}


# -- towers ---------------------------------------------------------------------------------------------------


def _input(name: str, kind: str, length: int | None) -> keras.Input:
    dtype = {"string": tf.string, "int": tf.int64, "float": tf.float32}[kind]
    return keras.Input(shape=(() if length is None else (length,)), dtype=dtype, name=name)


def _lookup(kind: str, vocab: list[Any], name: str) -> keras.layers.Layer:
    """Value → index; index 0 is the out-of-vocabulary bucket (unseen ids, rare categories, padding).

    An empty vocabulary (every value too rare) gets one placeholder that never occurs: everything is OOV.
    """
    vocab = vocab or ([PAD_INT] if kind == "int" else [UNUSED])
    if kind == "int":
        return keras.layers.IntegerLookup(vocabulary=np.asarray(vocab, np.int64), num_oov_indices=1, name=name)
    return keras.layers.StringLookup(vocabulary=[str(v) for v in vocab], num_oov_indices=1, name=name)


class _Categorical:
    """A lookup and its embedding table, applied to a scalar or to a padded list (shared between towers)."""

    def __init__(self, name: str, kind: str, vocab: list[Any], dim: int) -> None:
        self.kind = kind
        self.lookup = _lookup(kind, vocab, f"{name}_lookup")
        self.embedding = keras.layers.Embedding(self.lookup.vocabulary_size(), dim, name=f"{name}_embedding")

    def __call__(self, values: Any) -> Any:
        return self.embedding(self.lookup(values))

    def pooled(self, values: Any, weights: Any = None) -> Any:
        if weights is None:
            weights = PaddingMask(PAD_STRING if self.kind == "string" else PAD_INT)(values)
        return WeightedMean()(self(values), weights)


def _head(parts: list[Any], config: TwoTowerConfig, name: str) -> Any:
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"{name}_features")(parts)
    for i, units in enumerate(config.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"{name}_hidden_{i}")(x)
    x = keras.layers.Dense(config.embedding_dim, name=f"{name}_projection")(x)
    return keras.layers.UnitNormalization(name=f"{name}_l2")(x)


def _numeric(inputs: dict[str, Any], names: tuple[str, ...], stats: dict[str, tuple[float, float]], name: str) -> Any:
    stacked = keras.layers.Concatenate(name=f"{name}_stack")([keras.layers.Reshape((1,))(inputs[n]) for n in names])
    return NumericEncoder([stats[n][0] for n in names], [stats[n][1] for n in names], name=name)(stacked)


@dataclass
class Vocabularies:
    """Everything the towers learn from the training split before training: vocabularies and numeric stats."""

    customer_ids: list[Any]
    article_ids: list[Any]
    categories: dict[str, list[Any]]  # customer and article categoricals, multi-categoricals, affinities
    numeric: dict[str, tuple[float, float]]
    descriptions: list[str]  # the training articles' descriptions, for the text vocabulary


def fit_vocabularies(
    schema: TowerFeatures, train: pl.DataFrame, articles: pl.DataFrame, config: TwoTowerConfig
) -> Vocabularies:
    """Vocabularies and statistics from the training split only (articles: those bought in it)."""
    customers = train.unique(CUSTOMER_ID, keep="last", maintain_order=True)
    trained = articles.join(train.select(ARTICLE_ID).unique(), on=ARTICLE_ID, how="semi")
    cats: dict[str, list[Any]] = {}
    for col in (*schema.customer_categorical, *schema.customer_multi):
        cats[col] = vocabulary(
            customers.get_column(col), max_size=config.max_category_vocab, min_count=config.min_category_customers
        )
    for col in (*schema.article_categorical, *schema.article_multi):
        cats[col] = vocabulary(
            trained.get_column(col), max_size=config.max_category_vocab, min_count=config.min_category_articles
        )
    for col in schema.affinities:
        if col not in cats:
            cats[col] = vocabulary(train.get_column(col + VALUES), max_size=config.max_category_vocab)
    numeric: dict[str, tuple[float, float]] = {}
    rows = decode(encode(train, {c: ("float", None) for c in (*schema.customer_numeric, *schema.history_numeric)}))
    for col in (*schema.customer_numeric, *schema.history_numeric):
        numeric[col] = numeric_stats(rows[col])
    art = candidate_inputs(trained, schema)
    for col in schema.article_numeric:
        numeric[col] = numeric_stats(art[col])
    return Vocabularies(
        customer_ids=vocabulary(train.get_column(CUSTOMER_ID), max_size=config.max_customer_vocab),
        article_ids=vocabulary(train.get_column(ARTICLE_ID), max_size=config.max_article_vocab),
        categories=cats,
        numeric=numeric,
        descriptions=trained.get_column(schema.text).fill_null("").to_list() if schema.text else [],
    )


def build_towers(
    schema: TowerFeatures, vocabs: Vocabularies, config: TwoTowerConfig
) -> tuple[keras.Model, keras.Model]:
    """The query and candidate towers (functional Keras models over raw inputs, outputs L2-normalised)."""
    keras.utils.set_random_seed(config.seed)
    dim, fdim = config.embedding_dim, config.feature_embedding_dim
    article_id = _Categorical("article_id", schema.article_id_kind, vocabs.article_ids, dim)
    shared = {c: _Categorical(c, "string", vocabs.categories[c], fdim) for c in schema.article_categorical}

    # candidate tower
    c_in = {n: _input(n, kind, length) for n, (kind, length) in schema.candidate_inputs().items()}
    c_parts = [article_id(c_in[ARTICLE_ID])]
    c_parts += [shared[c](c_in[c]) for c in schema.article_categorical]
    for c in schema.article_multi:
        c_parts.append(_Categorical(c, "string", vocabs.categories[c], fdim).pooled(c_in[c]))
    if schema.article_numeric:
        c_parts.append(_numeric(c_in, schema.article_numeric, vocabs.numeric, "article_numeric"))
    if schema.text:
        vectorize = keras.layers.TextVectorization(
            max_tokens=config.text_tokens, output_sequence_length=config.text_length, name="text_vectorize"
        )
        vectorize.adapt(tf.constant(vocabs.descriptions or [PAD_STRING], dtype=tf.string), batch_size=4096)
        tokens = vectorize(c_in[schema.text])
        words = keras.layers.Embedding(vectorize.vocabulary_size(), config.text_embedding_dim, name="text_embedding")
        c_parts.append(WeightedMean(name="text_mean")(words(tokens), PaddingMask(0, name="text_mask")(tokens)))
    candidate = keras.Model(c_in, _head(c_parts, config, "candidate"), name="candidate_tower")

    # query tower
    q_in = {n: _input(n, kind, length) for n, (kind, length) in schema.query_inputs().items()}
    customer_id = _Categorical("customer_id", schema.customer_id_kind, vocabs.customer_ids, dim)
    q_parts = [customer_id(q_in[CUSTOMER_ID])]
    # "customer_" keeps these layer names apart from the article tables the query tower shares
    q_parts += [
        _Categorical(f"customer_{c}", "string", vocabs.categories[c], fdim)(q_in[c])
        for c in schema.customer_categorical
    ]
    for c in schema.customer_multi:
        q_parts.append(_Categorical(f"customer_{c}", "string", vocabs.categories[c], fdim).pooled(q_in[c]))
    numeric = (*schema.customer_numeric, *schema.history_numeric)
    if numeric:
        q_parts.append(_numeric(q_in, numeric, vocabs.numeric, "customer_numeric"))
    if schema.context:
        q_parts += [keras.layers.Reshape((1,))(q_in[c]) for c in schema.context]
    if schema.history:
        q_parts.append(article_id.pooled(q_in[LAST_ARTICLES]))
    for a in schema.affinities:
        table = shared.get(a) or _Categorical(f"affinity_{a}", "string", vocabs.categories[a], fdim)
        q_parts.append(table.pooled(q_in[a + VALUES], q_in[a + SHARES]))
    query = keras.Model(q_in, _head(q_parts, config, "query"), name="query_tower")
    return query, candidate


# -- the retrieval model --------------------------------------------------------------------------------------


class TwoTowerModel(tfrs.Model):
    """Query tower + candidate tower + ``tfrs.tasks.Retrieval`` with in-batch negatives.

    A training batch holds query inputs and ``article_index``, the purchased article's row in the catalogue;
    the candidate inputs are gathered from the catalogue held by the model, so article features are stored
    once, not once per purchase. ``sampling_probability[j]`` is the chance that catalogue article j is in a
    batch (from its training frequency); when given, the logits get the logQ correction.
    """

    def __init__(
        self,
        query_model: keras.Model,
        candidate_model: keras.Model,
        catalogue: Mapping[str, np.ndarray],
        *,
        temperature: float,
        sampling_probability: np.ndarray | None = None,
        remove_accidental_hits: bool = True,
        schema: TowerFeatures | None = None,
        config: TwoTowerConfig | None = None,
    ) -> None:
        super().__init__()
        self.query_model = query_model
        self.candidate_model = candidate_model
        self.schema, self.config = schema, config
        self._query_names = list(query_model.input_names)
        self._catalogue = {name: tf.constant(values) for name, values in catalogue.items()}
        self._probability = None if sampling_probability is None else tf.constant(sampling_probability, tf.float32)
        self.task = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=remove_accidental_hits)

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        rows = features[ARTICLE_INDEX]
        queries = self.query_model({name: features[name] for name in self._query_names})
        candidates = self.candidate_model({name: tf.gather(v, rows) for name, v in self._catalogue.items()})
        probability = None if self._probability is None else tf.gather(self._probability, rows)
        return self.task(
            queries,
            candidates,
            candidate_sampling_probability=probability,
            candidate_ids=rows,
            compute_metrics=False,  # top-K over the whole catalogue is computed per epoch, see fit()
        )


def batch_probability(counts: np.ndarray, batch_size: int) -> np.ndarray:
    """P(an article is among a batch's positives) = 1 − (1 − p)^B, with p its share of training purchases."""
    p = counts / max(counts.sum(), 1)
    return -np.expm1(batch_size * np.log1p(-np.minimum(p, 1 - 1e-12)))


def build_model(
    config: TwoTowerConfig,
    features: Mapping[str, Mapping[str, FeatureSpec]],
    train: pl.DataFrame,
    articles: pl.DataFrame,
) -> TwoTowerModel:
    """The untrained model: schema from the spec, vocabularies and statistics from ``train``, the catalogue."""
    schema = tower_features(
        features,
        train,
        articles,
        history_length=config.history_length,
        max_list_length=config.max_list_length,
        use_history_features=config.use_history_features,
    )
    vocabs = fit_vocabularies(schema, train, articles, config)
    query, candidate = build_towers(schema, vocabs, config)
    probability = None
    if config.popularity_correction:
        rows = catalogue_rows(train, articles)
        counts = np.bincount(rows[rows >= 0], minlength=articles.height).astype(np.float64)
        probability = batch_probability(counts, config.batch_size)
    model = TwoTowerModel(
        query,
        candidate,
        candidate_inputs(articles, schema),
        temperature=config.temperature,
        sampling_probability=probability,
        remove_accidental_hits=config.remove_accidental_hits,
        schema=schema,
        config=config,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    return model


# -- embedding, saving, loading -------------------------------------------------------------------------------


def tower_function(model: keras.Model) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """A Keras tower as ``inputs -> [n, dim]`` arrays (one traced graph), for :mod:`retrieval_eval`."""

    @tf.function(reduce_retracing=True)
    def run(inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        return model(inputs, training=False)

    dtypes = {t.name.split(":")[0]: t.dtype for t in model.inputs}
    return lambda batch: run({k: tf.constant(v, dtype=dtypes[k]) for k, v in batch.items()}).numpy()


def save_tower(tower: keras.Model, path: str | Path) -> None:
    """A SavedModel whose ``serving_default`` signature maps the raw named inputs to ``embedding``.

    Loads with plain TensorFlow (no project code: what a model server needs) and, through the registered
    layers, also as a Keras model.
    """
    specs = {t.name.split(":")[0]: tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in tower.inputs}

    @tf.function(input_signature=[specs])
    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {EMBEDDING: tower(inputs, training=False)}

    tower.save(str(path), save_format="tf", signatures={"serving_default": serve}, include_optimizer=False)


class SavedTower:
    """A tower reloaded from :func:`save_tower`: call it with a dict of arrays, get [n, dim] float32."""

    def __init__(self, path: str | Path) -> None:
        self._loaded = tf.saved_model.load(str(path))
        self._serve = self._loaded.signatures["serving_default"]
        self.input_specs = dict(self._serve.structured_input_signature[1])

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        args = {k: tf.constant(inputs[k], dtype=spec.dtype) for k, spec in self.input_specs.items()}
        return self._serve(**args)[EMBEDDING].numpy()


def save_two_tower(model: TwoTowerModel, directory: str | Path) -> Path:
    """``directory/query``, ``directory/candidate`` (SavedModels), the tower schema and the config (JSON)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tower(model.query_model, directory / QUERY_DIR)
    save_tower(model.candidate_model, directory / CANDIDATE_DIR)
    if model.schema is not None:
        (directory / SCHEMA_FILE).write_text(model.schema.to_json())
    if model.config is not None:
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(model.config), indent=2))
    return directory


def save_tower_artifacts(model: TwoTowerModel, which: str, directory: str | Path) -> Path:
    """One tower as a registry artefact: ``directory/tower`` (SavedModel) + the schema + the config (JSON).

    ``which`` is ``"query"`` or ``"candidate"``. Each tower is registered as its own model (one run id ties
    them), so each folder carries the schema it needs to turn feature rows into its inputs.
    """
    towers = {QUERY_DIR: model.query_model, CANDIDATE_DIR: model.candidate_model}
    if which not in towers:
        raise ValueError(f"which must be 'query' or 'candidate', not {which!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tower(towers[which], directory / TOWER_DIR)
    assert model.schema is not None and model.config is not None
    (directory / SCHEMA_FILE).write_text(model.schema.to_json())
    (directory / CONFIG_FILE).write_text(json.dumps(asdict(model.config), indent=2))
    return directory


def load_tower_artifacts(directory: str | Path) -> tuple[SavedTower, TowerFeatures]:
    """A tower saved by :func:`save_tower_artifacts` and its schema."""
    directory = Path(directory)
    return SavedTower(directory / TOWER_DIR), TowerFeatures.from_json((directory / SCHEMA_FILE).read_text())


def load_two_tower(directory: str | Path) -> tuple[SavedTower, SavedTower, TowerFeatures]:
    """The query tower, the candidate tower and their schema, as saved by :func:`save_two_tower`."""
    directory = Path(directory)
    schema = TowerFeatures.from_json((directory / SCHEMA_FILE).read_text())
    return SavedTower(directory / QUERY_DIR), SavedTower(directory / CANDIDATE_DIR), schema


# -- training -------------------------------------------------------------------------------------------------


class _Validation(keras.callbacks.Callback):
    """Per epoch: recall@K over the whole catalogue on the validation week; keeps the best weights."""

    def __init__(
        self,
        evaluate: Callable[[], float],
        n_examples: int,
        patience: int,
        log: Callable[[str], None],
        k: int,
    ) -> None:
        super().__init__()
        self.evaluate, self.n_examples, self.patience, self.log, self.k = evaluate, n_examples, patience, log, k
        self.history: list[dict[str, float]] = []
        self.best, self.best_weights, self.wait = -1.0, None, 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._start
        recall = self.evaluate()
        row = {
            "epoch": epoch + 1,
            "loss": float((logs or {}).get("loss", float("nan"))),
            f"val_recall_at_{self.k}": recall,
            "train_seconds": seconds,
            "examples_per_s": self.n_examples / seconds,
            "eval_seconds": time.perf_counter() - self._start - seconds,
        }
        self.history.append(row)
        self.log(
            f"epoch {row['epoch']}: loss {row['loss']:.4f}  val recall@{self.k} {recall:.4f}  "
            f"{row['examples_per_s']:,.0f} examples/s ({seconds:.1f} s + eval {row['eval_seconds']:.1f} s)"
        )
        if recall > self.best:
            self.best, self.best_weights, self.wait = recall, self.model.get_weights(), 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True


def fit(
    config: TwoTowerConfig,
    train_df: pl.DataFrame,
    val_df: pl.DataFrame,
    articles_df: pl.DataFrame,
    features: Mapping[str, Mapping[str, FeatureSpec]],
    *,
    customers_df: pl.DataFrame | None = None,
    val_start: datetime | date | None = None,
    log: Callable[[str], None] = print,
) -> tuple[TwoTowerModel, list[dict[str, float]]]:
    """Train on ``train_df`` (retrieval rows), early-stopping on validation recall@``config.eval_k``.

    Validation follows the evaluation protocol (design §6): the customers who bought in ``val_df``, their query
    state as of ``val_start`` (default: the first day of ``val_df``; history from ``train_df`` only), scored
    over the whole catalogue ``articles_df``. ``customers_df`` (e.g. the ``customers`` view) supplies the
    customers' attributes; by default they come from the retrieval rows. The best epoch's weights are restored.
    Returns the model and one dict per epoch (loss, validation recall, examples/s).
    """
    if train_df.height == 0 or val_df.height == 0:
        raise ValueError("fit needs training and validation rows")
    model = build_model(config, features, train_df, articles_df)
    schema = model.schema
    assert schema is not None
    start = cutoff(val_start or val_df.get_column(T_DAT).min())
    truth = val_df.filter(pl.col(T_DAT) >= start)
    attributes = customers_df if customers_df is not None else customer_attributes(train_df, val_df, schema=schema)
    who = truth.select(CUSTOMER_ID).unique(maintain_order=True).join(attributes, on=CUSTOMER_ID, how="left")
    # the validation queries are fixed: their as-of state is computed once, not every epoch
    queries = query_inputs(queries_as_of(who, train_df, articles_df, start, schema), schema, at=start)
    catalogue = candidate_inputs(articles_df, schema)
    customer_ids = who.get_column(CUSTOMER_ID).to_numpy()
    article_ids = articles_df.get_column(ARTICLE_ID).to_numpy()
    query_fn, candidate_fn = tower_function(model.query_model), tower_function(model.candidate_model)

    def evaluate() -> float:
        recs = retrieval_eval.recommend(
            retrieval_eval.embed(query_fn, queries),
            retrieval_eval.embed(candidate_fn, catalogue),
            customer_ids,
            article_ids,
            n=config.eval_k,
        )
        return retrieval_eval.recall(recs, truth, (config.eval_k,))[f"recall@{config.eval_k}"]

    data = training_dataset(train_df, schema, articles_df, batch_size=config.batch_size, seed=config.seed)
    callback = _Validation(evaluate, train_df.height, config.patience, log, config.eval_k)
    model.fit(data, epochs=config.epochs, callbacks=[callback], verbose=0)
    if callback.best_weights is not None:
        model.set_weights(callback.best_weights)
    return model, callback.history
