"""DIEN's recurrent layers: the interest extractor GRU and the interest evolution cells.

One recurrence serves every cell (REFERENCE.md section 3). With the input
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


def recurrence(x_gates, a, m, kernels_u, bias_c, cell: EvolutionCell, return_sequences=True):
    """Runs the recurrence over time-major inputs.

    The loop is unrolled over the static number of steps: in graph mode a while
    loop costs far more per iteration than the few small ops of a step. Gates are
    kept apart (three [H, H] recurrent kernels) because splitting and
    concatenating small tensors costs more than the extra matmuls.

    Backward pass: with g_t = dL/dh_t, every gradient is g_t times a coefficient
    that depends only on forward values (k_z, k_r, k_c below), so the
    coefficients are computed for all steps at once, and only the recursion
    g_{t-1} = up_{t-1} + g_t (1 - w_t) + sum_j (g_t k_j,t) U_j^T runs step by step.

    Args:
        x_gates: `(xz, xr, xc)`, input projections [T, B, H] each, with the biases
            of z and r (input and recurrent) and the input bias of c added.
        a: attention scores, [T, B, 1] (ignored by cells that do not use them).
        m: 1.0 for valid steps, 0.0 for padding, [T, B, 1].
        kernels_u: `(U_z, U_r, U_c)`, recurrent kernels [H, H] each.
        bias_c: recurrent bias of the candidate, [H] (inside the reset gate).
        cell: supplies the update weight.
        return_sequences: return all states [T, B, H] rather than the last [B, H].
    """
    xz, xr, xc = x_gates
    u_z, u_r, u_c = kernels_u
    units = u_z.shape[0]
    steps = xz.shape[0]
    if steps is None:
        raise ValueError("the recurrent layers need a static sequence length (inputs [B, T, D] with T known)")

    @ops.custom_gradient
    def run(xz, xr, xc, a, m, u_z, u_r, u_c, bias_c):
        xz_t, xr_t, xc_t, a_t, m_t = (ops.unstack(v, axis=0) for v in (xz, xr, xc, a, m))
        h = ops.zeros((ops.shape(xz)[1], units), dtype=xz.dtype)
        saved, states = [], []
        for t in range(steps):
            z = ops.sigmoid(xz_t[t] + ops.matmul(h, u_z))
            r = ops.sigmoid(xr_t[t] + ops.matmul(h, u_r))
            q_c = ops.matmul(h, u_c) + bias_c
            c = ops.tanh(xc_t[t] + r * q_c)
            w = cell.update(z, a_t[t])[0] * m_t[t]
            c_minus_h = c - h
            saved.append((h, z, r, q_c, c, w, c_minus_h))
            h = h + w * c_minus_h
            states.append(h)
        out = ops.stack(states, axis=0) if return_sequences else h

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            h_prev, z, r, q_c, c, w, c_minus_h = (ops.stack(v, axis=0) for v in zip(*saved))
            _, dw_dz, dw_da = cell.update(z, a)
            w = ops.broadcast_to(w, ops.shape(z))
            k_c = w * (1.0 - c * c)  # dL/d(pre-activation of c) = g * k_c
            k_r = k_c * q_c * r * (1.0 - r)  # ... of r
            k_z = c_minus_h * m * dw_dz * z * (1.0 - z) if dw_dz is not None else None
            k_cr = k_c * r  # dL/dq_c
            keep = 1.0 - w
            coef = [ops.unstack(v, axis=0) for v in (k_r, k_cr, keep)]
            k_z_t = ops.unstack(k_z, axis=0) if k_z is not None else None
            ups = ops.unstack(upstream, axis=0) if return_sequences else None
            u_zt, u_rt, u_ct = (ops.transpose(u) for u in (u_z, u_r, u_c))
            g_next = ops.zeros_like(h) if return_sequences else upstream
            g_all = [None] * steps
            for t in range(steps - 1, -1, -1):
                g = g_next + ups[t] if return_sequences else g_next
                g_all[t] = g
                if t == 0:
                    break
                back = g * coef[2][t] + ops.matmul(g * coef[0][t], u_rt) + ops.matmul(g * coef[1][t], u_ct)
                if k_z_t is not None:
                    back = back + ops.matmul(g * k_z_t[t], u_zt)
                g_next = back
            g_all = ops.stack(g_all, axis=0)
            d_z = g_all * k_z if k_z is not None else ops.zeros_like(g_all)
            d_r = g_all * k_r
            d_c = g_all * k_c
            d_qc = g_all * k_cr
            flat_h = ops.transpose(ops.reshape(h_prev, (-1, units)))

            def kernel_grad(d):
                return ops.matmul(flat_h, ops.reshape(d, (-1, units)))

            if dw_da is None:
                d_a = ops.zeros_like(a)
            else:
                d_a = ops.sum(g_all * c_minus_h * m * dw_da, axis=-1, keepdims=True)
            return (
                d_z, d_r, d_c, d_a, ops.zeros_like(m),
                kernel_grad(d_z), kernel_grad(d_r), kernel_grad(d_qc),
                ops.sum(d_qc, axis=(0, 1)),
            )

        return out, grad

    return run(xz, xr, xc, a, m, u_z, u_r, u_c, bias_c)


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
        h = self.units
        kernel, u = (ops.cast(v, x.dtype) for v in (self.kernel, self.recurrent_kernel))
        bias = ops.cast(self.bias, x.dtype)
        rbias = ops.cast(self.recurrent_bias, x.dtype)
        x_gates = tuple(
            ops.matmul(x_t, kernel[:, i * h : (i + 1) * h]) + bias[i * h : (i + 1) * h]
            + (rbias[i * h : (i + 1) * h] if i < 2 else 0.0)
            for i in range(3)
        )
        kernels_u = tuple(u[:, i * h : (i + 1) * h] for i in range(3))
        return recurrence(x_gates, a, m, kernels_u, rbias[2 * h :], cell, return_sequences)

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
