"""The small Keras pieces the two towers are made of, and the optimizer that keeps big id tables cheap.

Every layer is registered, so that a saved tower also reloads as a Keras model. Lists reach the towers' trainable
*core* as integer indices with ``-1`` at the padding (:class:`IndexOf` makes them from raw values,
:class:`SplitPadding` turns them back into a gatherable index and a mask), so one encoded form serves the saved
tower (raw inputs) and training (inputs encoded once, before the first epoch).

Importing this module sets ``TF_USE_LEGACY_KERAS`` before TensorFlow, like :mod:`recsys.training.two_tower`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf
import tf_keras as keras


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


@keras.saving.register_keras_serializable(package="recsys")
class AgeEncoder(keras.layers.Layer):
    """Days → [exp(−days / s) for each scale s]: 1 at age 0 ("now"), fading at several speeds.

    The basis lets a tower express how recent a training example is at the time scales articles rise and fade
    on; missing (NaN) counts as age 0, so a caller that does not know the input asks about "now".
    """

    def __init__(self, scales: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scales = list(scales)

    def call(self, days: tf.Tensor) -> tf.Tensor:
        days = tf.where(tf.math.is_nan(days), tf.zeros_like(days), days)
        return tf.exp(-days[:, None] / tf.constant(self.scales, tf.float32)[None, :])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scales": self.scales}


@keras.saving.register_keras_serializable(package="recsys")
class LogShares(keras.layers.Layer):
    """A padded list of (category index, share) → log(share + ε) for every category of a small vocabulary.

    Category affinities enter the towers twice: as a weighted bag of the category embeddings the candidate tower
    shares, and as this dense profile, on which a purchase probability is close to linear (a customer's type
    preference is a log-odds; its shares estimate the odds). Index -1 (padding) adds nothing.
    """

    def __init__(self, size: int, epsilon: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size, self.epsilon = size, epsilon

    def call(self, indices: tf.Tensor, shares: tf.Tensor) -> tf.Tensor:
        dense = tf.reduce_sum(tf.one_hot(indices, self.size) * shares[:, :, None], axis=1)
        return tf.math.log(dense + self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="recsys")
class IndexOf(keras.layers.Layer):
    """A lookup's indices as int32, with -1 where the raw value is the list padding ``pad`` (None: no padding).

    Out-of-vocabulary values keep the lookup's index 0, so an unseen article in a history still counts (with
    the shared OOV vector) while the padding does not count at all.
    """

    def __init__(self, pad: str | int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, values: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
        indices = tf.cast(indices, tf.int32)
        if self.pad is None:
            return indices
        padding = tf.equal(values, tf.constant(self.pad, dtype=values.dtype))
        return tf.where(padding, tf.constant(-1, tf.int32), indices)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="recsys")
class SplitPadding(keras.layers.Layer):
    """Indices with -1 padding → (indices safe to gather, 1.0/0.0 mask)."""

    def call(self, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.maximum(indices, 0), tf.cast(indices >= 0, tf.float32)


@tf.function(jit_compile=True)
def _xla_sum_rows(values: tf.Tensor, segments: tf.Tensor) -> tf.Tensor:
    return tf.math.unsorted_segment_sum(values, segments, tf.shape(values)[0])


def _sum_rows(values: tf.Tensor, segments: tf.Tensor) -> tf.Tensor:
    """``unsorted_segment_sum`` into as many rows as ``values`` has (the caller slices those it needs).

    TF's CPU kernel is ~10x slower than XLA's (41k x 64 rows: 8 ms vs 0.7 ms). XLA compiles per shape and the
    number of rows changes with every batch (distinct candidates), so the rows are padded with zeros to a
    multiple of 1024: a handful of compilations per run instead of one per step.
    """
    n = tf.shape(values)[0]
    pad = (-n) % 1024
    padded = tf.pad(values, [[0, pad], [0, 0]])
    return _xla_sum_rows(padded, tf.pad(segments, [[0, pad]]))


class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse (embedding) updates read and write only the rows a batch touched.

    Keras' Adam decays the moments of a whole table on every step, even for a sparse gradient: with H&M's 1.4M
    customers x 64 that is ~90M floats rewritten per step for 2k rows used. Here the rows of an
    ``IndexedSlices`` gradient are summed per index, their moments updated and the rows moved (TF Addons'
    LazyAdam: rows absent from a batch keep stale moments, which is the usual trade for recommender tables).
    Dense gradients get plain Adam.
    """

    def _deduplicate_sparse_grad(self, grads: list[Any]) -> list[Any]:
        out = []
        for grad in grads:
            if isinstance(grad, tf.IndexedSlices):
                rows, position = tf.unique(grad.indices)
                summed = _sum_rows(grad.values, position)[: tf.shape(rows)[0]]
                grad = tf.IndexedSlices(summed, rows, grad.dense_shape)
            out.append(grad)
        return out

    def update_step(self, gradient: Any, variable: tf.Variable) -> None:
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        rows, grad = gradient.indices, gradient.values  # distinct rows: see _deduplicate_sparse_grad
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))
        return None


@tf.custom_gradient
def _cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], Any]]:
    """−log softmax(logits)[label] per row, with its gradient (softmax − one-hot) formed in place.

    TF's ``sparse_softmax_cross_entropy_with_logits`` kernel measured ~3x slower on CPU for 2048 x 1400.
    """
    log_p = tf.nn.log_softmax(logits)
    at = tf.stack([tf.range(tf.shape(labels)[0]), labels], axis=1)

    def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, None]:
        return tf.tensor_scatter_nd_sub(tf.exp(log_p) * upstream[:, None], at, upstream), None

    return -tf.gather_nd(log_p, at), grad


@tf.custom_gradient
def _pooled_cross_entropy(positive: tf.Tensor, negatives: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], Any]]:
    """−log softmax of ``positive`` [B] among itself and ``negatives`` [B, K] (logits), with its gradient."""
    top = tf.maximum(tf.reduce_max(negatives, axis=1), positive)
    e_negative = tf.exp(negatives - top[:, None])
    e_positive = tf.exp(positive - top)
    total = e_positive + tf.reduce_sum(e_negative, axis=1)

    def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        scale = upstream / total
        return scale * e_positive - upstream, scale[:, None] * e_negative

    return tf.math.log(total) + top - positive, grad


def sampled_softmax_loss(
    queries: tf.Tensor,
    candidates: tf.Tensor,
    labels: tf.Tensor,
    temperature: float,
    log_q: tf.Tensor | None = None,
    n_negatives: tf.Tensor | int | None = None,
) -> tf.Tensor:
    """Per query i: −log softmax(q·c / temperature − log_q) at its own candidate ``labels[i]``.

    The softmax runs over all candidates, or (``n_negatives``) over the query's own candidate and the first
    ``n_negatives`` candidates, a shared pool of negatives in which a query's own candidate counts once. The
    temperature scales the queries ([B, dim]) rather than the logits ([B, candidates]).
    """
    queries = queries / temperature
    labels = tf.cast(labels, tf.int32)
    if n_negatives is None:
        logits = tf.matmul(queries, candidates, transpose_b=True)
        return _cross_entropy(logits if log_q is None else logits - log_q[None, :], labels)
    pool = candidates[:n_negatives]
    negatives = tf.matmul(queries, pool, transpose_b=True)
    positive = tf.reduce_sum(queries * tf.gather(candidates, labels), axis=1)
    if log_q is not None:
        negatives -= log_q[None, : tf.shape(pool)[0]]
        positive -= tf.gather(log_q, labels)
    inside = tf.where(labels < tf.shape(pool)[0])[:, 0]  # queries whose own candidate is in the pool
    own = tf.stack([tf.cast(inside, tf.int32), tf.gather(labels, inside)], axis=1)
    negatives = tf.tensor_scatter_nd_update(negatives, own, tf.fill(tf.shape(inside), negatives.dtype.min))
    return _pooled_cross_entropy(positive, negatives)
