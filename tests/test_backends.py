"""A second Keras backend: the same runs on JAX, with an input pipeline that needs no TensorFlow.

(The layer and model tests run on JAX as well: `make test` runs tests/layers and tests/models a second
time with KERAS_BACKEND=jax.)"""

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest

from src.config.paths import ROOT
from src.data.pipeline import NumpyBatches, make_dataset
from src.data.synthetic import build
from tests.conftest import TINY

NO_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # `import tensorflow` fails from here on
sys.argv = ["src.train", *sys.argv[1:]]
import runpy
runpy.run_module("src.train", run_name="__main__")
"""


def test_the_numpy_pipeline_feeds_the_batches_tf_data_feeds():
    from src.config import compose, to_plain

    data = build(to_plain(compose(TINY).data))
    inputs = ["target_item", "target_cat", "hist_item", "hist_cat", "hist_len", "neg_item", "neg_cat"]
    tfd = make_dataset(data, "train", 64, shuffle=True, seed=3, inputs=inputs)
    npd = NumpyBatches(data, "train", 64, shuffle=True, seed=3, inputs=inputs)
    for _ in range(2):  # two epochs: the same fresh permutation each
        tf_batches = list(tfd)
        assert len(tf_batches) == len(npd)
        for i, (x, y) in enumerate(tf_batches):
            nx, ny = npd[i]
            np.testing.assert_array_equal(np.asarray(y), ny)
            for k in inputs:
                np.testing.assert_array_equal(np.asarray(x[k]), nx[k])
        npd.on_epoch_end()


def jax_env():
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_a_jax_run_without_tensorflow_is_tracked_and_reproduces_exactly(store, tmp_path):
    # the reproduction loads every program the run compiled from JAX's compilation cache. JAX keeps only the
    # programs that took 1 s or more to compile, so under load a small one (a weight initialiser) could be kept
    # by the reproduction and not by the run: here every program is kept
    env = {**jax_env(), "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    args = [*TINY, "model=dien", "train.epochs=2", *store]
    out = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[jax]" in out.stdout
    run_id = next(line.split()[1].rstrip(":") for line in out.stdout.splitlines() if line.startswith("run "))
    mlflow.set_tracking_uri(store[0].split("=", 1)[1])
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    assert run.data.tags["keras_backend"] == "jax" and "valid_auc" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run_id, "attention")} >= {"attention/epoch_001.npz",
                                                                             "attention/epoch_001.png"}
    compiled = set((tmp_path / "jax-cache").iterdir())
    assert compiled  # the run's train and predict steps, its initialisers
    again = subprocess.run([sys.executable, "-m", "src.reproduce", run_id, store[0]], cwd=ROOT, capture_output=True,
                           text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert set((tmp_path / "jax-cache").iterdir()) == compiled  # none of them compiled again
    new_id = next(r.info.run_id for r in client.search_runs([run.info.experiment_id])
                  if r.data.tags.get("reproduces") == run_id)
    original, reproduced = run.data.metrics, client.get_run(new_id).data.metrics
    for k in ("best_valid_auc", "test_auc", "test_logloss", "valid_auc"):
        assert original[k] == reproduced[k], k  # exact on CPU


@pytest.mark.slow
def test_the_device_check_runs_its_three_parts():
    # also the test of a two-worker sweep on the JAX backend (part 3), which would cost as much again alone
    # the bench's sequences and the sweep's data as short as the other tests' (JAX compiles the unrolled
    # recurrences: its time grows with the length)
    # (its sweep trains DIN: DIEN's recurrence on JAX is the JAX run's test above, and the bench's part 2)
    small = [o for o in TINY if o.startswith("data.")] + ["model=din", "~model/evolution"]
    out = subprocess.run([sys.executable, "-m", "src.tools.gpu_check", "--rounds", "1", "--samples", "2000",
                          "--history", "20", "--precisions", "float32", "--trials", "2",
                          "--variants", "tensorflow,jax", *small], cwd=ROOT,
                         capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "tensorflow: [" in out.stdout and "jax: [" in out.stdout
    assert out.stdout.count('"samples_per_s": "median"') == 2  # DIN and DIEN
    assert '"jax/tensorflow"' in out.stdout and '"placement": "worker 1 of 2' in out.stdout
    # part 3 is a two-worker sweep on JAX: it ends with its answer, and both trials trained on JAX
    assert "the answer (report/effects.md" in out.stdout
    trials = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"trial"')]
    assert len(trials) == 2 and all(t["keras_backend"] == "jax" for t in trials), trials
