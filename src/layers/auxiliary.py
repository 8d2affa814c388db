"""DIEN's auxiliary loss (paper eq. 5): the extractor state h_t must tell the next
clicked behaviour e_{t+1} from a sampled non-clicked one e^-_{t+1}."""

from __future__ import annotations

import keras
from keras import ops

from src.layers._checks import non_negative, units_list
from src.layers.activations import check_activation
from src.layers.mlp import MLP
from src.layers.sequence import step_mask


@keras.saving.register_keras_serializable(package="dil")
class AuxiliaryLoss(keras.layers.Layer):
    """L_aux = -mean over valid t of [log s(g(h_t, e_{t+1})) + log(1 - s(g(h_t, e^-_{t+1})))].

    g is an MLP on concat(h, e) ending in one logit; s is the sigmoid. A step t
    counts when step t + 1 is valid. The layer adds `alpha * L_aux` to the model's
    losses, and passes the states
    through unchanged, so that it sits on the model's path to the output.

    Args:
        hidden_units: widths of g's hidden layers (DeepCTR [100, 50]).
        activation: activation of g's hidden layers.
        alpha: weight of the loss in the total.

    Call arguments:
        inputs: `[states [B, T, H], positives [B, T, E], negatives [B, T, E]]`.
        mask: [B, T] boolean, True for valid steps.

    Returns:
        the states, unchanged.
    """

    def __init__(self, hidden_units=(100, 50), activation="sigmoid", alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = units_list("hidden_units", hidden_units)
        self.activation = check_activation(activation, "activation")
        self.alpha = non_negative("alpha", alpha)
        self.scorer = MLP(self.hidden_units, self.activation, output_units=1, name="scorer", dtype=self.dtype_policy)

    def build(self, input_shape):
        states, pos, neg = input_shape
        if tuple(pos) != tuple(neg):
            raise ValueError(f"AuxiliaryLoss: positives {pos} and negatives {neg} differ in shape")
        if states[1] != pos[1]:
            raise ValueError(f"AuxiliaryLoss: states {states} and behaviours {pos} differ in length")
        self.scorer.build((None, None, states[-1] + pos[-1]))

    def call(self, inputs, mask=None, training=None):
        states, pos, neg = inputs
        h = states[:, :-1]
        logit_pos = self.scorer(ops.concatenate([h, pos[:, 1:]], -1), training=training)[..., 0]
        logit_neg = self.scorer(ops.concatenate([h, neg[:, 1:]], -1), training=training)[..., 0]
        # -log s(x) = softplus(-x); -log(1 - s(x)) = softplus(x)
        per_step = ops.softplus(-logit_pos) + ops.softplus(logit_neg)
        per_step = ops.cast(per_step, "float32")
        mask = step_mask(mask)
        if mask is None:
            valid = ops.ones_like(per_step)
        else:
            valid = ops.cast(mask[:, 1:], "float32")
        loss = ops.sum(per_step * valid) / ops.maximum(ops.sum(valid), 1.0)
        if self.alpha > 0:
            self.add_loss(self.alpha * loss)
        return states

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "alpha": self.alpha,
        }
