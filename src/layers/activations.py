"""Activations selectable by name: Dice (DIN paper, eq. 9), PReLU and Keras' own.

An activation is given as a name (`"dice"`, `"prelu"`, `"sigmoid"`, `"relu"`, ...)
or as a dict `{"name": "dice", "epsilon": 1e-9, ...}` whose other keys are the
layer's arguments. `get_activation` turns either into a fresh layer, so that every
hidden layer of an MLP gets its own parameters and statistics.
"""

from __future__ import annotations

import keras
from keras import ops

from src.layers._checks import fraction, positive

_REGISTRY: dict[str, type[keras.layers.Layer]] = {}


def register_activation(name: str):
    """Class decorator: makes a Keras layer selectable as activation `name`."""

    def wrap(cls):
        _REGISTRY[name] = cls
        return keras.saving.register_keras_serializable(package="dil")(cls)

    return wrap


def _channel_axes(ndim: int) -> list[int]:
    """Axes the statistics are taken over: all but the channel axis."""
    return list(range(ndim - 1))


@register_activation("dice")
class Dice(keras.layers.Layer):
    """Data-adaptive activation (DIN paper, eq. 9).

    p(s) = sigmoid((s - E[s]) / sqrt(Var[s] + eps)); f(s) = p(s) * s + (1 - p(s)) * alpha * s.
    E and Var are batch statistics in training and moving averages at inference; on
    [B, T, C] input they are taken over B and T together. alpha is per channel,
    initialised to 0.

    Args:
        epsilon: added to the variance.
        momentum: of the moving averages (as in Keras' BatchNormalization).
        use_beta: adds a learnable shift inside the sigmoid (init 0), as the
            original DIN code does; the paper has none.
    """

    def __init__(self, epsilon=1e-9, momentum=0.99, use_beta=False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = positive("epsilon", epsilon)  # 0 divides by zero on a constant channel
        self.supports_masking = True  # elementwise: a mask passes through
        self.momentum = fraction("momentum", momentum)
        self.use_beta = bool(use_beta)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("Dice needs a known channel dimension (last axis)")
        self.alpha = self.add_weight(shape=(channels,), initializer="zeros", name="alpha")
        # the statistics stay in the variable dtype (float32 under mixed precision): never autocast
        self.moving_mean = self.add_weight(
            shape=(channels,), initializer="zeros", trainable=False, name="moving_mean", autocast=False
        )
        self.moving_variance = self.add_weight(
            shape=(channels,), initializer="ones", trainable=False, name="moving_variance", autocast=False
        )
        self.beta = (
            self.add_weight(shape=(channels,), initializer="zeros", name="beta", autocast=False)
            if self.use_beta
            else None
        )

    def call(self, inputs, training=None, mask=None):
        """Args: inputs [..., C]; mask [B, T] for [B, T, C] inputs: the batch statistics are taken over
        the valid steps only, so that padding does not change them."""
        stat_dtype = self.moving_mean.dtype  # float32, or float64 in a float64 layer
        xs = ops.cast(inputs, stat_dtype)
        if training:
            axes = _channel_axes(len(inputs.shape))
            if mask is not None and len(inputs.shape) == 3:
                w = ops.cast(mask, stat_dtype)[..., None]
                n = ops.maximum(ops.sum(w, axis=axes), 1.0)
                mean = ops.sum(xs * w, axis=axes) / n
                variance = ops.sum(w * ops.square(xs - mean), axis=axes) / n
            else:
                mean, variance = ops.moments(xs, axes=axes)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        z = (xs - mean) / ops.sqrt(variance + self.epsilon)
        if self.beta is not None:
            z = z + self.beta
        p = ops.cast(ops.sigmoid(z), inputs.dtype)
        alpha = ops.cast(self.alpha, inputs.dtype)
        return p * inputs + (1.0 - p) * alpha * inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "momentum": self.momentum,
            "use_beta": self.use_beta,
        }


@register_activation("prelu")
class PReLU(keras.layers.Layer):
    """Parametric ReLU with one slope per channel (last axis), shared over time.

    Args:
        alpha: initial slope for negative inputs (0.25 as in Keras; DIEN code 0.1).
    """

    def __init__(self, alpha=0.25, **kwargs):
        super().__init__(**kwargs)
        self.alpha_init = float(alpha)

    def build(self, input_shape):
        self.alpha = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.alpha_init),
            name="alpha",
        )

    def call(self, inputs):
        alpha = ops.cast(self.alpha, inputs.dtype)
        return ops.relu(inputs) - alpha * ops.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha_init}


def _split_spec(spec, argument: str) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) or hasattr(spec, "items"):
        spec = dict(spec)
        if "name" not in spec:
            raise ValueError(f"`{argument}` as a mapping needs a 'name' key, got {spec!r}")
        name = spec.pop("name")
        return name, spec
    raise ValueError(f"`{argument}` must be a name or a mapping with 'name', got {spec!r}")


def check_activation(spec, argument: str = "activation"):
    """Validates an activation spec without building it; returns it as a plain value."""
    name, kwargs = _split_spec(spec, argument)
    if name in _REGISTRY:
        try:
            _REGISTRY[name](**kwargs)
        except (TypeError, ValueError) as e:
            raise ValueError(f"`{argument}`: bad arguments for {name!r}: {e}") from None
        return {"name": name, **kwargs} if kwargs else name
    if kwargs:
        raise ValueError(f"`{argument}`: activation {name!r} takes no arguments, got {kwargs}")
    try:
        keras.activations.get(name)
    except ValueError:
        known = sorted(set(_REGISTRY) | {"sigmoid", "relu", "tanh", "linear", "gelu", "elu"})
        raise ValueError(
            f"`{argument}`: unknown activation {name!r}; known: {', '.join(known)} "
            "(or any keras.activations name)"
        ) from None
    return name


def get_activation(spec, argument: str = "activation", name: str | None = None, dtype=None):
    """A new activation layer from a name or a `{"name": ..., **kwargs}` mapping (`dtype`: its dtype
    policy, normally the parent layer's)."""
    spec = check_activation(spec, argument)
    act_name, kwargs = _split_spec(spec, argument)
    if act_name in _REGISTRY:
        return _REGISTRY[act_name](name=name, dtype=dtype, **kwargs)
    return keras.layers.Activation(act_name, name=name, dtype=dtype)


def takes_mask(layer) -> bool:
    """Whether a layer's call accepts a `mask` (Dice does: its statistics skip padded steps)."""
    import inspect

    return "mask" in inspect.signature(layer.call).parameters
