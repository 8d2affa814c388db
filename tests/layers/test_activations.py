import keras
import numpy as np
import pytest

from src.layers import Dice, PReLU, get_activation
from tests.layers.reference import dice


@pytest.mark.parametrize("shape, axes", [((16, 4), (0,)), ((8, 5, 3), (0, 1))])
def test_dice_training_uses_batch_statistics(shape, axes):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    layer = Dice(epsilon=1e-9, momentum=0.9)
    layer.build(shape)
    alpha = rng.normal(size=shape[-1]).astype("float32")
    layer.alpha.assign(alpha)
    out = np.asarray(layer(x, training=True))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    np.testing.assert_allclose(out, dice(x, alpha, mean, var, 1e-9), rtol=1e-4, atol=1e-5)
    # moving averages moved by (1 - momentum) towards the batch statistics
    np.testing.assert_allclose(np.asarray(layer.moving_mean), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), 0.9 + 0.1 * var, rtol=1e-5)


def test_dice_inference_uses_moving_averages():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 3)).astype("float32")
    layer = Dice(epsilon=1e-9)
    layer.build(x.shape)
    mean = np.array([0.5, -1.0, 2.0], "float32")
    var = np.array([2.0, 0.5, 1.0], "float32")
    layer.moving_mean.assign(mean)
    layer.moving_variance.assign(var)
    layer.alpha.assign(np.array([0.1, 0.2, 0.3], "float32"))
    out = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(out, dice(x, np.asarray(layer.alpha), mean, var, 1e-9), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), mean)  # untouched


def test_dice_alpha_starts_at_zero_and_beta_option():
    layer = Dice(use_beta=True)
    layer.build((4, 3))
    assert np.all(np.asarray(layer.alpha) == 0)
    assert np.all(np.asarray(layer.beta) == 0)
    x = np.linspace(-2, 2, 12, dtype="float32").reshape(4, 3)
    layer.beta.assign(np.ones(3, "float32"))
    mean, var = x.mean(0), x.var(0)
    p = 1 / (1 + np.exp(-((x - mean) / np.sqrt(var + 1e-9) + 1)))
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), p * x, rtol=1e-5, atol=1e-6)


def test_prelu_per_channel():
    layer = PReLU(alpha=0.1)
    x = np.array([[-2.0, 3.0], [1.0, -4.0]], "float32")
    layer.build(x.shape)
    layer.alpha.assign(np.array([0.1, 0.5], "float32"))
    np.testing.assert_allclose(np.asarray(layer(x)), [[-0.2, 3.0], [1.0, -2.0]], rtol=1e-6)


def test_get_activation_by_name_and_mapping():
    assert isinstance(get_activation("dice"), Dice)
    assert get_activation({"name": "dice", "momentum": 0.5}).momentum == 0.5
    sig = get_activation("sigmoid")
    np.testing.assert_allclose(np.asarray(sig(np.zeros((1, 2), "float32"))), 0.5)
    assert get_activation("prelu") is not get_activation("prelu")  # fresh weights each time


@pytest.mark.parametrize(
    "spec, match",
    [("nope", "unknown activation 'nope'"), ({"epsilon": 1}, "'name'"),
     ({"name": "relu", "x": 1}, "takes no arguments"), ({"name": "dice", "bogus": 1}, "bad arguments"),
     (3, "activation")],
)
def test_bad_activation_names_the_argument(spec, match):
    with pytest.raises(ValueError, match=match):
        get_activation(spec)


@pytest.mark.parametrize("kwargs, name", [({"momentum": 1.5}, "momentum"), ({"epsilon": -1}, "epsilon"),
                                          ({"epsilon": 0}, "epsilon")])
def test_dice_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Dice(**kwargs)


def test_dice_serialises():
    layer = Dice(epsilon=1e-8, momentum=0.95, use_beta=True)
    assert keras.layers.deserialize(keras.layers.serialize(layer)).get_config() == layer.get_config()
