"""Small sequence helpers as layers, so that models stay plain, serialisable graphs."""

from __future__ import annotations

import keras
from keras import ops


def step_mask(mask):
    """The [B, T] mask of a call: Keras hands list inputs a list of masks, one per input."""
    if isinstance(mask, (list, tuple)):
        masks = [m for m in mask if m is not None]
        return masks[0] if masks else None
    return mask


@keras.saving.register_keras_serializable(package="dil")
class SequenceMask(keras.layers.Layer):
    """Valid-step mask from lengths: step t of row b is valid iff t < length[b].

    Call arguments:
        inputs: `[lengths [B], sequence [B, T, ...]]`; the sequence gives T.

    Returns:
        [B, T] boolean.
    """

    def call(self, inputs):
        lengths, seq = inputs
        steps = ops.arange(ops.shape(seq)[1], dtype="int32")
        return steps[None, :] < ops.cast(lengths, "int32")[:, None]

    def compute_output_shape(self, input_shape):
        return (input_shape[1][0], input_shape[1][1])

    def compute_output_spec(self, inputs):
        seq = inputs[1]
        return keras.KerasTensor((seq.shape[0], seq.shape[1]), dtype="bool")


@keras.saving.register_keras_serializable(package="dil")
class MaskedSumPooling(keras.layers.Layer):
    """Sum over the valid steps of a sequence: the base model's pooling.

    Call arguments:
        inputs: sequence [B, T, D].
        mask: [B, T] boolean.

    Returns:
        [B, D].
    """

    def call(self, inputs, mask=None):
        mask = step_mask(mask)
        if mask is None:
            return ops.sum(inputs, axis=1)
        return ops.sum(inputs * ops.cast(mask, inputs.dtype)[..., None], axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="dil")
class TableLookup(keras.layers.Layer):
    """A fixed table indexed by id: an item's side feature (src/data/features.py), looked up alike for the
    target, each behaviour and each sampled negative. The table is a non-trainable weight, so a saved model
    carries it.

    Args:
        rows: the table's length (the item vocabulary).
        numeric: float values, returned as [..., 1] in the compute dtype; else int ids, returned as they are.

    Call arguments:
        inputs: ids [...] (int).
    """

    def __init__(self, rows: int, numeric: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.numeric = int(rows), bool(numeric)
        self.table = self.add_weight(shape=(self.rows,), initializer="zeros", trainable=False, name="table",
                                     dtype="float32" if self.numeric else "int32", autocast=False)

    def call(self, inputs):
        out = ops.take(self.table, ops.cast(inputs, "int32"), axis=0)
        return ops.cast(out, self.compute_dtype)[..., None] if self.numeric else out

    def compute_output_spec(self, inputs):
        if self.numeric:
            return keras.KerasTensor((*inputs.shape, 1), dtype=self.compute_dtype)
        return keras.KerasTensor(inputs.shape, dtype="int32")

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "numeric": self.numeric}
