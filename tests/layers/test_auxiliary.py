import keras
import numpy as np
import pytest

from src.layers import AuxiliaryLoss
from tests.layers.reference import dense_stack, sigmoid

B, T, H, E = 4, 5, 3, 2
LENGTHS = np.array([5, 1, 3, 2])


def test_matches_numpy_and_adds_weighted_loss():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(B, T, H)).astype("float32")
    pos = rng.normal(size=(B, T, E)).astype("float32")
    neg = rng.normal(size=(B, T, E)).astype("float32")
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    layer = AuxiliaryLoss(hidden_units=(4, 3), activation="sigmoid", alpha=0.5)
    out = layer([states, pos, neg], mask=mask)
    np.testing.assert_array_equal(np.asarray(out), states)  # passes the states through
    ws = [(np.asarray(d.kernel), np.asarray(d.bias)) for d in layer.scorer.dense + [layer.scorer.out]]
    lp = dense_stack(np.concatenate([states[:, :-1], pos[:, 1:]], -1), ws, sigmoid)[..., 0]
    ln = dense_stack(np.concatenate([states[:, :-1], neg[:, 1:]], -1), ws, sigmoid)[..., 0]
    per = -(np.log(sigmoid(lp)) + np.log(1 - sigmoid(ln)))
    valid = mask[:, 1:]
    expected = per[valid].mean()  # steps t with t + 1 valid
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(0.5 * expected, rel=1e-5)


def test_zero_alpha_adds_nothing():
    x = np.ones((2, 3, 2), "float32")
    layer = AuxiliaryLoss(hidden_units=(2,), alpha=0.0)
    layer([x, x, x])
    assert layer.losses == []


@pytest.mark.parametrize("kwargs, name", [({"alpha": -1}, "alpha"), ({"hidden_units": [0]}, "hidden_units")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AuxiliaryLoss(**kwargs)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differ"):
        AuxiliaryLoss()([np.ones((2, 3, 2)), np.ones((2, 3, 2)), np.ones((2, 4, 2))])


def test_serialises():
    layer = AuxiliaryLoss(hidden_units=(8,), activation="prelu", alpha=0.3)
    assert keras.layers.deserialize(keras.layers.serialize(layer)).get_config() == layer.get_config()
