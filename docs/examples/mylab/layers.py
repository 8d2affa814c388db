"""An activation in a user's own code (docs/extending.md): listed in the config's `extensions`, its module is
imported before the config's names are checked, and `model.activation.name=swish` selects it."""

import keras
from keras import ops

from src.layers.activations import register_activation


@register_activation("swish")
class Swish(keras.layers.Layer):
    """x * sigmoid(beta * x), with beta learned per channel (beta = 1 at the start)."""

    def build(self, input_shape):
        self.beta = self.add_weight(name="beta", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * ops.sigmoid(self.beta * x)
