"""The input pipeline shared by every source: a SequenceData split -> shuffled, batched tf.data.

Samples stay as (hist_end, hist_len) pointers into the event arrays; each batch
cuts its [B, T] histories out of the events with one gather per feature, so the
pipeline's memory is that of the events and samples, whatever T is.
"""

from __future__ import annotations

import numpy as np

from src.data.dataset import SequenceData

FEATURES = ("user", "target_item", "target_cat", "hist_item", "hist_cat", "hist_len", "neg_item", "neg_cat")


def make_dataset(data: SequenceData, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                 inputs=FEATURES, repeat: bool = False):
    """Batches of `(features, labels)` for the model inputs named in `inputs`.

    Shuffling draws a fresh permutation of the whole split every epoch, seeded by
    (seed, epoch), so two runs see the same order (the sample indices are shuffled,
    not the rows). Batches are prefetched.

    Args:
        data: the data set.
        split: "train", "valid" or "test".
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: reshuffle every epoch.
        seed: seed of the shuffle.
        inputs: the feature names to produce (a model's `input` keys).
        repeat: repeat forever (for step-based loops).
    """
    import tensorflow as tf

    inputs = list(inputs)
    unknown = [k for k in inputs if k not in FEATURES]
    if unknown:
        raise ValueError(f"unknown model inputs {unknown}; the pipeline makes {list(FEATURES)}")
    s = data.splits[split]
    n = data.size(split)
    if n == 0:
        raise ValueError(f"split {split!r} of data set {data.name!r} is empty")
    t = data.max_len
    cols = {k: tf.constant(s[k]) for k in ("user", "target_item", "target_cat", "hist_len") if k in inputs}
    end = tf.constant(s["hist_end"].astype(np.int64))
    length = tf.constant(s["hist_len"].astype(np.int64))
    labels = tf.constant(s["label"].astype(np.float32))
    wanted = {"hist_item": "item", "hist_cat": "cat", "neg_item": "neg_item", "neg_cat": "neg_cat"}
    events = {k: tf.constant(data.events[v]) for k, v in wanted.items() if k in inputs}
    steps = tf.range(t, dtype=tf.int64)

    def gather(idx):
        out = {k: tf.gather(v, idx) for k, v in cols.items()}
        if events:
            e, n_valid = tf.gather(end, idx), tf.gather(length, idx)
            valid = steps[None, :] < n_valid[:, None]
            pos = tf.where(valid, e[:, None] - n_valid[:, None] + steps[None, :], 0)
            for k, v in events.items():
                out[k] = tf.where(valid, tf.gather(v, pos), tf.zeros([], v.dtype))
        return out, tf.gather(labels, idx)

    if shuffle:
        epochs = iter(range(2**62))

        def permuted_batches():
            # a fresh permutation per pass over the data, from (seed, pass number): repeatable, and
            # far cheaper than shuffling n scalar elements through a tf.data buffer
            perm = np.random.default_rng([seed, next(epochs)]).permutation(n)
            for i in range(0, n, batch_size):
                yield perm[i:i + batch_size]

        index = tf.data.Dataset.from_generator(
            permuted_batches, output_signature=tf.TensorSpec([None], tf.int64))
    else:
        index = tf.data.Dataset.range(n).batch(batch_size)
    if repeat:
        index = index.repeat()
    return index.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE)
