"""Target attention over a behaviour sequence: DIN's local activation unit.

Scores each behaviour k_t against the target q with an MLP on [q, k, q - k, q * k],
masks padded steps with -2**32 + 1, optionally divides by sqrt(D), and normalises
with a softmax over the sequence (or keeps the raw scores, padding 0, as the DIN
paper does). docs/models.md section 1.
"""

from __future__ import annotations

import math

import keras
import ml_dtypes
import numpy as np
from keras import ops

from src.layers._checks import units_list
from src.layers.activations import check_activation, get_activation, takes_mask
from src.layers.sequence import step_mask

PAD_SCORE = -(2.0**32) + 1


def mask_value(dtype) -> float:
    """The padding score for `dtype`: -2**32 + 1 where it fits, else the dtype's lowest finite.

    -2**32 + 1 overflows to -inf in float16; the lowest finite value still gives a
    weight of exactly 0 after the softmax, without the NaN an all--inf row gives.
    """
    name = keras.backend.standardize_dtype(dtype)
    lowest = float(ml_dtypes.finfo(name).min) if name == "bfloat16" else float(np.finfo(name).min)
    return max(PAD_SCORE, lowest)


@keras.saving.register_keras_serializable(package="dil")
class TargetAttention(keras.layers.Layer):
    """Attention of a target over a behaviour sequence (DIN paper, section 4.3).

    The first MLP layer acts on the concatenation [q, k, q - k, q * k]; it is
    computed as q (Wq + Wd) + k M with M = (Wk - Wd) + diag(q) Wp per row, the
    same product without materialising the [B, T, 4D] input.

    Args:
        hidden_units: widths of the attention MLP (seed [36]; DIN code [80, 40]).
        activation: activation of the hidden layers (name or mapping).
        scale: divide the scores by sqrt(D) after masking.
        softmax: normalise with a softmax over the sequence; if False the
            (masked, scaled) scores are the weights, padding weighted 0.
        query_projection: project the query with Dense(D) + `projection_activation`
            first (DIEN), which also lets the query width differ from D.
        projection_activation: activation of that projection.

    Call arguments:
        inputs: `[query, keys]`, query [B, Dq], keys [B, T, D].
        mask: [B, T] boolean, True for valid steps. All steps valid if None.
        return_attention_scores: also return the weights.

    Returns:
        pooled [B, D], or `(pooled, weights [B, T])`.
    """

    def __init__(
        self,
        hidden_units=(36,),
        activation="sigmoid",
        scale=True,
        softmax=True,
        query_projection=False,
        projection_activation="prelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_units = units_list("hidden_units", hidden_units)
        self.activation = check_activation(activation, "activation")
        self.scale = bool(scale)
        self.softmax = bool(softmax)
        self.query_projection = bool(query_projection)
        self.projection_activation = check_activation(projection_activation, "projection_activation")
        widths = self.hidden_units + (1,)
        policy = self.dtype_policy  # sub-layers compute in the layer's own policy (mixed, float64, ...)
        self.activations = [
            get_activation(self.activation, "activation", name=f"act_{i}", dtype=policy)
            for i in range(len(self.hidden_units))
        ]
        self.later = [keras.layers.Dense(u, name=f"dense_{i + 1}", dtype=policy) for i, u in enumerate(widths[1:])]
        self.first_units = widths[0]

    def build(self, input_shape):
        q_shape, k_shape = input_shape
        if len(q_shape) != 2 or len(k_shape) != 3:
            raise ValueError(
                "TargetAttention `inputs` must be [query [B, Dq], keys [B, T, D]], "
                f"got shapes {q_shape} and {k_shape}"
            )
        d = k_shape[-1]
        if self.query_projection:
            self.projection = keras.layers.Dense(d, name="query_projection", dtype=self.dtype_policy)
            self.projection_act = get_activation(self.projection_activation, name="query_projection_act",
                                                 dtype=self.dtype_policy)
            self.projection.build(q_shape)
            self.projection_act.build((q_shape[0], d))
        elif q_shape[-1] != d:
            raise ValueError(
                f"TargetAttention: query width {q_shape[-1]} differs from key width {d}; "
                "set `query_projection=True` to project the query"
            )
        self.kernel = self.add_weight(shape=(4 * d, self.first_units), name="kernel")
        self.bias = self.add_weight(shape=(self.first_units,), initializer="zeros", name="bias")
        shape = (k_shape[0], k_shape[1], self.first_units)
        for i, dense in enumerate(self.later):
            self.activations[i].build(shape)
            dense.build(shape)
            shape = shape[:-1] + (dense.units,)

    def scores(self, query, keys, training=None, mask=None):
        """Unmasked attention logits [B, T] (the MLP output); `mask` [B, T] keeps padded steps out of
        the batch statistics of activations that have them (Dice)."""
        if self.query_projection:
            query = self.projection_act(self.projection(query), training=training)
        d = keys.shape[-1]
        wq, wk, wd, wp = (self.kernel[i * d : (i + 1) * d] for i in range(4))
        q_part = ops.matmul(query, wq + wd) + self.bias  # [B, H1]
        # k (Wk - Wd) + (q * k) Wp = k M_b with M_b = (Wk - Wd) + diag(q_b) Wp, one [D, H1] per row
        per_row = (wk - wd)[None] + query[:, :, None] * wp[None]  # [B, D, H1]
        k_part = ops.matmul(keys, per_row)  # [B, T, H1]
        x = q_part[:, None, :] + k_part
        for act, dense in zip(self.activations, self.later):
            x = dense(act(x, training=training, mask=mask) if takes_mask(act) else act(x, training=training))
        return x[..., 0]

    def call(self, inputs, mask=None, training=None, return_attention_scores=False):
        query, keys = inputs
        mask = step_mask(mask)
        logits = self.scores(query, keys, training=training, mask=mask)
        if keras.backend.standardize_dtype(logits.dtype) in ("float16", "bfloat16"):
            logits = ops.cast(logits, "float32")  # softmax over the history in float32 (only ever an up-cast)
        if mask is None:
            valid = ops.ones_like(logits, dtype="bool")
        else:
            valid = ops.cast(mask, "bool")
        d = keys.shape[-1]
        if self.softmax:
            logits = ops.where(valid, logits, mask_value(logits.dtype))
            if self.scale:
                logits = logits / math.sqrt(d)
            weights = ops.softmax(logits, axis=-1) * ops.cast(valid, logits.dtype)
        else:
            if self.scale:
                logits = logits / math.sqrt(d)
            weights = ops.where(valid, logits, ops.zeros_like(logits))
        weights = ops.cast(weights, keys.dtype)
        pooled = ops.matmul(weights[:, None, :], keys)[:, 0, :]
        if return_attention_scores:
            return pooled, weights
        return pooled

    def compute_output_spec(self, inputs, mask=None, training=None, return_attention_scores=False):
        keys = inputs[1]
        pooled = keras.KerasTensor((keys.shape[0], keys.shape[-1]), dtype=keys.dtype)
        if return_attention_scores:
            return pooled, keras.KerasTensor((keys.shape[0], keys.shape[1]), dtype=keys.dtype)
        return pooled

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "scale": self.scale,
            "softmax": self.softmax,
            "query_projection": self.query_projection,
            "projection_activation": self.projection_activation,
        }
