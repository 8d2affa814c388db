"""Mixed precision (train.precision) and per-layer dtype policies: every model variant builds, trains and
predicts under mixed_float16 and mixed_bfloat16, close to its float32 twin with the same weights.

Tolerances, on the click probabilities of an untrained model (the same weights in both precisions):
float16 keeps 11 significant bits, bfloat16 8. Over the ten variants below, the worst differences measured
on CPU were 2.4e-5 (mixed_float16) and 1.8e-4 (mixed_bfloat16); the tests allow 1e-3 and 5e-3.
"""

import keras
import numpy as np
import pytest

from src.layers import Dice, TargetAttention
from src.models import build_model
from src.run.training import compile_model
from tests.conftest import float64
from tests.models.test_models import VARIANTS, VOCAB, T, batch, small

TOLERANCE = {"mixed_float16": 1e-3, "mixed_bfloat16": 5e-3}


@pytest.fixture
def policy():
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy("float32")


def twin(overrides, precision, set_policy):
    cfg = small(overrides)
    set_policy("float32")
    keras.utils.set_random_seed(0)
    ref = build_model(cfg, VOCAB, T)
    set_policy(precision)
    half = build_model(cfg, VOCAB, T)
    half.set_weights(ref.get_weights())
    return cfg, ref, half


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("overrides", VARIANTS, ids=[" ".join(v) for v in VARIANTS])
def test_every_model_trains_and_predicts_close_to_float32(overrides, precision, policy):
    cfg, ref, half = twin(overrides, precision, policy)
    x, y = batch(cfg)
    inputs = {k: v for k, v in x.items() if k in half.input}
    p32 = ref.predict(inputs, verbose=0)
    p16 = half.predict(inputs, verbose=0)
    assert half.output.dtype == "float32"  # the probability stays float32
    assert np.max(np.abs(p32 - p16)) < TOLERANCE[precision]
    compile_model(half, {"name": "adam", "lr": 1e-2})  # as a run compiles it
    history = half.fit(inputs, y, epochs=2, batch_size=32, verbose=0).history["loss"]
    assert all(np.isfinite(history))
    assert np.all(np.isfinite(half.predict(inputs, verbose=0)))


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16", "float64"])
def test_attention_with_projection_and_dice_under_a_layer_policy(dtype):
    with float64():
        _attention_under(dtype)


def _attention_under(dtype):
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(4, 6)).astype("float32"), rng.normal(size=(4, 5, 6)).astype("float32")
    mask = np.arange(5)[None, :] < np.array([[5], [3], [1], [2]])
    layer = TargetAttention(hidden_units=(8, 4), activation="dice", query_projection=True, dtype=dtype)
    for training in (True, False):
        out, w = layer([q, k], mask=mask, training=training, return_attention_scores=True)
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))
        assert all(s.dtype_policy.name == dtype for s in layer.later + layer.activations)
    if dtype == "float64":  # no down-cast to float32 anywhere
        assert keras.backend.standardize_dtype(w.dtype) == "float64"
        logits = layer.scores(keras.ops.convert_to_tensor(q, "float64"), keras.ops.convert_to_tensor(k, "float64"))
        assert keras.backend.standardize_dtype(logits.dtype) == "float64"


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16"])
def test_dice_keeps_its_statistics_in_float32(dtype):
    layer = Dice(dtype=dtype)
    x = np.random.default_rng(1).normal(size=(8, 4, 3)).astype("float32")
    layer(x, training=True)
    out = layer(x, training=False)
    assert layer.moving_mean.dtype == "float32" and layer.moving_variance.dtype == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))


def test_dice_in_the_attention_ignores_padding():
    # training-mode weights at valid steps must not depend on how much padding the batch carries
    rng = np.random.default_rng(0)
    q = rng.normal(size=(3, 4)).astype("float32")
    lengths = np.array([[2], [5], [6]])
    layer = TargetAttention(hidden_units=(8,), activation="dice", scale=False)
    keys = rng.normal(size=(3, 6, 4)).astype("float32")
    weights = []
    for t in (6, 12):
        k = np.zeros((3, t, 4), "float32")
        k[:, :6] = keys
        mask = np.arange(t)[None, :] < lengths
        keras.utils.set_random_seed(0)
        _, w = layer([q, k], mask=mask, training=True, return_attention_scores=True)
        weights.append(keras.ops.convert_to_numpy(w)[:, :6])
    np.testing.assert_allclose(weights[0], weights[1], atol=1e-6)
