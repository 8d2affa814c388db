import keras
import numpy as np
import pytest

from src.layers import TargetAttention, mask_value
from tests.layers.reference import sigmoid, target_attention

B, T, D = 6, 7, 5
LENGTHS = np.array([1, 7, 3, 5, 2, 6])


def _inputs(seed=0, dq=D):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, dq)).astype("float32")
    k = rng.normal(size=(B, T, D)).astype("float32")
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    return q, k, mask


def _layer_weights(layer):
    ws = [(np.asarray(layer.kernel), np.asarray(layer.bias))]
    ws += [(np.asarray(d.kernel), np.asarray(d.bias)) for d in layer.later]
    return ws


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("softmax", [True, False])
@pytest.mark.parametrize("hidden", [(36,), (8, 4), ()])
def test_matches_numpy_on_ragged_lengths(scale, softmax, hidden):
    keras.utils.set_random_seed(1)
    q, k, mask = _inputs()
    layer = TargetAttention(hidden_units=hidden, activation="sigmoid", scale=scale, softmax=softmax)
    pooled, weights = layer([q, k], mask=mask, return_attention_scores=True)
    ref_pooled, ref_w = target_attention(
        q.astype("float64"), k.astype("float64"), LENGTHS, _layer_weights(layer), sigmoid, scale, softmax
    )
    np.testing.assert_allclose(np.asarray(weights), ref_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pooled), ref_pooled, rtol=1e-5, atol=1e-5)
    w = np.asarray(weights)
    assert np.all(w[~mask] == 0.0), "padded steps must weigh exactly 0"
    if softmax:
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
        assert w[0, 0] == pytest.approx(1.0)  # length 1: all weight on the one step


def test_relu_hidden_and_no_mask():
    keras.utils.set_random_seed(2)
    q, k, _ = _inputs(3)
    layer = TargetAttention(hidden_units=(6,), activation="relu", scale=False, softmax=True)
    pooled = layer([q, k])
    ref, _ = target_attention(q, k, np.full(B, T), _layer_weights(layer), lambda x: np.maximum(x, 0),
                              False, True)
    np.testing.assert_allclose(np.asarray(pooled), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mask_value_is_finite_in_low_precision(dtype):
    v = mask_value(dtype)
    assert np.isfinite(np.array(v, dtype=np.float32))
    assert v <= -6e4  # far below any real score
    assert mask_value("float32") == -(2.0**32) + 1


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_masks_cleanly(policy):
    keras.utils.set_random_seed(3)
    q, k, mask = _inputs()
    layer = TargetAttention(hidden_units=(8,), dtype=policy)
    pooled, w = layer([q, k], mask=mask, return_attention_scores=True)
    w = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(w, "float32")))
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(keras.ops.convert_to_numpy(
        keras.ops.cast(pooled, "float32"))))
    assert np.all(w[~mask] == 0.0)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-2)


def test_query_projection_allows_other_width():
    keras.utils.set_random_seed(4)
    q, k, mask = _inputs(dq=3)
    layer = TargetAttention(hidden_units=(4,), query_projection=True)
    pooled, w = layer([q, k], mask=mask, return_attention_scores=True)
    assert pooled.shape == (B, D) and w.shape == (B, T)
    # the projection is Dense(D) + PReLU(0.25) applied before the MLP
    proj = q @ np.asarray(layer.projection.kernel) + np.asarray(layer.projection.bias)
    proj = np.where(proj > 0, proj, 0.25 * proj)
    ref, ref_w = target_attention(proj, k, LENGTHS, _layer_weights(layer), sigmoid, True, True)
    np.testing.assert_allclose(np.asarray(w), ref_w, rtol=1e-5, atol=1e-6)


def test_width_mismatch_names_the_argument():
    q, k, mask = _inputs(dq=3)
    with pytest.raises(ValueError, match="query_projection"):
        TargetAttention()([q, k], mask=mask)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"hidden_units": [4, -1]}, "hidden_units"), ({"activation": "nope"}, "activation"),
     ({"projection_activation": "nope"}, "projection_activation")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TargetAttention(**kwargs)


def test_config_round_trip():
    layer = TargetAttention(hidden_units=(80, 40), activation={"name": "dice", "epsilon": 1e-8},
                            scale=False, softmax=False, query_projection=True)
    clone = TargetAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
