"""A model of one's own, named from the config: `model=base "+model._target_=docs.examples.mylab.models.max_pooling"`.

The history is pooled by its largest value per embedding dimension, over the valid steps, instead of the
base model's sum. Everything else is the project's: the inputs and their embeddings, side features
included (`embed_inputs`), and the prediction head (`head`), so the model trains, tracks and sweeps like
the built-in ones. Its config is typed by the schema of `model.name` (here base: embedding, mlp,
activation).
"""

import keras
from keras import ops

from src.models.common import embed_inputs, head


@keras.saving.register_keras_serializable(package="mylab")
class MaskedMaxPooling(keras.layers.Layer):
    """The largest value per dimension over the valid steps of a sequence [B, T, D] -> [B, D]."""

    def call(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is not None:
            inputs = ops.where(mask[..., None], inputs, ops.full_like(inputs, -1e4))
        return ops.max(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None


def max_pooling(cfg, vocab, max_len, features=()):
    """The builder `model._target_` names: (typed model config, vocabulary sizes, history length, side
    features) -> keras.Model."""
    f = embed_inputs(cfg, vocab, max_len, features=features)
    interest = MaskedMaxPooling(name="max_pooling")(f.history, mask=f.mask)
    return head(f, interest, cfg, name="max_pooling")
