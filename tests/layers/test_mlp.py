import keras
import numpy as np
import pytest

from src.layers import MLP, MaskedSumPooling, SequenceMask


def test_mlp_matches_numpy():
    keras.utils.set_random_seed(0)
    layer = MLP([4, 3], activation="relu", output_units=1)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    out = np.asarray(layer(x))
    h = x
    for d in layer.dense:
        h = np.maximum(h @ np.asarray(d.kernel) + np.asarray(d.bias), 0)
    ref = h @ np.asarray(layer.out.kernel) + np.asarray(layer.out.bias)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_mlp_batchnorm_dropout_shapes():
    layer = MLP([8, 4], activation="dice", batch_norm=True, dropout=0.5)
    assert layer(np.ones((3, 2, 5), "float32"), training=True).shape == (3, 2, 4)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"hidden_units": [3, -2]}, "hidden_units"), ({"dropout": 1.0}, "dropout"),
     ({"activation": "bogus"}, "activation"), ({"output_units": 0}, "output_units")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MLP(**kwargs)


def test_sequence_mask_and_sum_pooling():
    lengths = np.array([2, 0, 3])
    seq = np.arange(3 * 3 * 2, dtype="float32").reshape(3, 3, 2)
    mask = np.asarray(SequenceMask()([lengths, seq]))
    np.testing.assert_array_equal(mask, [[1, 1, 0], [0, 0, 0], [1, 1, 1]])
    pooled = np.asarray(MaskedSumPooling()(seq, mask=mask))
    np.testing.assert_allclose(pooled, (seq * mask[..., None]).sum(1))
