"""The training machinery under the towers: the lazy optimizer, the loss and its gradient, the epoch order."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from recsys.training.tower_layers import AgeEncoder, IndexOf, LazyAdam, SplitPadding, sampled_softmax_loss
from recsys.training.two_tower import batches


def test_lazy_adam_moves_only_the_rows_a_batch_touched() -> None:
    table = tf.Variable(np.zeros((4, 2), np.float32))
    optimizer = LazyAdam(learning_rate=0.1)
    # rows 1 (twice: the gradients add up) and 3; the first Adam step moves a row by lr * sign(gradient)
    step_1 = tf.IndexedSlices(tf.constant([[1.0, -2.0], [1.0, 0.5], [-3.0, 4.0]]), tf.constant([1, 1, 3]))
    optimizer.apply_gradients([(step_1, table)])
    np.testing.assert_allclose(table.numpy(), [[0, 0], [-0.1, 0.1], [0, 0], [0.1, -0.1]], atol=1e-5)
    # second step touches row 0 only: Keras' Adam would keep moving rows 1 and 3 by their momentum
    optimizer.apply_gradients([(tf.IndexedSlices(tf.constant([[2.0, 2.0]]), tf.constant([0])), table)])
    np.testing.assert_allclose(table.numpy()[1:], [[-0.1, 0.1], [0, 0], [0.1, -0.1]], atol=1e-5)
    assert (table.numpy()[0] < 0).all()


def test_lazy_adam_is_adam_for_dense_gradients() -> None:
    lazy, plain = tf.Variable([1.0, -1.0]), tf.Variable([1.0, -1.0])
    lazy_opt, plain_opt = LazyAdam(learning_rate=0.05), tf.keras.optimizers.Adam(learning_rate=0.05)
    for g in ([0.3, -0.2], [0.1, 0.4]):
        lazy_opt.apply_gradients([(tf.constant(g), lazy)])
        plain_opt.apply_gradients([(tf.constant(g), plain)])
    np.testing.assert_allclose(lazy.numpy(), plain.numpy(), rtol=1e-6)


def test_sampled_softmax_loss_and_gradient_match_tensorflow() -> None:
    rng = np.random.default_rng(0)
    q = tf.Variable(rng.normal(size=(5, 3)).astype(np.float32))
    c = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))
    labels = tf.constant([0, 3, 1, 1, 2])
    log_q = tf.constant(np.log([0.5, 0.1, 0.2, 0.9]).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        ours = tf.reduce_sum(sampled_softmax_loss(q, c, labels, 0.5, log_q) * [1.0, 2.0, 1.0, 0.5, 1.0])
        logits = tf.matmul(q, c, transpose_b=True) / 0.5 - log_q[None, :]
        ref = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        theirs = tf.reduce_sum(ref * [1.0, 2.0, 1.0, 0.5, 1.0])
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)
    for mine, reference in zip(tape.gradient(ours, [q, c]), tape.gradient(theirs, [q, c]), strict=True):
        np.testing.assert_allclose(mine.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)


def test_padding_becomes_minus_one_and_back_to_a_mask() -> None:
    values = tf.constant([["a", "", "zz"]])
    indices = IndexOf("")(values, tf.constant([[3, 0, 0]], tf.int64))  # "zz" is out of vocabulary: index 0
    assert indices.numpy().tolist() == [[3, -1, 0]]
    safe, mask = SplitPadding()(indices)
    assert safe.numpy().tolist() == [[3, 0, 0]] and mask.numpy().tolist() == [[1.0, 0.0, 1.0]]


def test_age_encoder_is_one_now_and_treats_missing_as_now() -> None:
    out = AgeEncoder([7.0, 28.0])(tf.constant([0.0, 7.0, float("nan")])).numpy()
    np.testing.assert_allclose(out, [[1, 1], [np.exp(-1), np.exp(-0.25)], [1, 1]], rtol=1e-6)


def test_batches_cover_every_row_once_and_reshuffle_each_epoch_reproducibly() -> None:
    def epochs(seed: int) -> list[list[list[int]]]:
        ds = batches(10, 4, seed)
        return [[b.numpy().tolist() for b in ds] for _ in range(2)]

    first, second = epochs(3)
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(np.concatenate(first)) == list(range(10)) == sorted(np.concatenate(second))
    assert first != second  # a new order every epoch
    assert epochs(3) == [first, second]  # the same orders from the same seed
    assert [b.numpy().tolist() for b in batches(5, 2, 0, shuffle=False)] == [[0, 1], [2, 3], [4]]
