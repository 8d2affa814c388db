"""Process-wide runtime settings: seeds, deterministic ops, CPU threads, GPU memory growth.

Call `configure` once, before the first model is built (TensorFlow fixes its
thread pools at first use).
"""

from __future__ import annotations

import os

TF_LOG_DEFAULT = "3"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_DEFAULT)


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


def set_threads(intra_op: int = 1, inter_op: int = 0) -> None:
    """CPU thread pools. 0 leaves TensorFlow's default (one per core).

    One intra-op thread is faster here for these models: their ops are small, and
    splitting each across cores costs more than it saves, while independent ops
    still run side by side on the inter-op pool (measured by `python -m src.bench`).
    """
    import tensorflow as tf

    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
    except RuntimeError:  # already initialised in this process: keep what is set
        pass


def describe_device() -> str:
    """'GPU (n): names' with memory growth turned on, or 'CPU (n cores)'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except RuntimeError:
            pass
    if gpus:
        return f"GPU ({len(gpus)}): " + ", ".join(g.name for g in gpus)
    return f"CPU ({os.cpu_count()} cores)"


def quiet() -> None:
    """TensorFlow's and Optuna's chatter off (retracing notes, experimental-feature warnings)."""
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*experimental feature.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras.src.trainers.epoch_iterator")
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    except ImportError:
        pass


def configure(seed: int, deterministic: bool = True, intra_op: int = 1, inter_op: int = 0) -> str:
    """Threads, seeds and determinism; returns the device description."""
    quiet()
    set_threads(intra_op, inter_op)
    device = describe_device()
    if deterministic:
        set_determinism(seed)
    else:
        import keras

        keras.utils.set_random_seed(int(seed))
    return device
