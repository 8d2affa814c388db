"""Process-wide runtime settings: seeds, deterministic ops, CPU threads, GPU memory growth, and a
TensorFlow that starts without native log lines.

Call `configure` once, before the first model is built (TensorFlow fixes its
thread pools at first use).

TensorFlow's native libraries write start-up lines straight to the process's standard error
while `import tensorflow` runs ("All log messages before absl::InitializeLog()...", oneDNN and
CUDA probes), whatever TF_CPP_MIN_LOG_LEVEL says. Every entry point (src.train, src.reproduce,
src.sweep and its workers, src.bench) calls `entry_point()` first, and with it
`quiet_tensorflow_import()`: an import hook that
sends file descriptor 2 to a temporary file for the length of that one import (of TensorFlow, or of
Keras where Keras comes first: it imports TensorFlow), in whichever module imports it first, and writes
the lines back if the import fails. `DIL_TF_LOGS=1` leaves
them on the terminal. Importing a module of the project installs nothing.

The garbage collector and the half million objects that TensorFlow, Keras and MLflow bring: a full pass
walks all of them, and a process made several during `import tensorflow` and two or three in every trial
(counted with gc.callbacks; docs/benchmarks.md). So the import hook also pauses the collector while
TensorFlow (and the Keras it imports) loads, and freezes what exists after it (`gc.freeze`: the
collector's passes skip frozen objects; the few thousand objects the import leaves as garbage stay,
once); `configure`, at a process's first run, collects once and freezes what exists then (imported
modules and the like, live for the whole process; what the first run holds then and later drops inside a
reference cycle stays until exit, once). Later passes walk only what the runs make. Frozen objects are
still freed when nothing refers to them, but what only a reference cycle holds is never collected, so at
exit (`short_shutdown`, registered by each freeze and by `entry_point()`) every open file is flushed
first, after the exit handlers the process registered later (MLflow ending its runs, Hydra's,
multiprocessing's): no written byte is lost with a file the collector would have closed. Then the rest
is frozen too, and the interpreter's shutdown passes skip it, the memory left to the operating system,
so that a process that trained a model exits at once (`python -m src.bench shutdown` measures it;
docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import gc
import importlib.abc
import importlib.util
import io
import os
import sys
import tempfile

from src.config.paths import CACHE_DIR

TF_LOG_DEFAULT = "3"


# installed packages that TensorFlow and Keras import only because they are installed, for parts of them the
# project never calls: scikit-learn for the scikit-learn estimators of keras.wrappers, JAX for TFLite's JAX
# converter (tf.lite) and Keras' Orbax checkpoints. While TensorFlow or Keras loads they count as absent (each
# of these imports is guarded; the wrappers and the converter say so if called); any module imports them as
# usual afterwards. JAX stays when it is the Keras backend (KERAS_BACKEND=jax)
NOT_FOR_TENSORFLOW = ("sklearn", "jax")


def _absent_while_tensorflow_loads() -> list[str]:
    """The packages of NOT_FOR_TENSORFLOW that this import may skip: not imported yet, not the Keras backend."""
    from src.config.validate import backend

    return [name for name in NOT_FOR_TENSORFLOW if name not in sys.modules and name != backend()]


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader with the process's standard error (fd 2) sent to a temporary file, the
    garbage collector paused and the packages TensorFlow loads for nothing the project uses counted as
    absent (NOT_FOR_TENSORFLOW); what exists once it has run is frozen."""

    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        collecting = gc.isenabled()
        absent = _absent_while_tensorflow_loads()
        with tempfile.TemporaryFile(mode="w+b") as captured:
            os.dup2(captured.fileno(), 2)
            gc.disable()  # see the module's docstring: the collector's passes during this import
            try:
                sys.modules.update(dict.fromkeys(absent))  # None in sys.modules: `import name` raises ImportError
                self.inner.exec_module(module)
                _freeze()  # TensorFlow's modules (and Keras', which it imports) live as long as the process
            except BaseException:
                sys.stderr.flush()
                os.dup2(saved, 2)
                captured.seek(0)
                os.write(2, captured.read())
                raise
            finally:
                for name in absent:
                    if name in sys.modules and sys.modules[name] is None:
                        del sys.modules[name]
                if collecting:
                    gc.enable()
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first `import tensorflow` or `import keras` (Keras imports TensorFlow, its
    backend, and the packages of NOT_FOR_TENSORFLOW itself) in `_QuietLoader`, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name not in ("tensorflow", "keras"):
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Keeps TensorFlow's native start-up lines off the terminal (unless DIL_TF_LOGS=1)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_DEFAULT)
    if os.environ.get("DIL_TF_LOGS") == "1" or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())


def entry_point() -> None:
    """What every entry point (src.train, src.reproduce, src.sweep and its workers, src.bench) does first:
    TensorFlow's start-up lines off the terminal and a short shutdown."""
    quiet_tensorflow_import()
    short_shutdown()


_WRITERS = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)


def _flush_and_freeze() -> None:
    gc.unfreeze()  # gc.get_objects() lists no frozen object: the files frozen earlier are flushed too
    for f in [o for o in gc.get_objects() if type(o) in _WRITERS]:
        try:
            if f.closed:
                continue
            f.flush()
        except ValueError:  # a wrapper whose buffer was detached: nothing of its own to flush
            continue
        except OSError as e:  # a closed pipe, a full disk: said, as Python's own shutdown would say it
            print(f"warning: at exit, {getattr(f, 'name', f)!r} could not be flushed: {e}", file=sys.__stderr__)
    gc.freeze()


def short_shutdown() -> None:
    """At exit, every open file is flushed and the objects are frozen, so no written byte waits on the
    collector and its shutdown passes skip them (see the module's docstring). The exit handler is
    registered once; called first thing in a process, it runs after the handlers registered later
    (MLflow's, Hydra's: atexit runs the last registered first)."""
    global _SHORT_SHUTDOWN
    if not _SHORT_SHUTDOWN:
        atexit.register(_flush_and_freeze)
        _SHORT_SHUTDOWN = True


_SHORT_SHUTDOWN = False


def _freeze() -> None:
    """Freezes what exists now; what is frozen gets its files flushed at exit (short_shutdown)."""
    short_shutdown()
    gc.freeze()


def freeze_the_stack() -> None:
    """Once per process, when its first run is configured (TensorFlow, Keras and MLflow imported): the
    objects that exist then, after one collection, are frozen (`gc.freeze`), and the collector's full
    passes no longer walk them (see the module's docstring)."""
    global _STACK_FROZEN
    if not _STACK_FROZEN:
        gc.collect()
        _freeze()
        _STACK_FROZEN = True


_STACK_FROZEN = False


def set_determinism(seed: int) -> None:
    """Seeds Python, NumPy and the backend, and turns on TensorFlow's deterministic ops.

    With op determinism on, Keras does not compile with XLA (it would drop
    `jit_compile=True` anyway), so training runs TensorFlow's own kernels. JAX on the CPU
    is deterministic as it is (the same program and seed give the same numbers).
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def set_threads(intra_op: int = 1, inter_op: int = 0) -> None:
    """CPU thread pools. 0 leaves the backend's default (one per core).

    One intra-op thread is faster here for these models: their ops are small, and
    splitting each across cores costs more than it saves, while independent ops
    still run side by side on the inter-op pool (measured by `python -m src.bench`).
    On JAX the setting is XLA's, read when JAX starts its CPU client: the first run
    of a process fixes it.
    """
    import keras

    if keras.backend.backend() == "jax":
        if intra_op == 1 and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1").strip()
        return
    import tensorflow as tf

    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
    except RuntimeError:  # already initialised in this process: keep what is set
        pass


def compilation_cache() -> None:
    """JAX: keeps the programs XLA compiles in `data/cache/jax/` (JAX_COMPILATION_CACHE_DIR chooses another
    folder), so that the next process training the same model at the same shapes (a sweep's other seeds, a
    reproduction, the next worker) loads them instead of compiling again: a tiny DIEN's first epoch spends
    most of its time compiling. The cache holds XLA's output for exactly that program, so the numbers are the
    same as after a fresh compile. Must run before the process's first compile; nothing on other backends."""
    import keras

    if keras.backend.backend() != "jax":
        return
    import jax

    if not jax.config.jax_compilation_cache_dir:  # JAX_COMPILATION_CACHE_DIR, when set, has filled it
        jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR / "jax"))


def grow_gpu_memory() -> None:
    """TensorFlow: take GPU memory as needed instead of all of it (so that workers can share a GPU).
    Must run before TensorFlow initialises its GPUs; nothing to do on other backends."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    for g in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except RuntimeError:  # the GPUs are initialised already: growth is fixed for this process
            pass


def describe_device() -> str:
    """'GPU (n): names' or 'CPU (n cores)', with the backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        names = [str(d) for d in jax.devices() if d.platform == "gpu"]
    else:
        import tensorflow as tf

        names = [g.name for g in tf.config.list_physical_devices("GPU")]
    if names:
        return f"GPU ({len(names)}): " + ", ".join(names) + f" [{backend}]"
    return f"CPU ({os.cpu_count()} cores) [{backend}]"


def quiet() -> None:
    """TensorFlow's and Keras' chatter off (retracing notes, experimental-feature warnings); the sweep
    quiets Optuna's itself (src.sweep.study.quiet)."""
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*experimental feature.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras.src.trainers.epoch_iterator")


def configure(seed: int, deterministic: bool = True, intra_op: int = 1, inter_op: int = 0) -> str:
    """Threads, seeds and determinism; returns the device description."""
    quiet()
    set_threads(intra_op, inter_op)
    compilation_cache()
    grow_gpu_memory()
    device = describe_device()
    if deterministic:
        set_determinism(seed)
    else:
        import keras

        keras.utils.set_random_seed(int(seed))
    freeze_the_stack()
    return device
