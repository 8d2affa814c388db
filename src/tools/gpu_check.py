"""The device check (make gpu-check): what a machine's backends see, how fast the models train there,
and a short sweep with several trials per GPU.

    python -m src.tools.gpu_check [--rounds 3] [--samples 50000] [--history 50] [--precisions float32,mixed_bfloat16]
                                  [sweep overrides ...]

1. the devices each installed Keras backend sees (TensorFlow, JAX);
2. `python -m src.bench backends` on the backends present, in each precision: DIN and DIEN
   samples/s (on a GPU machine: on the GPU; the same command on a CPU machine gives the CPU side);
3. a two-worker `sweep=tiny` with `sweep.trials_per_gpu=2` on the first backend (JAX where it imports),
   and where each trial ran; overrides after the options go to this sweep (e.g. `data.max_len=20`).

It needs only the repository. On a machine without a package index, first install what it lacks
from a wheelhouse built elsewhere: `make wheelhouse` (on a machine with an index) fills `wheelhouse/`
with the project's wheels for Linux x86-64; carry that folder along, then
`pip install --no-index --find-links wheelhouse -e .`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from src.config.paths import ROOT
from src.sweep.placement import PROBES, ProbeFailed, probe_devices
from src.sweep.tracking import trial_run_tags


def devices() -> dict:
    """{backend: [device names]} for the backends that import here (the sweep's own probe, per backend)."""
    out = {}
    for backend in PROBES:
        try:
            out[backend] = str([name for _, name in probe_devices(backend)])
        except ProbeFailed as e:
            out[backend] = f"not usable here: {e}"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.tools.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--samples", type=int, default=50000)
    p.add_argument("--history", type=int, default=50, help="part 2: the behaviour sequence's length")
    p.add_argument("--precisions", default="float32,mixed_float16,mixed_bfloat16")
    p.add_argument("--trials", type=int, default=4, help="trials of the short sweep")
    p.add_argument("--variants", default="tensorflow,tensorflow-xla,jax",
                   help="what part 2 compares, of tensorflow, tensorflow-xla, jax (those that import here)")
    p.add_argument("overrides", nargs="*", help="part 3: Hydra overrides of the short sweep")
    a = p.parse_args(argv)

    print("== 1. devices", flush=True)
    seen = devices()
    for backend, names in seen.items():
        print(f"{backend}: {names}", flush=True)
    usable = [b for b, names in seen.items() if not names.startswith("not usable")]
    if not usable:
        print("error: neither TensorFlow nor JAX imports here", file=sys.stderr)
        return 2
    variants = [v for v in a.variants.split(",") if v.split("-")[0] in usable]

    print(f"== 2. training throughput, python -m src.bench backends --backend {','.join(variants)}", flush=True)
    for precision in a.precisions.split(","):
        cmd = [sys.executable, "-m", "src.bench", "backends", "--backend", ",".join(variants), "--precision",
               precision, "--rounds", str(a.rounds), "--samples", str(a.samples), "--history", str(a.history)]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
        for line in lines:
            if '"summary"' in line or '"device"' in line:
                print(line, flush=True)
        if r.returncode:
            print(f"precision {precision}: failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:300]}", flush=True)

    backend = "jax" if "jax" in usable else usable[0]
    print(f"== 3. a two-worker sweep, two trials per GPU, on {backend}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "src.sweep", "sweep=tiny", "sweep.name=gpu-check", "sweep.workers=2",
               "sweep.trials_per_gpu=2", f"sweep.trials={a.trials}", "sweep.pruner=none",
               f"sweep.storage=journal:{tmp}/optuna.journal", f"tracking.uri=sqlite:///{tmp}/mlflow.db",
               f"tracking.artifact_root={tmp}/artifacts", *a.overrides]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": backend})
        for line in r.stdout.splitlines():
            if line.startswith(("worker ", "[w", "sweep took", "the answer (")) or "GPUs" in line:
                print(line, flush=True)
        if r.returncode:
            print(r.stdout[-2000:] + r.stderr[-2000:], file=sys.stderr)
            return r.returncode
        for tags in trial_run_tags(f"sqlite:///{tmp}/mlflow.db"):
            print(json.dumps({"trial": tags["trial"], "device": tags.get("device"), "keras_backend":
                              tags.get("keras_backend"), "placement": tags.get("placement")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
