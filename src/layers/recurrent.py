"""DIEN's recurrent layers: the interest extractor GRU and the interest evolution cells.

One recurrence serves every cell (docs/models.md section 3). With the input
projection p = x W + b, q = h U + bU and

    z = sigmoid(p_z + q_z), r = sigmoid(p_r + q_r), c = tanh(p_c + r * q_c),
    h' = h + w * (c - h),

a cell only says what the update weight w is, from the update gate z and the
attention score a of the step (and the derivatives of w, for the backward pass):

    GRU, AIGRU      w = z                 (AIGRU scales the input by a first)
    AGRU            w = a
    AUGRU (paper)   w = a * z             (eq. 12-13: h' = (1 - a z) h + a z c)
    AUGRU (code)    w = 1 - (1 - a) * z   (z is the "keep" gate: h' = u h + (1 - u) c, u = (1 - a) z)

Padded steps have w = 0, so the state is carried through them and the last state
is the last valid one. The backward pass is written by hand (see `recurrence`):
a few small ops per step instead of the dozens that automatic differentiation of
the loop produces.
"""

from __future__ import annotations

import keras
from keras import ops

from src.layers._checks import one_of, positive_int
from src.layers.sequence import step_mask

_CELLS: dict[str, type[EvolutionCell]] = {}


def register_cell(name: str):
    """Class decorator: makes an evolution cell selectable by `name`."""

    def wrap(cls):
        cls.name = name
        _CELLS[name] = cls
        return cls

    return wrap


def cell_names() -> list[str]:
    """The registered evolution cells (`model.evolution.cell`)."""
    return sorted(_CELLS)


class EvolutionCell:
    """How a step mixes the old state and the candidate. Subclasses set `update`.

    Attributes:
        attention: "pool" (attention pools the layer's outputs afterwards),
            "input" (scales the inputs) or "gate" (enters the update weight).
    """

    name = "gru"
    attention = "pool"
    conventions = ("paper",)

    def __init__(self, convention="paper"):
        self.convention = one_of("convention", convention, self.conventions)

    def transform_input(self, x, a):
        return x

    def update(self, z, a):
        """Returns (w, dw/dz, dw/da); a derivative may be None where it is 0."""
        raise NotImplementedError


@register_cell("gru")
class GRUCell(EvolutionCell):
    """Plain GRU; as evolution layer its outputs are pooled by attention afterwards."""

    attention = "pool"

    def update(self, z, a):
        return z, 1.0, None


@register_cell("aigru")
class AIGRUCell(GRUCell):
    """GRU over attention-scaled inputs a * i_t."""

    attention = "input"

    def transform_input(self, x, a):
        return x * a


@register_cell("agru")
class AGRUCell(EvolutionCell):
    """The attention score replaces the update gate: h' = (1 - a) h + a c."""

    attention = "gate"

    def update(self, z, a):
        return a, None, 1.0


@register_cell("augru")
class AUGRUCell(EvolutionCell):
    """GRU with attentional update gate; `convention` "paper" (eq. 12-13) or "code"."""

    attention = "gate"
    conventions = ("paper", "code")

    def update(self, z, a):
        if self.convention == "paper":
            return a * z, a, z
        return 1.0 - (1.0 - a) * z, a - 1.0, z


def get_cell(name: str, convention: str = "paper") -> EvolutionCell:
    one_of("cell", name, _CELLS)
    return _CELLS[name](convention)


def recurrence(x_zr, x_c, a, m, kernel_zr, kernel_c, bias_c, cell: EvolutionCell, return_sequences=True):
    """Runs the recurrence over time-major inputs.

    The loop is unrolled over the static number of steps: in graph mode a while
    loop costs far more per iteration than the few small ops of a step, so every
    op saved inside the step counts.

    Backward pass: with g_t = dL/dh_t, the gradients of the gates' pre-activations
    are g_t times coefficients that depend only on forward values, so the
    coefficients are computed for all steps at once, and only the recursion
    g_{t-1} = up_{t-1} + g_t (1 - w_t) + ([g_t, g_t, g_t] * k_t) U^T runs step by step.

    Args:
        x_zr: input projections of the update and reset gates with all their
            biases, [T, B, 2H].
        x_c: input projection of the candidate with its input bias, [T, B, H].
        a: attention scores, [T, B, 1] (ignored by cells that do not use them).
        m: 1.0 for valid steps, 0.0 for padding, [T, B, 1].
        kernel_zr: recurrent kernel of the gates, [H, 2H].
        kernel_c: recurrent kernel of the candidate, [H, H].
        bias_c: recurrent bias of the candidate, [H] (inside the reset gate).
        cell: supplies the update weight.
        return_sequences: return all states [T, B, H] rather than the last [B, H].
    """
    steps = x_c.shape[0]
    if steps is None:
        raise ValueError("the recurrent layers need a static sequence length (inputs [B, T, D] with T known)")

    @ops.custom_gradient
    def run(x_zr, x_c, a, m, kernel_zr, kernel_c, bias_c):
        states, saved = _forward(x_zr, x_c, a, m, kernel_zr, kernel_c, bias_c, cell)
        out = ops.stack(states, axis=0) if return_sequences else states[-1]

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return _backward(saved, upstream, a, m, kernel_zr, kernel_c, cell, return_sequences)

        return out, grad

    return run(x_zr, x_c, a, m, kernel_zr, kernel_c, bias_c)


def _forward(x_zr, x_c, a, m, kernel_zr, kernel_c, bias_c, cell: EvolutionCell):
    """The unrolled forward steps; returns (state of every step, the values the backward pass reuses)."""
    units, steps = kernel_c.shape[0], x_c.shape[0]
    x_zr_t, x_c_t, a_t, m_t = (ops.unstack(v, axis=0) for v in (x_zr, x_c, a, m))
    h = ops.zeros((ops.shape(x_c)[1], units), dtype=x_c.dtype)
    saved, states = [], []
    for t in range(steps):
        zr = ops.sigmoid(x_zr_t[t] + ops.matmul(h, kernel_zr))
        z, r = ops.split(zr, 2, axis=-1)
        q_c = ops.matmul(h, kernel_c) + bias_c
        c = ops.tanh(x_c_t[t] + r * q_c)
        w = cell.update(z, a_t[t])[0] * m_t[t]
        c_minus_h = c - h
        saved.append((h, zr, q_c, c, w, c_minus_h))
        h = h + w * c_minus_h
        states.append(h)
    return states, saved


def _state_gradients(upstream, k_t, keep_t, kernel_t, return_sequences: bool, steps: int, shape_like):
    """g_t = dL/dh_t for every step, by g_{t-1} = up_{t-1} + g_t (1 - w_t) + ([g_t, g_t, g_t] * k_t) U^T; [T, B, H]."""
    ups = ops.unstack(upstream, axis=0) if return_sequences else None
    g_next = ops.zeros_like(shape_like) if return_sequences else upstream
    g_all = [None] * steps
    for t in range(steps - 1, -1, -1):
        g = g_next + ups[t] if return_sequences else g_next
        g_all[t] = g
        if t:
            g3 = ops.concatenate([g, g, g], axis=-1)
            g_next = g * keep_t[t] + ops.matmul(g3 * k_t[t], kernel_t)
    return ops.stack(g_all, axis=0)


def _backward(saved, upstream, a, m, kernel_zr, kernel_c, cell: EvolutionCell, return_sequences: bool):
    """The gradients of `recurrence`'s inputs: per-step coefficients from forward values, all steps at once,
    then only the state gradients' recursion step by step."""
    units, steps = kernel_c.shape[0], len(saved)
    h_prev, zr, q_c, c, w, c_minus_h = (ops.stack(v, axis=0) for v in zip(*saved))
    z, r = ops.split(zr, 2, axis=-1)
    _, dw_dz, dw_da = cell.update(z, a)
    k_c = w * (1.0 - c * c)  # dL/d(pre-activation of c) = g * k_c
    k_r = k_c * q_c * r * (1.0 - r)  # ... of r
    k_z = c_minus_h * m * dw_dz * z * (1.0 - z) if dw_dz is not None else ops.zeros_like(z)
    k_all = ops.concatenate([k_z, k_r, k_c * r], axis=-1)  # dL/d(h U + bU) = [g, g, g] * k_all
    keep = ops.broadcast_to(1.0 - w, ops.shape(c))
    kernel_t = ops.transpose(ops.concatenate([kernel_zr, kernel_c], axis=-1))  # [3H, H]
    g_all = _state_gradients(upstream, ops.unstack(k_all, axis=0), ops.unstack(keep, axis=0), kernel_t,
                             return_sequences, steps, saved[-1][0])
    d_q = ops.concatenate([g_all, g_all, g_all], axis=-1) * k_all
    d_kernel = ops.matmul(ops.transpose(ops.reshape(h_prev, (-1, units))), ops.reshape(d_q, (-1, 3 * units)))
    if dw_da is None:
        d_a = ops.zeros_like(a)
    else:
        d_a = ops.sum(g_all * c_minus_h * m * dw_da, axis=-1, keepdims=True)
    return (d_q[..., : 2 * units], g_all * k_c, d_a, ops.zeros_like(m), d_kernel[:, : 2 * units],
            d_kernel[:, 2 * units :], ops.sum(d_q[..., 2 * units :], axis=(0, 1)))


class _RecurrentBase(keras.layers.Layer):
    """Weights and call of a GRU-style recurrence; subclasses pick the cell and output."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int("units", units)

    def _make_weights(self, input_dim):
        h = self.units
        self.kernel = self.add_weight(shape=(input_dim, 3 * h), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(h, 3 * h), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(3 * h,), initializer="zeros", name="bias")
        self.recurrent_bias = self.add_weight(shape=(3 * h,), initializer="zeros", name="recurrent_bias")

    def _states(self, x, scores, mask, cell, return_sequences=True):
        """x [B, T, D], scores [B, T] or None, mask [B, T] or None -> states [T, B, H] or [B, H]."""
        mask = step_mask(mask)
        x_t = ops.transpose(x, (1, 0, 2))
        ones = ops.ones(ops.shape(x_t)[:2] + (1,), dtype=x.dtype)
        a = ones if scores is None else ops.expand_dims(ops.cast(ops.transpose(scores, (1, 0)), x.dtype), -1)
        m = ones if mask is None else ops.expand_dims(ops.cast(ops.transpose(mask, (1, 0)), x.dtype), -1)
        x_t = cell.transform_input(x_t, a)
        h2 = 2 * self.units
        kernel, u, bias, rbias = (ops.cast(v, x.dtype) for v in
                                  (self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias))
        x_zr = ops.matmul(x_t, kernel[:, :h2]) + (bias[:h2] + rbias[:h2])
        x_c = ops.matmul(x_t, kernel[:, h2:]) + bias[h2:]
        return recurrence(x_zr, x_c, a, m, u[:, :h2], u[:, h2:], rbias[h2:], cell, return_sequences)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="dil")
class InterestExtractor(_RecurrentBase):
    """DIEN's interest extractor: a GRU over the behaviour sequence (paper eq. 1-4).

    Args:
        units: state width H.

    Call arguments:
        inputs: behaviours [B, T, D].
        mask: [B, T] boolean, True for valid steps.

    Returns:
        states [B, T, H]; a padded step repeats the state before it.
    """

    def build(self, input_shape):
        self._make_weights(input_shape[-1])

    def call(self, inputs, mask=None):
        states = self._states(inputs, None, mask, _CELLS["gru"]())
        return ops.transpose(states, (1, 0, 2))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)


@keras.saving.register_keras_serializable(package="dil")
class InterestEvolution(_RecurrentBase):
    """DIEN's interest evolution layer: GRU, AIGRU, AGRU or AUGRU (paper section 4.3).

    Args:
        units: state width H.
        cell: "gru", "aigru", "agru" or "augru".
        convention: AUGRU's convention, "paper" (eq. 12-13) or "code" (the
            original DIEN code's keep gate); other cells accept only "paper".
        return_sequences: return all states instead of the last valid one.

    Call arguments:
        inputs: `[sequence [B, T, D], scores [B, T]]`, or the sequence alone for
            "gru", which takes no scores.
        mask: [B, T] boolean, True for valid steps.

    Returns:
        last valid state [B, H], or states [B, T, H].
    """

    def __init__(self, units, cell="augru", convention="paper", return_sequences=False, **kwargs):
        super().__init__(units, **kwargs)
        self.cell = get_cell(cell, convention)
        self.return_sequences = bool(return_sequences)

    def _split(self, inputs):
        if isinstance(inputs, (list, tuple)):
            seq, scores = inputs
        else:
            seq, scores = inputs, None
        if scores is None and self.cell.attention != "pool":
            raise ValueError(f"InterestEvolution: cell {self.cell.name!r} needs `[sequence, scores]`")
        return seq, scores

    def build(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        self._make_weights(seq_shape[-1])

    def call(self, inputs, mask=None):
        seq, scores = self._split(inputs)
        states = self._states(seq, scores, mask, self.cell, self.return_sequences)
        if self.return_sequences:
            return ops.transpose(states, (1, 0, 2))
        return states

    def compute_output_shape(self, input_shape):
        seq_shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        if self.return_sequences:
            return tuple(seq_shape[:-1]) + (self.units,)
        return (seq_shape[0], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "cell": self.cell.name,
            "convention": self.cell.convention,
            "return_sequences": self.return_sequences,
        }
