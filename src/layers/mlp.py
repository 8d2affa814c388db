"""A multilayer perceptron: Dense -> [BatchNorm] -> activation -> [Dropout], per layer."""

from __future__ import annotations

import keras

from src.layers._checks import fraction, units_list
from src.layers.activations import check_activation, get_activation


@keras.saving.register_keras_serializable(package="dil")
class MLP(keras.layers.Layer):
    """Stacked fully connected layers, each with its own activation instance.

    Args:
        hidden_units: widths of the hidden layers, e.g. [200, 80]; may be empty.
        activation: activation name or `{"name": ..., ...}` (see activations.py).
        batch_norm: batch normalisation before each activation.
        dropout: dropout rate after each activation, in [0, 1).
        output_units: if set, a final linear Dense layer of this width.

    Call arguments:
        inputs: [..., C].

    Returns:
        [..., hidden_units[-1]] (or [..., output_units]).
    """

    def __init__(
        self,
        hidden_units=(),
        activation="relu",
        batch_norm=False,
        dropout=0.0,
        output_units=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_units = units_list("hidden_units", hidden_units)
        self.activation = check_activation(activation, "activation")
        self.batch_norm = bool(batch_norm)
        self.dropout = fraction("dropout", dropout)
        self.output_units = (
            None if output_units is None else units_list("output_units", [output_units])[0]
        )
        policy = self.dtype_policy  # sub-layers compute in the layer's own policy (mixed, float64, ...)
        n = len(self.hidden_units)
        self.dense = [keras.layers.Dense(u, name=f"dense_{i}", dtype=policy) for i, u in enumerate(self.hidden_units)]
        self.norms = (
            [keras.layers.BatchNormalization(name=f"bn_{i}", dtype=policy) for i in range(n)]
            if self.batch_norm
            else []
        )
        self.activations = [
            get_activation(self.activation, "activation", name=f"act_{i}", dtype=policy) for i in range(n)
        ]
        self.drops = (
            [keras.layers.Dropout(self.dropout, name=f"drop_{i}", dtype=policy) for i in range(n)]
            if self.dropout > 0
            else []
        )
        self.out = (
            keras.layers.Dense(self.output_units, name="output", dtype=policy) if self.output_units else None
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, dense in enumerate(self.dense):
            dense.build(shape)
            shape = shape[:-1] + (dense.units,)
            if self.norms:
                self.norms[i].build(shape)
            self.activations[i].build(shape)
        if self.out is not None:
            self.out.build(shape)

    def call(self, inputs, training=None):
        x = inputs
        for i, dense in enumerate(self.dense):
            x = dense(x)
            if self.norms:
                x = self.norms[i](x, training=training)
            x = self.activations[i](x, training=training)
            if self.drops:
                x = self.drops[i](x, training=training)
        if self.out is not None:
            x = self.out(x)
        return x

    def compute_output_shape(self, input_shape):
        width = self.output_units or (self.hidden_units[-1] if self.hidden_units else input_shape[-1])
        return tuple(input_shape[:-1]) + (width,)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout,
            "output_units": self.output_units,
        }

