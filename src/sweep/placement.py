"""GPU placement, in one place: which devices a backend sees (one probe, shared with `make gpu-check`),
which GPU each local worker gets, and how a worker process takes its GPU and its share of it.

The probe runs in a child process, so that the sweep's driver stays free of CUDA state. On Linux without
any GPU driver's device node (`GPU_NODES`) no backend can see a GPU, and the sweep asks no probe: it would
import TensorFlow in a process of its own (seconds) before the first trial of every local multi-worker
sweep on a CPU machine.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

from src.sweep import SweepError

PROBES = {  # [device type, name] of every device a backend sees, as JSON on the last line
    "tensorflow": "import json, tensorflow as tf; "
                  "print(json.dumps([[d.device_type, d.name] for d in tf.config.list_physical_devices()]))",
    "jax": "import json, jax; "
           "print(json.dumps([[d.platform.upper(), f'{d.platform}:{d.id} {d.device_kind}'] for d in jax.devices()]))",
}


# the device nodes a GPU driver makes on Linux: NVIDIA's (CUDA), AMD's (ROCm), WSL's GPU
GPU_NODES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg")


def no_gpu_here() -> bool:
    """Whether no backend can see a GPU here, known without asking one: Linux, and no GPU device node."""
    return sys.platform == "linux" and not any(glob.glob(pattern) for pattern in GPU_NODES)


class ProbeFailed(RuntimeError):
    """A backend could not be imported or asked for its devices; the message is its last error line."""


def probe_devices(backend: str, timeout: float = 300) -> list[tuple[str, str]]:
    """[(device type, name)] that `backend` sees here, asked in a child process.

    Raises:
        ProbeFailed: the backend does not import or start here.
    """
    r = subprocess.run([sys.executable, "-c", PROBES[backend]], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        raise ProbeFailed((r.stderr.strip().splitlines() or ["?"])[-1][:200])
    return [tuple(d) for d in json.loads(lines[-1])]


def gpu_ids() -> list[str]:
    """GPUs to share out: DIL_GPUS=0,2, or those the Keras backend sees (none if it cannot be asked)."""
    from src.config.validate import backend

    if os.environ.get("DIL_GPUS"):
        return os.environ["DIL_GPUS"].split(",")
    if no_gpu_here():
        return []
    name = backend() if backend() in PROBES else "tensorflow"
    try:
        found = probe_devices(name, timeout=120)
    except (ProbeFailed, subprocess.SubprocessError, OSError, ValueError):
        return []
    return [str(i) for i in range(sum(kind == "GPU" for kind, _ in found))]


def placement(workers: int, gpus: list[str], per_gpu: int) -> list[str | None]:
    """The GPU of each worker, round robin (worker i on gpus[i % len(gpus)]); None for all on the CPU.

    Raises SweepError when the workers would not fit `per_gpu` to a GPU.
    """
    if not gpus:
        return [None] * workers
    if workers > len(gpus) * per_gpu:
        raise SweepError(f"{workers} workers do not fit on {len(gpus)} GPU(s) at sweep.trials_per_gpu={per_gpu}; "
                         f"raise sweep.trials_per_gpu or lower sweep.workers")
    return [gpus[i % len(gpus)] for i in range(workers)]


def take_gpu(gpu: str | None, share: int = 1) -> None:
    """A worker process's GPU and its share of it, before the backend starts: TensorFlow grows its memory
    as needed (src.run.runtime.grow_gpu_memory), JAX takes 0.9/share of the GPU instead of its default 75%."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / share:.3f}")
