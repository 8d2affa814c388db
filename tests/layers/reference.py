"""Independent NumPy computations of the layers' math, for the layer tests."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def dense_stack(x, weights, activation):
    """weights: [(kernel, bias), ...]; activation between layers, none after the last."""
    for i, (k, b) in enumerate(weights):
        x = x @ k + b
        if i < len(weights) - 1:
            x = activation(x)
    return x


def target_attention(q, keys, lengths, weights, activation, scale, softmax):
    """The seed's attention: concat([q, k, q-k, q*k]) -> MLP -> mask -> scale -> softmax."""
    b, t, d = keys.shape
    qt = np.repeat(q[:, None, :], t, axis=1)
    x = np.concatenate([qt, keys, qt - keys, qt * keys], -1)
    s = dense_stack(x, weights, activation)[..., 0]
    valid = np.arange(t)[None, :] < lengths[:, None]
    if softmax:
        s = np.where(valid, s, -(2.0**32) + 1)
        if scale:
            s = s / np.sqrt(d)
        e = np.exp(s - s.max(-1, keepdims=True))
        w = e / e.sum(-1, keepdims=True)
    else:
        if scale:
            s = s / np.sqrt(d)
        w = np.where(valid, s, 0.0)
    return (w[..., None] * keys).sum(1), w


def dice(x, alpha, mean, var, eps):
    p = sigmoid((x - mean) / np.sqrt(var + eps))
    return p * x + (1 - p) * alpha * x


def gru_sequence(x, lengths, kernel, rkernel, bias, rbias, update, scores=None):
    """docs/models.md section 3, step by step; update(z, a) -> weight of the candidate.

    Returns all states [B, T, H]; padded steps repeat the previous state.
    """
    b, t, _ = x.shape
    h_dim = rkernel.shape[0]
    h = np.zeros((b, h_dim))
    out = np.zeros((b, t, h_dim))
    for step in range(t):
        xw = x[:, step] @ kernel + bias
        hu = h @ rkernel + rbias
        z = sigmoid(xw[:, :h_dim] + hu[:, :h_dim])
        r = sigmoid(xw[:, h_dim : 2 * h_dim] + hu[:, h_dim : 2 * h_dim])
        c = np.tanh(xw[:, 2 * h_dim :] + r * hu[:, 2 * h_dim :])
        a = None if scores is None else scores[:, step : step + 1]
        h_new = update(h, z, c, a)
        valid = (step < lengths)[:, None]
        h = np.where(valid, h_new, h)
        out[:, step] = h
    return out


UPDATES = {
    # name, convention -> h' from (h, z, c, a), written as the papers write them
    ("gru", "paper"): lambda h, z, c, a: (1 - z) * h + z * c,
    ("agru", "paper"): lambda h, z, c, a: (1 - a) * h + a * c,
    ("augru", "paper"): lambda h, z, c, a: (1 - a * z) * h + a * z * c,
    # original DIEN code: u = (1 - a) * keep; h' = u * h + (1 - u) * c
    ("augru", "code"): lambda h, z, c, a: ((1 - a) * z) * h + (1 - (1 - a) * z) * c,
}
