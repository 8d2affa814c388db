"""Attention artifacts: the weights the trained attention layer gives a fixed set of
validation samples, each epoch, as arrays and as a heat map, plus summary metrics.

The weights are read from the model's own layer named "attention" (its second
output, `return_attention_scores=True`), not recomputed.
"""

from __future__ import annotations

import io

import numpy as np

RECENT = 5  # "recent" = the last RECENT valid steps of a history


def attention_model(model):
    """A model from the inputs to the attention weights [B, T], or None if there is no attention layer."""
    import keras

    try:
        layer = model.get_layer("attention")
    except ValueError:
        return None
    out = layer.output
    if not isinstance(out, (list, tuple)) or len(out) != 2:
        return None
    return keras.Model(model.input, out[1])


def probe_indices(n: int, size: int, seed: int) -> np.ndarray:
    """A fixed, seeded choice of `size` rows out of n (sorted)."""
    size = min(size, n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


class AttentionProbe:
    """Collects attention weights on fixed validation samples after each epoch."""

    def __init__(self, data, model, inputs: list[str], size: int, metrics_size: int, seed: int):
        self.net = attention_model(model)
        n = data.size("valid")
        # the pictured rows are the first `size` of the metric rows, so one forward pass serves both
        rows = probe_indices(n, max(metrics_size, size), seed)
        self.metric_rows = rows
        self.pictured = np.sort(np.random.default_rng(seed + 1).choice(len(rows), size=min(size, len(rows)),
                                                                        replace=False))
        self.rows = rows[self.pictured]
        self.inputs = inputs
        self.xm = self._features(data, rows)
        valid = data.splits["valid"]
        self.labels = valid["label"][self.rows]
        self.relevant = valid["relevant"][rows] if "relevant" in valid else None
        self._w = None

    def _features(self, data, rows):
        h = data.histories("valid", rows)
        return {k: h[k] for k in self.inputs}

    @property
    def active(self) -> bool:
        return self.net is not None and len(self.rows) > 0

    def update(self) -> None:
        """One forward pass of the attention sub-model: called eagerly on TensorFlow (no tracing per run),
        compiled once per run on JAX (op by op, JAX would compile each op on its first use)."""
        import keras
        from keras import ops

        if keras.backend.backend() == "jax":
            out = self.net.predict(self.xm, batch_size=len(self.metric_rows), verbose=0)
        else:
            out = self.net(self.xm, training=False)
        self._w = np.asarray(ops.convert_to_numpy(out), dtype=np.float64)

    def summary(self) -> dict:
        """Entropy (normalised to [0, 1] by log length), the largest weight against the uniform share,
        weight on the RECENT last steps, and on synthetic data the weight on the truly relevant
        positions; from the last `update`."""
        w = np.abs(self._w)
        lengths = self.xm["hist_len"]
        steps = np.arange(w.shape[1])[None, :]
        valid = steps < lengths[:, None]
        w = np.where(valid, w, 0.0)
        total = w.sum(1, keepdims=True)
        p = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
        ent = -(p * np.log(np.where(p > 0, p, 1.0))).sum(1)
        norm = np.log(np.maximum(lengths, 2))
        out = {
            "attention_entropy": float(np.mean(ent / norm)),
            "attention_recent_weight": float(np.mean((p * (steps >= lengths[:, None] - RECENT)).sum(1))),
            # the recent share that evenly spread weights would give: the baseline to compare with
            "attention_recent_uniform": float(np.mean(np.minimum(lengths, RECENT) / np.maximum(lengths, 1))),
            # the largest weight of a history as a multiple of the uniform share 1/length (1: uniform)
            "attention_peak": float(np.mean(p.max(1) * lengths)),
        }
        if self.relevant is not None:
            has = self.relevant.any(1)
            if has.any():
                out["attention_relevant_weight"] = float(np.mean((p * self.relevant).sum(1)[has]))
                # the share one would get by spreading weight evenly: the baseline to beat
                out["attention_relevant_uniform"] = float(np.mean(
                    (self.relevant.sum(1) / np.maximum(lengths, 1))[has]))
        return out

    def snapshot(self) -> dict:
        """The probe's arrays: weights, history ids, lengths, targets, labels (+ relevant)."""
        p = self.pictured
        arrays = {
            "weights": self._w[p].astype(np.float32),
            "hist_item": self.xm["hist_item"][p],
            "hist_len": self.xm["hist_len"][p],
            "target_item": self.xm["target_item"][p],
            "label": self.labels,
            "rows": self.rows,
        }
        if self.relevant is not None:
            arrays["relevant"] = self.relevant[p]
        return arrays


def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def heatmap(arrays: dict, title: str):
    """A matplotlib figure: one row per probe sample, one column per history step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = arrays["weights"].astype(np.float64)
    lengths = arrays["hist_len"]
    t = w.shape[1]
    masked = np.ma.masked_where(np.arange(t)[None, :] >= lengths[:, None], w)
    fig, ax = plt.subplots(figsize=(max(6, t * 0.16 + 2), max(3, len(w) * 0.28 + 1.5)), dpi=100)
    im = ax.imshow(masked, aspect="auto", cmap="viridis", interpolation="nearest")
    if "relevant" in arrays:
        ys, xs = np.nonzero(arrays["relevant"])
        ax.scatter(xs, ys, marker="s", s=30, facecolors="none", edgecolors="red", linewidths=1.2,
                   label="truly relevant")
        ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    ax.set_xlabel("history step (oldest -> most recent; blank = padding)")
    ax.set_ylabel("probe sample (label)")
    ax.set_yticks(range(len(w)))
    ax.set_yticklabels([f"{i} ({int(y)})" for i, y in enumerate(arrays["label"])], fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="attention weight")
    fig.tight_layout()
    return fig
