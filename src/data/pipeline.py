"""The input pipeline shared by every source: a SequenceData split -> shuffled batches.

Samples stay as (hist_end, hist_len) pointers into the event arrays; each batch
cuts its [B, T] histories out of the events with one gather per feature, so the
pipeline's memory is that of the events and samples, whatever T is.

On the TensorFlow backend the batches come from tf.data; on any other Keras backend
(JAX) from a `keras.utils.PyDataset` of NumPy arrays, which needs no TensorFlow. Both
draw the same permutation per epoch, so they feed the same batches.
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
    import keras

    inputs = list(inputs)
    known = list(FEATURES) + data.feature_columns()
    unknown = [k for k in inputs if k not in known]
    if unknown:
        raise ValueError(f"unknown model inputs {unknown}; the pipeline makes {known}")
    if data.size(split) == 0:
        raise ValueError(f"split {split!r} of data set {data.name!r} is empty")
    if keras.backend.backend() != "tensorflow":
        if repeat:
            raise ValueError("repeat=True is a tf.data option; the NumPy pipeline runs epoch by epoch")
        return NumpyBatches(data, split, batch_size, shuffle, seed, inputs)
    return _tf_dataset(data, split, batch_size, shuffle, seed, inputs, repeat)


def _tf_gather(data: SequenceData, split: str, inputs: list[str]):
    """The tf.data map function: a batch of sample indices -> (features, labels), histories cut out of
    the event arrays."""
    import tensorflow as tf

    s = data.splits[split]
    cols = {k: tf.constant(s[k]) for k in ("user", "target_item", "target_cat", "hist_len",
                                           *data.feature_columns()) if k in inputs}
    end = tf.constant(s["hist_end"].astype(np.int64))
    length = tf.constant(s["hist_len"].astype(np.int64))
    labels = tf.constant(s["label"].astype(np.float32))
    wanted = {"hist_item": "item", "hist_cat": "cat", "neg_item": "neg_item", "neg_cat": "neg_cat"}
    events = {k: tf.constant(data.events[v]) for k, v in wanted.items() if k in inputs}
    steps = tf.range(data.max_len, dtype=tf.int64)

    def gather(idx):
        out = {k: tf.gather(v, idx) for k, v in cols.items()}
        if events:
            e, n_valid = tf.gather(end, idx), tf.gather(length, idx)
            valid = steps[None, :] < n_valid[:, None]
            pos = tf.where(valid, e[:, None] - n_valid[:, None] + steps[None, :], 0)
            for k, v in events.items():
                out[k] = tf.where(valid, tf.gather(v, pos), tf.zeros([], v.dtype))
        return out, tf.gather(labels, idx)

    return gather


def _tf_dataset(data: SequenceData, split: str, batch_size: int, shuffle: bool, seed: int, inputs: list[str],
                repeat: bool):
    """The TensorFlow builder of `make_dataset`: batches of indices, mapped to features, prefetched."""
    import tensorflow as tf

    n = data.size(split)
    if shuffle:
        epochs = iter(range(2**62))

        def permuted_batches():
            # a fresh permutation per pass over the data, from (seed, pass number): repeatable, and
            # far cheaper than shuffling n scalar elements through a tf.data buffer
            perm = permutation(n, seed, next(epochs))
            for i in range(0, n, batch_size):
                yield perm[i:i + batch_size]

        index = tf.data.Dataset.from_generator(
            permuted_batches, output_signature=tf.TensorSpec([None], tf.int64))
    else:
        index = tf.data.Dataset.range(n).batch(batch_size)
    if repeat:
        index = index.repeat()
    return index.map(_tf_gather(data, split, inputs), num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True).prefetch(tf.data.AUTOTUNE)


def permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: seeded by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _py_dataset_base():
    import keras

    return keras.utils.PyDataset


class NumpyBatches(_py_dataset_base()):
    """Batches of `(features, labels)` as NumPy arrays, for Keras backends other than TensorFlow.

    A `keras.utils.PyDataset` read in order by one thread (so a run is repeatable); the training
    split gets a new permutation after every epoch, the same one tf.data would draw.
    """

    def __init__(self, data: SequenceData, split: str, batch_size: int, shuffle: bool, seed: int, inputs):
        super().__init__(workers=1, use_multiprocessing=False)
        self.data, self.split, self.batch_size = data, split, int(batch_size)
        self.shuffle, self.seed, self.inputs = shuffle, int(seed), list(inputs)
        self.n = data.size(split)
        self.labels = data.splits[split]["label"].astype(np.float32)
        self.epoch = 0
        self.order = permutation(self.n, self.seed, 0) if shuffle else np.arange(self.n)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        h = self.data.histories(self.split, idx)
        return {k: h[k] for k in self.inputs}, self.labels[idx]

    def on_epoch_end(self):
        if self.shuffle:
            self.epoch += 1
            self.order = permutation(self.n, self.seed, self.epoch)
