"""The two-tower retrieval model: a query tower and a candidate tower trained with in-batch negatives.

Retrieval has to score a whole catalogue in milliseconds, so the model is *factorised*: the query tower turns a
customer at a moment (id, attributes, month, what they bought lately) into a unit vector, the candidate tower
turns an article (id, attributes, description) into a unit vector of the same size, and the score is their dot
product — the catalogue is embedded once and searched with a nearest-neighbour index.

Training sees only positives (purchases). The other articles of the batch serve as negatives: a softmax over
the batch's *distinct* articles (TFRS's retrieval task with its accidental hits removed; an article bought twice
in a batch is one candidate, embedded once). Popular articles appear in many batches and would be pushed down
as negatives far more often than rare ones; the optional *logQ correction* subtracts the log of each
candidate's probability of being in the batch from its logit, so that the sampled softmax estimates the softmax
over the whole catalogue and the model learns preference rather than anti-popularity. The temperature sharpens
the softmax over cosine scores (in [-1, 1]).

Articles rise and fade: a purchase two years ago says little about what sells now. The query tower reads each
training row's *example age* (days before the end of training; 0 at serving), so that the model learns from
all the history how sales move with time but is asked about "now" (YouTube's example-age feature).

Both towers give unseen ids a vector: ids outside the training vocabulary share an out-of-vocabulary
embedding, and the rest of each tower (attributes, history, description text) still tells them apart. The
history of the query tower is pooled with the *same* article-id embedding table as the candidate tower, and the
category affinities with the candidate tower's category embeddings, so both towers speak one vocabulary.

Speed: each tower is a string-free trainable *core* behind its lookups (see :class:`Tower`). Training encodes
its rows to integer indices once, so a step is gathers and matmuls only; sparse updates touch only the rows a
batch used (:class:`~recsys.training.tower_layers.LazyAdam`).

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
from datetime import date, datetime, timedelta
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
from recsys.training.metrics import top_k_accuracy
from recsys.training.retrieval_data import (
    ARTICLE_INDEX,
    EXAMPLE_AGE,
    PAD_INT,
    PAD_STRING,
    SHARES,
    VALUES,
    Encoded,
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
    vocabulary,
)
from recsys.training.tower_layers import (
    AgeEncoder,
    IndexOf,
    LazyAdam,
    LogShares,
    NumericEncoder,
    PaddingMask,
    SplitPadding,
    WeightedMean,
    sampled_softmax_loss,
)

QUERY_DIR, CANDIDATE_DIR, SCHEMA_FILE, CONFIG_FILE = "query", "candidate", "tower_features.json", "config.json"
TOWER_DIR = "tower"  # the SavedModel inside one tower's registry folder
EMBEDDING = "embedding"  # the output of a saved tower's serving signature
UNUSED = "[unused]"  # the placeholder of an empty vocabulary
AGE_SCALES_DAYS = (7.0, 28.0, 91.0, 365.0)  # the example age's basis: a week to a year
MAX_DENSE_AFFINITY = 512  # affinities over at most this many categories also enter as a dense log-share profile


@dataclass(frozen=True)
class TwoTowerConfig:
    """Every knob of the two-tower model and its training.

    The defaults were tuned on the ``small`` preset's validation week (never its test week); the measurements
    behind them are in ``benchmarks/results/training_retrieval.json`` and the quality test's docstring.
    """

    embedding_dim: int = 64  # output of both towers, and the id embeddings
    feature_embedding_dim: int = 16  # each categorical feature
    text_embedding_dim: int = 32
    hidden_units: tuple[int, ...] = (128,)
    temperature: float = 0.1
    popularity_correction: bool = True
    popularity_weight: float = 1.0  # the correction subtracts weight x log Q; above 1 favours popular articles
    negatives: int = 0  # in-batch negatives: the distinct articles of a batch's first N rows (0: of all its rows)
    uniform_negatives: int = 512  # catalogue articles drawn uniformly per batch, beside the in-batch negatives
    learning_rate: float = 0.002
    cosine_decay: bool = True  # the learning rate follows a cosine from learning_rate down over `epochs`
    batch_size: int = 2048
    epochs: int = 6
    patience: int = 2  # epochs without a better validation recall before stopping
    steps_per_execution: int = 16  # training steps per call into the TF graph (less Python per step)
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
    dense_affinities: bool = True  # category affinities also as dense log-share profiles (small vocabularies)
    # The customer-id embedding: off by default, it memorises the training purchases of heavy buyers and lowered
    # validation recall on `small` (attributes and history carry the customer's taste to new weeks).
    use_customer_id: bool = False
    example_age: bool = True  # the query tower learns from each row's age (days before the end of training)
    eval_k: int = 100  # early stopping watches validation recall@eval_k

    def __post_init__(self) -> None:
        rules = {
            "embedding_dim": self.embedding_dim >= 1,
            "batch_size": self.batch_size >= 2,
            "epochs": self.epochs >= 1,
            "temperature": self.temperature > 0,
            "popularity_weight": self.popularity_weight >= 0,
            "uniform_negatives": self.uniform_negatives >= 0,
            "negatives": self.negatives >= 0,
            "steps_per_execution": self.steps_per_execution >= 1,
        }
        bad = [key for key, ok in rules.items() if not ok]
        if bad:
            raise ValueError(f"invalid two-tower config: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TwoTowerConfig:
        """The config with ``values`` (from JSON or ``--set``) over the defaults; a key of the wrong type is named."""
        defaults = {f.name: f.default for f in fields(cls)}
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise ValueError(f"unknown two-tower config keys {unknown}; known: {sorted(defaults)}")
        return cls(**{k: _typed(k, v, defaults[k]) for k, v in values.items()})


def _typed(key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default`` (bool, int, float or a tuple of ints), or a ValueError naming ``key``."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = is_int, "an integer"
    elif isinstance(default, float):
        ok, kind, value = is_int or isinstance(value, float), "a number", float(value) if is_int else value
    else:
        ok, kind = isinstance(value, list | tuple), "a list of integers"
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        value = tuple(value) if ok else value
    if not ok:
        raise ValueError(f"two-tower config key {key!r} must be {kind}, not {value!r}")
    return value


# -- towers ---------------------------------------------------------------------------------------------------


def _lookup(kind: str, vocab: list[Any], name: str) -> keras.layers.Layer:
    """Value → index; index 0 is the out-of-vocabulary bucket (unseen ids, rare categories, padding).

    An empty vocabulary (every value too rare) gets one placeholder that never occurs: everything is OOV.
    """
    vocab = vocab or ([PAD_INT] if kind == "int" else [UNUSED])
    # arrays, not lists: Keras tracks a list attribute item by item and walks it whenever the model's variables
    # or metrics are listed (fit does at every start and epoch end): ~1 s per walk with 0.5M customer ids
    if kind == "int":
        return keras.layers.IntegerLookup(vocabulary=np.asarray(vocab, np.int64), num_oov_indices=1, name=name)
    return keras.layers.StringLookup(
        vocabulary=np.asarray([str(v) for v in vocab], object), num_oov_indices=1, name=name
    )


class _Categorical:
    """A lookup (raw value → index, in the encoding) and its embedding table (in the core), shared by towers."""

    def __init__(self, name: str, kind: str, vocab: list[Any], dim: int) -> None:
        self.kind = kind
        self.lookup = _lookup(kind, vocab, f"{name}_lookup")
        self.size = self.lookup.vocabulary_size()
        self.embedding = keras.layers.Embedding(self.size, dim, name=f"{name}_embedding")

    def pooled(self, indices: Any, weights: Any = None) -> Any:
        """The mean of a padded list's vectors (``weights``: a weighted mean, e.g. by shares)."""
        safe, mask = SplitPadding()(indices)
        return WeightedMean()(self.embedding(safe), mask if weights is None else weights)


@dataclass
class Tower:
    """One tower three ways: ``model`` maps the raw named inputs to a unit vector (saved and served);
    ``encoders`` turn raw inputs into integer indices (lookups, text vectorisation: nothing to learn); ``core``
    maps those indices and the numeric inputs to the vector (every trainable weight). Training encodes its rows
    once (:func:`encode_inputs`) and runs only the core, so no string is hashed inside the training loop.
    """

    model: keras.Model
    core: keras.Model
    encoders: dict[str, keras.layers.Layer]  # raw input name → its lookup or text vectoriser
    pads: dict[str, str | int]  # list inputs with a lookup → their padding value (index -1 once encoded)


def _input(name: str, kind: str, length: int | None) -> keras.Input:
    dtype = {"string": tf.string, "int": tf.int64, "float": tf.float32}[kind]
    return keras.Input(shape=(() if length is None else (length,)), dtype=dtype, name=name)


def _assemble(
    name: str,
    specs: Mapping[str, tuple[str, int | None]],
    encoders: dict[str, keras.layers.Layer],
    pads: dict[str, str | int],
    core_shapes: Mapping[str, tuple[int, ...]],
    body: Callable[[dict[str, Any]], Any],
) -> Tower:
    """The core over encoded inputs (indices int32, numbers float32), then the raw model around it."""
    core_in = {
        n: keras.Input(shape=core_shapes.get(n, () if length is None else (length,)), name=n, dtype=dtype)
        for n, (kind, length) in specs.items()
        for dtype in [tf.int32 if n in encoders else tf.float32]
    }
    core = keras.Model(core_in, body(core_in), name=f"{name}_core")
    raw = {n: _input(n, kind, length) for n, (kind, length) in specs.items()}
    encoded = {
        n: IndexOf(pads.get(n), name=f"{n}_index")(x, encoders[n](x)) if n in encoders else x for n, x in raw.items()
    }
    return Tower(keras.Model(raw, core(encoded), name=f"{name}_tower"), core, encoders, pads)


def _head(parts: list[Any], config: TwoTowerConfig, name: str) -> Any:
    """Concatenated features → MLP → projection to ``embedding_dim`` → L2 normalisation."""
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
        # no id table unless the query tower uses it (an unused lookup of every customer id costs memory and load time)
        customer_ids=vocabulary(train.get_column(CUSTOMER_ID), max_size=config.max_customer_vocab)
        if config.use_customer_id
        else [],
        article_ids=vocabulary(train.get_column(ARTICLE_ID), max_size=config.max_article_vocab),
        categories=cats,
        numeric=numeric,
        descriptions=trained.get_column(schema.text).fill_null("").to_list() if schema.text else [],
    )


def build_towers(schema: TowerFeatures, vocabs: Vocabularies, config: TwoTowerConfig) -> tuple[Tower, Tower]:
    """The query and the candidate tower (raw inputs → L2-normalised vectors of ``embedding_dim``)."""
    keras.utils.set_random_seed(config.seed)
    dim, fdim = config.embedding_dim, config.feature_embedding_dim
    article_id = _Categorical("article_id", schema.article_id_kind, vocabs.article_ids, dim)
    shared = {c: _Categorical(c, "string", vocabs.categories[c], fdim) for c in schema.article_categorical}

    # candidate tower
    c_specs = schema.candidate_inputs()
    c_enc: dict[str, keras.layers.Layer] = {ARTICLE_ID: article_id.lookup}
    c_enc |= {c: shared[c].lookup for c in schema.article_categorical}
    c_multi = {c: _Categorical(c, "string", vocabs.categories[c], fdim) for c in schema.article_multi}
    c_enc |= {c: table.lookup for c, table in c_multi.items()}
    c_pads: dict[str, str | int] = dict.fromkeys(schema.article_multi, PAD_STRING)
    c_shapes: dict[str, tuple[int, ...]] = {}
    words = None
    if schema.text:
        vectorize = keras.layers.TextVectorization(
            max_tokens=config.text_tokens, output_sequence_length=config.text_length, name="text_vectorize"
        )
        vectorize.adapt(tf.constant(vocabs.descriptions or [PAD_STRING], dtype=tf.string), batch_size=4096)
        c_enc[schema.text], c_shapes[schema.text] = vectorize, (config.text_length,)
        words = keras.layers.Embedding(vectorize.vocabulary_size(), config.text_embedding_dim, name="text_embedding")

    def candidate_body(x: dict[str, Any]) -> Any:
        parts = [article_id.embedding(x[ARTICLE_ID])]
        parts += [shared[c].embedding(x[c]) for c in schema.article_categorical]
        parts += [table.pooled(x[c]) for c, table in c_multi.items()]
        if schema.article_numeric:
            parts.append(_numeric(x, schema.article_numeric, vocabs.numeric, "article_numeric"))
        if words is not None:
            tokens = x[schema.text]  # 0 is the padding of TextVectorization
            parts.append(WeightedMean(name="text_mean")(words(tokens), PaddingMask(0, name="text_mask")(tokens)))
        return _head(parts, config, "candidate")

    candidate = _assemble("candidate", c_specs, c_enc, c_pads, c_shapes, candidate_body)

    # query tower; "customer_" keeps these layer names apart from the article tables the query tower shares
    q_specs = schema.query_inputs()
    customer_id = _Categorical("customer_id", schema.customer_id_kind, vocabs.customer_ids, dim)
    q_cat = {
        c: _Categorical(f"customer_{c}", "string", vocabs.categories[c], fdim) for c in schema.customer_categorical
    }
    q_multi = {c: _Categorical(f"customer_{c}", "string", vocabs.categories[c], fdim) for c in schema.customer_multi}
    q_aff = {
        a: shared.get(a) or _Categorical(f"affinity_{a}", "string", vocabs.categories[a], fdim)
        for a in schema.affinities
    }
    q_enc: dict[str, keras.layers.Layer] = {CUSTOMER_ID: customer_id.lookup}
    q_enc |= {c: t.lookup for c, t in (q_cat | q_multi).items()}
    q_enc |= {a + VALUES: t.lookup for a, t in q_aff.items()}
    q_pads: dict[str, str | int] = dict.fromkeys([*schema.customer_multi, *(a + VALUES for a in q_aff)], PAD_STRING)
    if schema.history:
        q_enc[LAST_ARTICLES], q_pads[LAST_ARTICLES] = (
            article_id.lookup,
            PAD_STRING if article_id.kind == "string" else PAD_INT,
        )

    def query_body(x: dict[str, Any]) -> Any:
        parts = [customer_id.embedding(x[CUSTOMER_ID])] if config.use_customer_id else []
        parts += [t.embedding(x[c]) for c, t in q_cat.items()]
        parts += [t.pooled(x[c]) for c, t in q_multi.items()]
        numeric = (*schema.customer_numeric, *schema.history_numeric)
        if numeric:
            parts.append(_numeric(x, numeric, vocabs.numeric, "customer_numeric"))
        parts += [keras.layers.Reshape((1,))(x[c]) for c in schema.context]
        if schema.age_reference is not None:
            parts.append(AgeEncoder(list(AGE_SCALES_DAYS), name="example_age")(x[EXAMPLE_AGE]))
        if schema.history:
            parts.append(article_id.pooled(x[LAST_ARTICLES]))
        parts += [t.pooled(x[a + VALUES], x[a + SHARES]) for a, t in q_aff.items()]
        parts += [
            LogShares(t.size, name=f"{a}_log_shares")(x[a + VALUES], x[a + SHARES])
            for a, t in q_aff.items()
            if config.dense_affinities and t.size <= MAX_DENSE_AFFINITY
        ]
        return _head(parts, config, "query")

    query = _assemble("query", q_specs, q_enc, q_pads, {}, query_body)
    return query, candidate


def encode_inputs(tower: Tower, columns: Mapping[str, Encoded]) -> dict[str, np.ndarray]:
    """The core's inputs from :func:`~recsys.training.retrieval_data.encode`'s columns, without decoding rows.

    A lookup runs once per *distinct* value (a string column's dictionary, an id column's unique ids) and its
    indices are then gathered by code, so encoding 30M rows costs a few array operations, not 30M hashes; the
    result equals what ``tower.model`` computes from the raw values (checked in the tests).
    """
    out: dict[str, np.ndarray] = {}
    for name, column in columns.items():
        encoder = tower.encoders.get(name)
        if encoder is None:
            out[name] = column.decode().astype(np.float32)
            continue
        if column.dictionary is not None:
            distinct = column.dictionary
        else:  # ids: a hash of the distinct values (np.unique would sort 30M history ids)
            distinct = pl.Series(column.codes.ravel()).unique().to_numpy()
        indices = np.asarray(encoder(tf.constant(distinct.astype(str) if distinct.dtype == object else distinct)))
        indices = indices.astype(np.int32)
        if name in tower.pads:
            indices = np.where(distinct == tower.pads[name], -1, indices)
        if column.dictionary is not None:
            out[name] = indices[column.codes]
        else:
            mapped = pl.Series(column.codes.ravel()).replace_strict(distinct, indices, return_dtype=pl.Int32)
            out[name] = mapped.to_numpy().reshape(column.codes.shape)
    return out


# -- the retrieval model --------------------------------------------------------------------------------------


class PackedRows:
    """Named per-row arrays held as one matrix per storage type, so that a batch is a gather per type.

    Indices that fit are stored as int16 and float lists (affinity shares, in [0, 1]) as float16; they are cast
    back to int32 (indices) or float32 when gathered. That keeps an encoded training row at ~300 bytes.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        blocks: dict[str, list[np.ndarray]] = {}
        self.layout: dict[str, tuple[str, int, int, tuple[int, ...], tf.DType]] = {}
        for name, values in arrays.items():
            if np.issubdtype(values.dtype, np.integer):
                small = values.size == 0 or (values.min() >= -(2**15) and values.max() < 2**15)
                store, dtype = ("int16" if small else "int32"), tf.int32
            else:
                store, dtype = ("float16" if values.ndim > 1 else "float32"), tf.float32
            flat = values.reshape(len(values), -1).astype(store)
            start = sum(b.shape[1] for b in blocks.get(store, []))
            blocks.setdefault(store, []).append(flat)
            self.layout[name] = (store, start, start + flat.shape[1], values.shape[1:], dtype)
        self.n = len(next(iter(arrays.values())))
        self.nbytes = sum(sum(part.nbytes for part in parts) for parts in blocks.values())
        self.tensors = {store: tf.constant(np.concatenate(parts, axis=1)) for store, parts in blocks.items()}

    def gather(self, rows: tf.Tensor) -> dict[str, tf.Tensor]:
        matrices = {store: tf.gather(values, rows) for store, values in self.tensors.items()}
        return {
            name: tf.reshape(tf.cast(matrices[store][:, start:stop], dtype), [-1, *shape])
            for name, (store, start, stop, shape, dtype) in self.layout.items()
        }


class TwoTowerModel(tfrs.Model):
    """Query tower + candidate tower trained with a softmax over the batch's candidates (in-batch negatives).

    A training batch holds the query core's inputs (encoded once, see :meth:`dataset`) and ``article_index``,
    the bought article's row in the catalogue held by the model (encoded once too), so article features are
    stored once, not once per purchase. The candidates of a batch are its *distinct* bought articles (plus
    ``uniform_negatives`` catalogue rows drawn uniformly), each embedded once: the same article twice in a batch
    is one candidate, so it is never its own negative (TFRS's accidental hits) and costs one tower pass. With
    ``negatives`` = N the shared pool of negatives is the distinct articles of the batch's first N rows (a random
    sample: the batch is shuffled) and the uniform draws; each query still sees its own article.

    Uniform negatives matter: in-batch negatives are drawn by popularity, so articles rarely bought are almost
    never shown as negatives and, after the logQ correction, float up; a few uniform draws per batch keep the
    long tail honest (Yang et al. 2020, mixed negative sampling).

    The logit of candidate j for query i is ``q_i·c_j / temperature − log P(j is a candidate of a batch)``
    (logQ correction, when ``sampling_probability`` is given): the sampled softmax then estimates the full
    softmax over the catalogue instead of learning that popular articles are frequent negatives. The loss is the
    mean cross-entropy of each query's own article.
    """

    def __init__(
        self,
        query: Tower,
        candidate: Tower,
        catalogue: Mapping[str, np.ndarray],
        *,
        temperature: float,
        sampling_probability: np.ndarray | None = None,
        uniform_negatives: int = 0,
        negatives: int = 0,
        schema: TowerFeatures | None = None,
        config: TwoTowerConfig | None = None,
    ) -> None:
        super().__init__()
        self.query_model, self.candidate_model = query.model, candidate.model
        self.query_core, self.candidate_core = query.core, candidate.core
        self.towers = {"query": query, "candidate": candidate}
        self.schema, self.config = schema, config
        self.temperature, self.uniform_negatives, self.negatives = temperature, uniform_negatives, negatives
        self._query_names = list(query.core.input_names)
        self._catalogue = PackedRows(catalogue)
        self._log_q = None
        if sampling_probability is not None:
            weight = config.popularity_weight if config is not None else 1.0
            self._log_q = tf.constant(weight * np.log(np.clip(sampling_probability, 1e-6, 1.0)), tf.float32)

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        rows = tf.cast(features[ARTICLE_INDEX], tf.int32)
        queries = self.query_core({name: features[name] for name in self._query_names}, training=training)
        # the pool of negatives first (a batch is in random order, so its first rows are a random sample),
        # then every query's own article; each distinct article is embedded once
        pool = [rows if not self.negatives else rows[: self.negatives]]
        if self.uniform_negatives:
            pool.append(tf.random.uniform([self.uniform_negatives], 0, self._catalogue.n, dtype=tf.int32))
        pool_rows = tf.concat(pool, axis=0)
        distinct, column = tf.unique(tf.concat([pool_rows, rows], axis=0))
        vectors = self.candidate_core(self._catalogue.gather(distinct), training=training)
        log_q = None if self._log_q is None else tf.gather(self._log_q, distinct)
        labels = column[tf.shape(pool_rows)[0] :]
        n_pool = None if not self.negatives else tf.reduce_max(column[: tf.shape(pool_rows)[0]]) + 1
        losses = sampled_softmax_loss(queries, vectors, labels, self.temperature, log_q, n_pool)
        return tf.reduce_mean(losses)

    def dataset(
        self,
        frame: pl.DataFrame,
        articles: pl.DataFrame,
        *,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
    ) -> tf.data.Dataset:
        """Training batches of ``frame`` (retrieval rows; ``articles`` is the catalogue the model holds).

        The query inputs are encoded once here; a batch is then one gather per storage type. Shuffled afresh
        every epoch, deterministically from ``seed``, over all rows (a batch mixes every period). Rows whose
        article is not in the catalogue are dropped.
        """
        assert self.schema is not None
        index = catalogue_rows(frame, articles)
        keep = index >= 0
        if not keep.all():
            frame, index = frame.filter(pl.Series(keep)), index[keep]
        columns = encode(frame, self.schema.query_inputs(), age_reference=self.schema.age_reference)
        arrays = encode_inputs(self.towers["query"], columns)
        arrays[ARTICLE_INDEX] = index.astype(np.int32)
        packed = PackedRows(arrays)
        gather = tf.autograph.experimental.do_not_convert(packed.gather)
        ds = batches(packed.n, batch_size, seed, shuffle)
        return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)


def batches(n: int, batch_size: int, seed: int, shuffle: bool = True) -> tf.data.Dataset:
    """Row numbers [0, n) in batches; with ``shuffle`` a fresh permutation every epoch, reproducible from ``seed``.

    One permutation per pass, sliced into batches: tf.data's element-wise ``shuffle`` costs ~1 µs per row,
    2 ms of a 2048-row step. (Plain graph functions: AutoGraph has nothing to convert here.)
    """
    starts = tf.data.Dataset.from_tensor_slices(tf.range(0, n, batch_size, dtype=tf.int64))

    @tf.autograph.experimental.do_not_convert
    def in_order(start: tf.Tensor) -> tf.Tensor:
        return tf.range(start, tf.minimum(start + batch_size, n))

    if not shuffle:
        return starts.map(in_order)

    @tf.autograph.experimental.do_not_convert
    def epoch(draw: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([draw, tf.constant(0, tf.int64)])
        )
        return starts.map(tf.autograph.experimental.do_not_convert(lambda start: order[start : start + batch_size]))

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return draws.flat_map(epoch).apply(tf.data.experimental.assert_cardinality(-(-n // batch_size)))


def batch_probability(counts: np.ndarray, batch_size: int, uniform_negatives: int = 0) -> np.ndarray:
    """P(an article is a candidate of a batch): 1 − (1 − p)^B · (1 − 1/N)^R.

    ``p`` is its share of training purchases (``counts``), B the batch size, N the catalogue size and R the
    uniformly drawn negatives per batch; a candidate counts once however often it was bought in the batch.
    """
    p = counts / max(counts.sum(), 1)
    log_absent = batch_size * np.log1p(-np.minimum(p, 1 - 1e-12))
    if uniform_negatives:
        log_absent += uniform_negatives * np.log1p(-1.0 / len(counts))
    return -np.expm1(log_absent)


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
        # the end of training: the day after its last purchase
        age_reference=cutoff(train.get_column(T_DAT).max()) + timedelta(days=1) if config.example_age else None,
    )
    vocabs = fit_vocabularies(schema, train, articles, config)
    query, candidate = build_towers(schema, vocabs, config)
    probability = None
    if config.popularity_correction:
        rows = catalogue_rows(train, articles)
        counts = np.bincount(rows[rows >= 0], minlength=articles.height).astype(np.float64)
        pool = min(config.negatives or config.batch_size, config.batch_size)
        probability = batch_probability(counts, pool, config.uniform_negatives)
    model = TwoTowerModel(
        query,
        candidate,
        encode_inputs(candidate, encode(articles, schema.candidate_inputs())),
        temperature=config.temperature,
        sampling_probability=probability,
        uniform_negatives=config.uniform_negatives,
        negatives=config.negatives,
        schema=schema,
        config=config,
    )
    learning_rate: Any = config.learning_rate
    if config.cosine_decay:  # to a twentieth of the rate by the last epoch (early stopping may end sooner)
        steps = config.epochs * -(-train.height // config.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.05)
    model.compile(optimizer=LazyAdam(learning_rate=learning_rate), steps_per_execution=config.steps_per_execution)
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
        # The graph's own input order (its placeholders carry the input names). Calling the graph with a flat
        # list skips the keyword signature's per-call checks: 0.8 ms of a one-row serving call, twice the graph.
        # `_call_flat` is TensorFlow's internal entry (2.21): without it, or with other names, the keyword call.
        names = [t.name.split(":")[0] for t in self._serve.inputs[: len(self.input_specs)]]
        usable = hasattr(self._serve, "_call_flat") and set(names) == set(self.input_specs)
        self._flat_order = names if usable else None

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        args = {k: tf.constant(inputs[k], dtype=spec.dtype) for k, spec in self.input_specs.items()}
        if self._flat_order is None:
            return self._serve(**args)[EMBEDDING].numpy()
        flat = [args[name] for name in self._flat_order]
        return self._serve._call_flat(flat, self._serve.captured_inputs)[EMBEDDING].numpy()


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
        metric: str,
    ) -> None:
        super().__init__()
        self.evaluate, self.n_examples, self.patience, self.log = evaluate, n_examples, patience, log
        self.metric = metric  # e.g. "recall@100"
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
            "val_" + self.metric.replace("@", "_at_"): recall,
            "train_seconds": seconds,
            "examples_per_s": self.n_examples / seconds,
            "eval_seconds": time.perf_counter() - self._start - seconds,
        }
        self.history.append(row)
        self.log(
            f"epoch {row['epoch']}: loss {row['loss']:.4f}  val {self.metric} {recall:.4f}  "
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
    per_row: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[TwoTowerModel, list[dict[str, float]]]:
    """Train on ``train_df`` (retrieval rows), early-stopping on validation recall@``config.eval_k``.

    Validation follows the evaluation protocol (design §6): the customers who bought in ``val_df``, their query
    state as of ``val_start`` (default: the first day of ``val_df``; history from ``train_df`` only), scored
    over the whole catalogue ``articles_df``. ``customers_df`` (e.g. the ``customers`` view) supplies the
    customers' attributes; by default they come from the retrieval rows. ``per_row`` instead watches top-K
    accuracy over the rows of ``val_df``, each queried from its own point-in-time features: the per-customer
    split's protocol, where validation has no single as-of day. The best epoch's weights are restored.
    Returns the model and one dict per epoch (loss, validation recall, examples/s).
    """
    if train_df.height == 0 or val_df.height == 0:
        raise ValueError("fit needs training and validation rows")
    model = build_model(config, features, train_df, articles_df)
    schema = model.schema
    assert schema is not None
    catalogue = candidate_inputs(articles_df, schema)
    query_fn, candidate_fn = tower_function(model.query_model), tower_function(model.candidate_model)
    k = config.eval_k
    if per_row:
        metric = f"top_{k}_accuracy"
        rows = query_inputs(val_df, schema), catalogue_rows(val_df, articles_df)
        evaluate = _per_row_accuracy(query_fn, candidate_fn, *rows, catalogue, k)
    else:
        start = cutoff(val_start or val_df.get_column(T_DAT).min())
        truth = val_df.filter(pl.col(T_DAT) >= start)
        attributes = customers_df if customers_df is not None else customer_attributes(train_df, val_df, schema=schema)
        who = truth.select(CUSTOMER_ID).unique(maintain_order=True).join(attributes, on=CUSTOMER_ID, how="left")
        # the validation queries are fixed: their as-of state is computed once, not every epoch
        queries = query_inputs(queries_as_of(who, train_df, articles_df, start, schema), schema, at=start)
        customer_ids = who.get_column(CUSTOMER_ID).to_numpy()
        article_ids = articles_df.get_column(ARTICLE_ID).to_numpy()

        def evaluate() -> float:
            recs = retrieval_eval.recommend(
                retrieval_eval.embed(query_fn, queries),
                retrieval_eval.embed(candidate_fn, catalogue),
                customer_ids,
                article_ids,
                n=k,
            )
            return retrieval_eval.recall(recs, truth, (k,))[f"recall@{k}"]

        metric = f"recall@{k}"

    data = model.dataset(train_df, articles_df, batch_size=config.batch_size, seed=config.seed)
    callback = _Validation(evaluate, train_df.height, config.patience, log, metric)
    model.fit(data, epochs=config.epochs, callbacks=[callback], verbose=0)
    if callback.best_weights is not None:
        model.set_weights(callback.best_weights)
    return model, callback.history


def _per_row_accuracy(
    query_fn: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    candidate_fn: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    queries: Mapping[str, np.ndarray],
    true_rows: np.ndarray,
    catalogue: Mapping[str, np.ndarray],
    k: int,
) -> Callable[[], float]:
    """Top-``k`` accuracy of the rows behind ``queries`` (each row's own point-in-time query inputs; ``true_rows``
    their bought article's catalogue row) over the whole catalogue."""

    def evaluate() -> float:
        ranks = retrieval_eval.truth_ranks(
            retrieval_eval.embed(query_fn, queries), retrieval_eval.embed(candidate_fn, catalogue), true_rows
        )
        return top_k_accuracy(ranks, k)

    return evaluate
