"""The speed yardstick of `python -m src.bench`: DIN and DIEN written in plain Keras, the obvious way.

None of the project's layers: Keras' own Embedding, GRU, RNN and Dense, and one small AUGRU cell. The
architecture is the benchmark's (an item embedding shared by the target and the history, an attention MLP
over [q, k, q-k, q*k] with 36 sigmoid units, softmax scaled by sqrt(D), DIEN's GRU extractor and AUGRU
evolution, an MLP of 200 and 80 ReLU units), so that the project's models and these train the same
function and the ratio of their throughputs is the project's cost or gain. Another file with the same
`build` can stand in (`python -m src.bench --baseline FILE`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


class AUGRUCell(layers.Layer):
    """A GRU cell whose update gate is scaled by the step's attention score (the input's last column)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        d = input_shape[-1] - 1
        self.kernel = self.add_weight(shape=(d, 3 * self.units), name="kernel")
        self.recurrent = self.add_weight(shape=(self.units, 3 * self.units), name="recurrent")
        self.bias = self.add_weight(shape=(3 * self.units,), initializer="zeros", name="bias")

    def call(self, inputs, states):
        h = states[0] if isinstance(states, (list, tuple)) else states
        x, score = inputs[:, :-1], inputs[:, -1:]
        xz, xr, xh = ops.split(ops.matmul(x, self.kernel) + self.bias, 3, axis=-1)
        hz, hr, hh = ops.split(ops.matmul(h, self.recurrent), 3, axis=-1)
        update = score * ops.sigmoid(xz + hz)
        candidate = ops.tanh(xh + ops.sigmoid(xr + hr) * hh)
        h = (1 - update) * h + update * candidate
        return h, [h]


def build(model: str, n_items: int, history: int, dim: int, jit: bool = False) -> keras.Model:
    """A compiled plain-Keras `din` or `dien` on inputs [history ids [B, T] (0 pads), target ids [B]]."""
    hist = keras.Input((history,), dtype="int32")
    target = keras.Input((), dtype="int32")
    embed = layers.Embedding(n_items, dim)
    keys, query = embed(hist), embed(target)
    valid = ops.not_equal(hist, 0)
    if model == "dien":
        keys = layers.GRU(dim, return_sequences=True)(keys, mask=valid)
    q = ops.repeat(ops.expand_dims(query, 1), history, axis=1)
    hidden = layers.Dense(36, activation="sigmoid")(ops.concatenate([q, keys, q - keys, q * keys], axis=-1))
    scores = layers.Dense(1)(hidden)[..., 0]
    weights = ops.softmax(ops.where(valid, scores, -1e9) / np.sqrt(dim), axis=-1)
    if model == "dien":
        interest = layers.RNN(AUGRUCell(dim))(ops.concatenate([keys, weights[..., None]], axis=-1), mask=valid)
    else:
        interest = ops.sum(keys * weights[..., None], axis=1)
    x = layers.Dense(200, activation="relu")(ops.concatenate([interest, query], axis=-1))
    x = layers.Dense(80, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid")(x)
    net = keras.Model([hist, target], out)
    net.compile("adam", "binary_crossentropy", jit_compile=jit)
    return net
