"""Seeds and deterministic ops: the same config and seed give the same numbers on CPU."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def set_determinism(seed: int) -> None:
    """Seeds Python, NumPy and the backend, and turns on TensorFlow's deterministic ops.

    With op determinism on, Keras does not compile with XLA (it would drop
    `jit_compile=True` anyway), so training runs TensorFlow's own kernels.
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
