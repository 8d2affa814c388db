import numpy as np
import pytest

from src.layers import InterestEvolution, InterestExtractor
from src.layers.recurrent import get_cell, recurrence
from tests.conftest import float64
from tests.layers.reference import UPDATES, gru_sequence

B, T, D, H = 5, 6, 4, 3
LENGTHS = np.array([6, 1, 3, 4, 2])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype("float32")
    scores = rng.uniform(size=(B, T)).astype("float32")
    mask = np.arange(T)[None, :] < LENGTHS[:, None]
    return x, scores * mask, mask


def _randomise(layer, seed):
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.normal(scale=0.7, size=w.shape).astype("float32"))


def _weights(layer):
    return [np.asarray(w).astype("float64") for w in
            (layer.kernel, layer.recurrent_kernel, layer.bias, layer.recurrent_bias)]


def test_extractor_matches_numpy_and_carries_padding():
    x, _, mask = _data()
    layer = InterestExtractor(H)
    layer.build(x.shape)
    _randomise(layer, 1)
    out = np.asarray(layer(x, mask=mask))
    ref = gru_sequence(x.astype("float64"), LENGTHS, *_weights(layer), update=UPDATES[("gru", "paper")])
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    for b, n in enumerate(LENGTHS):
        assert np.all(out[b, n:] == out[b, n - 1])  # padded steps repeat the last valid state


@pytest.mark.parametrize(
    "cell, convention", [("gru", "paper"), ("aigru", "paper"), ("agru", "paper"), ("augru", "paper"),
                         ("augru", "code")]
)
def test_evolution_cells_match_numpy(cell, convention):
    x, scores, mask = _data(2)
    layer = InterestEvolution(H, cell=cell, convention=convention)
    inputs = x if cell == "gru" else [x, scores]
    layer.build([x.shape, scores.shape])
    _randomise(layer, 3)
    last = np.asarray(layer(inputs, mask=mask))
    x64 = x.astype("float64")
    if cell == "aigru":
        x64 = x64 * scores[..., None]
    update = UPDATES[("gru" if cell == "aigru" else cell, convention)]
    ref = gru_sequence(x64, LENGTHS, *_weights(layer), update=update, scores=scores.astype("float64"))
    np.testing.assert_allclose(last, ref[np.arange(B), LENGTHS - 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell, convention", [("augru", "paper"), ("augru", "code"), ("agru", "paper")])
def test_one_step(cell, convention):
    x, scores, _ = _data(4)
    x, scores = x[:, :1], np.full((B, 1), 0.3, "float32")
    layer = InterestEvolution(H, cell=cell, convention=convention)
    layer.build([x.shape, scores.shape])
    _randomise(layer, 5)
    h = np.asarray(layer([x, scores]))
    k, u, b, rb = _weights(layer)
    xw, hu = x[:, 0] @ k + b, rb  # h0 = 0, so h U = 0
    z = 1 / (1 + np.exp(-(xw[:, :H] + hu[:H])))
    r = 1 / (1 + np.exp(-(xw[:, H:2 * H] + hu[H:2 * H])))
    c = np.tanh(xw[:, 2 * H:] + r * hu[2 * H:])
    expected = UPDATES[(cell, convention)](np.zeros((B, H)), z, c, 0.3)
    np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-6)


def test_conventions_differ_at_zero_attention():
    """With a = 0 the paper's AUGRU keeps h; the code's takes a GRU step (z as keep gate)."""
    x, _, _ = _data(6)
    zeros = np.zeros((B, T), "float32")
    paper = InterestEvolution(H, cell="augru", convention="paper")
    code = InterestEvolution(H, cell="augru", convention="code")
    for layer in (paper, code):
        layer.build([x.shape, zeros.shape])
        _randomise(layer, 7)
    assert np.all(np.asarray(paper([x, zeros])) == 0.0)
    keep_gate_gru = lambda h, z, c, a: z * h + (1 - z) * c  # noqa: E731
    ref = gru_sequence(x.astype("float64"), np.full(B, T), *_weights(code), update=keep_gate_gru)
    np.testing.assert_allclose(np.asarray(code([x, zeros])), ref[:, -1], rtol=1e-5, atol=1e-6)


def _naive(x_zr, x_c, a, m, k_zr, k_c, bc, cell):
    """The same recurrence step by step in keras.ops, differentiated by the backend's own autodiff."""
    from keras import ops

    h = ops.zeros_like(x_c[0])
    units = k_c.shape[0]
    out = []
    for t in range(x_c.shape[0]):
        zr = ops.sigmoid(x_zr[t] + ops.matmul(h, k_zr))
        z, r = zr[:, :units], zr[:, units:]
        c = ops.tanh(x_c[t] + r * (ops.matmul(h, k_c) + bc))
        w = cell.update(z, a[t])[0] * m[t]
        h = h + w * (c - h)
        out.append(h)
    return ops.stack(out)


def _gradients(loss, args):
    """d loss / d args with the backend's automatic differentiation (float64)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.grad(loss, argnums=tuple(range(len(args))))(*args)
    import tensorflow as tf

    args = [tf.constant(x) for x in args]
    with tf.GradientTape() as tape:
        tape.watch(args)
        value = loss(*args)
    return tape.gradient(value, args)


# (relative, absolute) tolerance of gradients in float64: XLA's CPU kernels (the JAX backend) are less
# exact than TensorFlow's; measured, both the hand-written and the autodiff gradient under JAX differ
# from TensorFlow's by up to 5e-8, while under TensorFlow the two agree to 6e-17
GRAD_TOL = {"tensorflow": (1e-9, 1e-12), "jax": (1e-6, 1e-7)}

@pytest.mark.parametrize("cell, convention", [("gru", "paper"), ("agru", "paper"), ("augru", "paper"),
                                              ("augru", "code")])
@pytest.mark.parametrize("sequences", [True, False])
def test_hand_written_gradient_matches_autodiff(cell, convention, sequences):
    import keras
    from keras import ops

    rng = np.random.default_rng(8)
    c = get_cell(cell, convention)
    x_zr = rng.normal(size=(T, B, 2 * H))
    x_c = rng.normal(size=(T, B, H))
    a = rng.uniform(size=(T, B, 1))
    m = (np.arange(T)[:, None] < LENGTHS[None, :])[..., None].astype("float64")
    k_zr = rng.normal(scale=0.5, size=(H, 2 * H))
    k_c = rng.normal(scale=0.5, size=(H, H))
    bc = rng.normal(size=(H,))
    up = rng.normal(size=(T, B, H))
    weight = up if sequences else up[0]

    def fast(x_zr, x_c, a, k_zr, k_c, bc):
        return recurrence(x_zr, x_c, a, ops.convert_to_tensor(m), k_zr, k_c, bc, c, return_sequences=sequences)

    def slow(x_zr, x_c, a, k_zr, k_c, bc):
        out = _naive(x_zr, x_c, a, ops.convert_to_tensor(m), k_zr, k_c, bc, c)
        return out if sequences else out[-1]

    args = [x_zr, x_c, a, k_zr, k_c, bc]
    with float64():
        args = [ops.convert_to_tensor(x, "float64") for x in args]
        np.testing.assert_allclose(np.asarray(fast(*args)), np.asarray(slow(*args)), rtol=1e-12, atol=1e-12)
        g_fast = _gradients(lambda *x: ops.sum(fast(*x) * weight), args)
        g_slow = _gradients(lambda *x: ops.sum(slow(*x) * weight), args)
        for gf, gs in zip(g_fast, g_slow):
            gs = np.zeros_like(np.asarray(gf)) if gs is None else np.asarray(gs)
            assert np.asarray(gf).dtype == np.float64
            rtol, atol = GRAD_TOL[keras.backend.backend()]
            np.testing.assert_allclose(np.asarray(gf), gs, rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"units": 0}, "units"), ({"units": 3, "cell": "lstm"}, "cell"),
     ({"units": 3, "cell": "agru", "convention": "code"}, "convention")],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        InterestEvolution(**kwargs)


def test_scores_required_for_attentional_cells():
    x, _, _ = _data()
    with pytest.raises(ValueError, match="scores"):
        InterestEvolution(H, cell="augru")(x)


def test_config_round_trip():
    layer = InterestEvolution(7, cell="augru", convention="code", return_sequences=True)
    clone = InterestEvolution.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.cell.convention == "code"
