"""The input pipeline shared by every source: arrays in memory -> shuffled, batched tf.data."""

from __future__ import annotations

import numpy as np


def make_dataset(x: dict, y, batch_size: int, shuffle: bool = False, seed: int = 0):
    """Batches of `(features, labels)` from arrays with one row per sample.

    Shuffling draws a fresh, seeded permutation every epoch, over the whole array
    (indices are shuffled, not rows, so the cost does not grow with row width).
    Batches are gathered in one vectorised op and prefetched.

    Args:
        x: feature name -> array [N, ...].
        y: labels [N].
        batch_size: rows per batch (the last batch may be smaller).
        shuffle: reshuffle every epoch.
        seed: seed of the shuffle.
    """
    import tensorflow as tf

    n = len(y)
    for k, v in x.items():
        if len(v) != n:
            raise ValueError(f"feature {k!r} has {len(v)} rows, labels have {n}")
    tensors = {k: tf.constant(np.asarray(v)) for k, v in x.items()}
    labels = tf.constant(np.asarray(y, dtype="float32"))
    index = tf.data.Dataset.range(n)
    if shuffle:
        index = index.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    index = index.batch(batch_size)

    def gather(idx):
        return {k: tf.gather(v, idx) for k, v in tensors.items()}, tf.gather(labels, idx)

    return index.map(gather, num_parallel_calls=1, deterministic=True).prefetch(2)
