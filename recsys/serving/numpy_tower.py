"""A saved tower run in numpy: the query predictor's path for one request's few rows.

A TensorFlow graph call has a fixed cost of ~1 ms per request, however small the batch; the query tower's
actual work for one customer (a few lookups, a pooled history, two small matrix products) is tens of
microseconds in numpy. :class:`NumpyTower` reloads the Keras model behind a SavedModel and turns its
functional graph into a list of numpy steps, one per layer call, with the layer's weights as arrays.

Only the layer types the towers are built from are translated; any other layer (e.g. the candidate tower's
``TextVectorization``) raises :class:`UnsupportedLayer`, and :func:`fastest_tower` keeps the TensorFlow tower.
A tower that translates is also checked against TensorFlow on a probe input before it is used: serving never
runs a numpy tower that disagrees with the trained graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Op = Callable[..., Any]


class UnsupportedLayer(ValueError):
    """The graph holds a layer (or layer option) that has no numpy translation here."""


@dataclass(frozen=True)
class _Ref:
    """A graph tensor in a layer call's arguments (resolved to its computed value at run time)."""

    key: str


@dataclass(frozen=True)
class _Step:
    op: Op
    args: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # the call's positional arguments from computed values
    kwargs: Callable[[Mapping[str, Any]], dict[str, Any]] | None
    outputs: tuple[str, ...]


def _resolver(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    """``env -> value`` with each :class:`_Ref` replaced by its computed value (built once: run time is calls)."""
    if isinstance(value, _Ref):
        key = value.key
        return lambda env: env[key]
    if isinstance(value, list | tuple):
        kind, parts = type(value), [_resolver(v) for v in value]
        return lambda env: kind([part(env) for part in parts])
    if isinstance(value, dict):
        items = [(k, _resolver(v)) for k, v in value.items()]
        return lambda env: {k: part(env) for k, part in items}
    return lambda env: value


class _Program:
    """A functional Keras model as numpy steps in the graph's own evaluation order."""

    def __init__(self, model: Any) -> None:
        import tensorflow as tf

        # (input layer name: the key of the inputs dict, also of a nested model's call; graph tensor id)
        self.inputs = [(t._keras_history.layer.name, str(id(t))) for t in model.inputs]
        self.outputs = [str(id(t)) for t in model.outputs]
        self.steps: list[_Step] = []
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input:
                    continue
                flat = list(node._flat_arguments)
                for key, index in node._keras_inputs_ids_and_indices:
                    flat[index] = _Ref(key)
                args, kwargs = tf.nest.pack_sequence_as((node.call_args, list(node.call_kwargs.values())), flat)
                kwargs = dict(zip(node.call_kwargs, kwargs, strict=True))
                kwargs.pop("training", None)
                outputs = tuple(node.flat_output_ids)
                call_kwargs = _resolver(kwargs) if kwargs else None
                self.steps.append(_Step(_translate(node.layer), _resolver(tuple(args)), call_kwargs, outputs))

    def run(self, env: dict[str, Any]) -> list[Any]:
        for step in self.steps:
            args = step.args(env)
            result = step.op(*args, **step.kwargs(env)) if step.kwargs else step.op(*args)
            if len(step.outputs) == 1:
                env[step.outputs[0]] = result
            else:
                env.update(zip(step.outputs, result, strict=True))
        return [env[key] for key in self.outputs]


class NumpyTower:
    """A tower as numpy: call it like :class:`~recsys.training.two_tower.SavedTower` (dict of arrays → [n, dim])."""

    def __init__(self, model: Any) -> None:
        self._program = _Program(model)
        if len(self._program.outputs) != 1:
            raise UnsupportedLayer(f"a tower has one output, this model has {len(self._program.outputs)}")

    @classmethod
    def load(cls, path: str | Path) -> NumpyTower:
        """The tower saved at ``path`` (a SavedModel written by ``save_tower``); raises :class:`UnsupportedLayer`."""
        import tf_keras as keras

        import recsys.training.tower_layers  # noqa: F401  (registers the custom layers for loading)

        return cls(keras.models.load_model(str(path), compile=False))

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        env: dict[str, Any] = {key: np.asarray(inputs[name]) for name, key in self._program.inputs}
        return np.asarray(self._program.run(env)[0], dtype=np.float32)


def fastest_tower(path: str | Path, saved: Any, probe: Mapping[str, np.ndarray], log: Callable[[str], None]) -> Any:
    """The numpy tower when it translates and matches ``saved`` (the TensorFlow tower) on ``probe``; else ``saved``.

    ``saved`` runs on ``probe`` first in any case, which also traces its graph before traffic.
    """
    expected = saved(probe)
    try:
        tower = NumpyTower.load(path)
        got = tower(probe)
    except Exception as exc:  # the numpy path is only an optimisation: any failure keeps the graph
        log(f"tower {path}: TensorFlow graph kept ({type(exc).__name__}: {exc})")
        return saved
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        log(f"tower {path}: TensorFlow graph kept (the numpy translation differs on the probe input)")
        return saved
    return tower


# -- one numpy function per layer type --------------------------------------------------------------------------


def _translate(layer: Any) -> Op:
    kind = type(layer).__name__
    if kind in ("Functional", "Model"):
        return _nested(layer)
    build = _BUILDERS.get(kind)
    if build is None:
        raise UnsupportedLayer(f"layer {layer.name!r} of type {kind} has no numpy translation")
    return build(layer)


def _nested(model: Any) -> Op:
    program = _Program(model)

    def run(inputs: Any) -> Any:
        if isinstance(inputs, dict):
            values = [inputs[name] for name, _ in program.inputs]
        else:
            values = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        outputs = program.run({key: v for (_, key), v in zip(program.inputs, values, strict=True)})
        return outputs[0] if len(outputs) == 1 else outputs

    return run


def _lookup(layer: Any) -> Op:
    config = layer.get_config()
    if config.get("num_oov_indices") != 1 or config.get("mask_token") is not None or layer.output_mode != "int":
        raise UnsupportedLayer(f"lookup {layer.name!r}: only one OOV index, no mask token, integer output")
    vocabulary = layer.get_vocabulary()  # index 0 is the OOV token
    strings = type(layer).__name__ == "StringLookup"
    index = {(str(v) if strings else int(v)): i for i, v in enumerate(vocabulary) if i > 0}

    def lookup(values: np.ndarray) -> np.ndarray:
        flat = values.ravel().tolist()
        if strings:
            flat = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
        return np.fromiter((index.get(v, 0) for v in flat), np.int64, len(flat)).reshape(values.shape)

    return lookup


def _index_of(layer: Any) -> Op:
    pad = layer.pad

    def index_of(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
        indices = indices.astype(np.int32)
        return indices if pad is None else np.where(values == pad, np.int32(-1), indices)

    return index_of


def _embedding(layer: Any) -> Op:
    table = np.asarray(layer.embeddings.numpy(), dtype=np.float32)
    return lambda indices: table[indices]


def _dense(layer: Any) -> Op:
    activation = layer.activation.__name__
    if activation not in ("relu", "linear"):
        raise UnsupportedLayer(f"dense {layer.name!r}: activation {activation}")
    kernel = np.asarray(layer.kernel.numpy(), dtype=np.float32)
    bias = np.asarray(layer.bias.numpy(), dtype=np.float32) if layer.use_bias else np.zeros(kernel.shape[1], np.float32)
    relu = activation == "relu"

    def dense(x: np.ndarray) -> np.ndarray:
        y = x.astype(np.float32) @ kernel + bias
        return np.maximum(y, 0.0) if relu else y

    return dense


def _reshape(layer: Any) -> Op:
    shape = tuple(layer.target_shape)
    return lambda x: np.reshape(x, (-1, *shape))


def _concatenate(layer: Any) -> Op:
    axis = layer.axis
    return lambda xs: np.concatenate([x.astype(np.float32) for x in xs], axis=axis)


def _unit_normalization(layer: Any) -> Op:
    axis = layer.axis

    def normalise(x: np.ndarray) -> np.ndarray:  # tf.math.l2_normalize: x / sqrt(max(Σx², 1e-12))
        squares = np.sum(x * x, axis=axis, keepdims=True)
        return x / np.sqrt(np.maximum(squares, np.float32(1e-12)))

    return normalise


def _split_padding(_: Any) -> Op:
    return lambda indices: (np.maximum(indices, 0), (indices >= 0).astype(np.float32))


def _padding_mask(layer: Any) -> Op:
    pad = layer.pad
    return lambda values: (values != pad).astype(np.float32)


def _weighted_mean(_: Any) -> Op:
    def weighted_mean(embeddings: np.ndarray, weights: np.ndarray) -> np.ndarray:
        weights = weights.astype(np.float32)
        total = weights.sum(axis=1, keepdims=True)
        pooled = np.einsum("nle,nl->ne", embeddings, weights)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, pooled / np.where(total > 0, total, 1.0), 0.0).astype(np.float32)

    return weighted_mean


def _numeric_encoder(layer: Any) -> Op:
    mean, std = np.asarray(layer.mean, np.float32), np.asarray(layer.std, np.float32)

    def encode(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        x = np.where(missing, np.float32(0.0), values).astype(np.float32)
        z = np.where(missing, np.float32(0.0), (np.sign(x) * np.log1p(np.abs(x)) - mean) / std)
        return np.concatenate([z, missing.astype(np.float32)], axis=1).astype(np.float32)

    return encode


def _age_encoder(layer: Any) -> Op:
    scales = np.asarray(layer.scales, np.float32)

    def encode(days: np.ndarray) -> np.ndarray:
        days = np.where(np.isnan(days), np.float32(0.0), days).astype(np.float32)
        return np.exp(-days[:, None] / scales[None, :]).astype(np.float32)

    return encode


def _log_shares(layer: Any) -> Op:
    size, epsilon = int(layer.size), np.float32(layer.epsilon)

    def log_shares(indices: np.ndarray, shares: np.ndarray) -> np.ndarray:
        dense = np.zeros((indices.shape[0], size), np.float32)
        valid = (indices >= 0) & (indices < size)  # tf.one_hot of an index out of range is all zeros
        rows = np.broadcast_to(np.arange(indices.shape[0])[:, None], indices.shape)
        np.add.at(dense, (rows[valid], indices[valid]), shares.astype(np.float32)[valid])
        return np.log(dense + epsilon)

    return log_shares


_BUILDERS: dict[str, Callable[[Any], Op]] = {
    "StringLookup": _lookup,
    "IntegerLookup": _lookup,
    "IndexOf": _index_of,
    "Embedding": _embedding,
    "Dense": _dense,
    "Reshape": _reshape,
    "Concatenate": _concatenate,
    "UnitNormalization": _unit_normalization,
    "SplitPadding": _split_padding,
    "PaddingMask": _padding_mask,
    "WeightedMean": _weighted_mean,
    "NumericEncoder": _numeric_encoder,
    "AgeEncoder": _age_encoder,
    "LogShares": _log_shares,
}
