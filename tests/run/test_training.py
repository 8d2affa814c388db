import os
import subprocess
import sys

import keras
import mlflow
import numpy as np
import pytest

from src.config import compose
from src.config.paths import ROOT
from src.config.validate import ConfigError, validate
from src.run.training import Diverged, train_run
from tests.conftest import TINY, native_lines


@pytest.mark.parametrize("data", ["movielens", "amazon", "taobao", "synthetic"])
@pytest.mark.parametrize("model", ["base", "din", "dien"])
def test_every_data_model_combination_composes(data, model):
    cfg = compose([f"data={data}", f"model={model}"])
    config = validate(cfg)
    assert config.data.source == data and config.model.name == model


@pytest.mark.parametrize("experiment", ["din_paper", "dien_paper"])
def test_paper_presets_compose(experiment):
    config = validate(compose([f"+experiment={experiment}"]))
    assert config.data.source == "amazon"


def client_for(store):
    mlflow.set_tracking_uri(store[0].split("=", 1)[1])
    return mlflow.MlflowClient()


def test_one_epoch_run_logs_everything(new_store, tmp_path):
    overrides = TINY + ["model=dien", "train.save_model=true"] + new_store
    result = train_run(compose(overrides), overrides, log=lambda m: None)
    client = client_for(new_store)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    p, m, t = run.data.params, run.data.metrics, run.data.tags
    assert p["model.name"] == "dien" and p["data.users"] == "60" and p["train.optimizer.lr"] == "0.001"
    assert p["model.evolution.cell"] == "augru" and p["seed"] == "0"
    for k in ("valid_auc", "valid_gauc", "valid_logloss", "loss", "best_valid_auc", "test_auc", "test_gauc",
              "test_logloss", "best_epoch", "attention_entropy", "attention_peak", "attention_recent_weight",
              "attention_relevant_weight"):
        assert k in m, k
    assert [h.step for h in client.get_metric_history(result.run_id, "valid_auc")] == [1]
    for k in ("git.commit", "version.tensorflow", "version.mlflow", "data.fingerprint", "device"):
        assert t.get(k), k
    assert t["git.dirty"] in ("true", "false")
    files = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "overrides.txt", "attention", "model"} <= files
    att = {a.path for a in client.list_artifacts(result.run_id, "attention")}
    assert {"attention/epoch_001.npz", "attention/epoch_001.png"} <= att
    local = client.download_artifacts(result.run_id, "", str(tmp_path / "dl"))
    arrays = np.load(f"{local}/attention/epoch_001.npz")
    assert set(arrays.files) >= {"weights", "hist_item", "hist_len", "target_item", "label", "relevant"}
    assert arrays["weights"].shape == (4, 20)
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, rtol=1e-5)  # DIEN's softmax weights
    with open(f"{local}/attention/epoch_001.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "model=dien" in open(f"{local}/overrides.txt").read()
    logged = open(f"{local}/config.yaml").read()
    assert "evolution:" in logged and "cell: augru" in logged
    model = keras.models.load_model(f"{local}/model/model.keras")
    assert model.name == "dien"
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.name == "synthetic"


def test_same_config_same_metrics(store):
    overrides = TINY + ["model=din", "train.epochs=2"] + store
    a = train_run(compose(overrides), overrides, log=lambda m: None)
    b = train_run(compose(overrides), overrides, log=lambda m: None)
    assert a.valid == b.valid and a.test == b.test
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    # the same seed, yet two names: a run's name does not come from the generator its seed sets
    client = client_for(store)
    names = [client.get_run(r.run_id).info.run_name for r in (a, b)]
    assert names[0] != names[1] and all(names), names


def test_a_fresh_run_name_is_not_one_the_experiment_has_and_leaves_the_seeded_generator_alone(store, monkeypatch):
    import random

    from mlflow.utils import name_utils

    from src.run import logger

    client = client_for(store)
    experiment = client.create_experiment("names")
    client.create_run(experiment, run_name="taken-name-1")
    draws = iter(["taken-name-1", "free-name-2"])
    monkeypatch.setattr(name_utils, "_generate_random_name", lambda: next(draws))  # the draws, not the store
    random.seed(7)
    expected = random.random()
    random.seed(7)
    assert logger.fresh_run_name(experiment) == "free-name-2"
    assert random.random() == expected


def test_the_train_step_is_traced_once_per_run():
    """The optimizer's state exists before the first step, so TensorFlow traces the step once, not a second
    time after creating variables in the first trace (src/run/training.py: build)."""
    from src.run.training import fit, prepare

    p = prepare(compose(TINY + ["model=dien", "train.epochs=2"]), log=lambda m: None)
    assert p.model.optimizer.built
    traced, step = [], p.model.train_step

    def counted(data):
        traced.append(1)  # Python runs here only while the step is traced (graph mode)
        return step(data)

    p.model.train_step = counted
    history, _, _ = fit(p, log=lambda m: None)
    assert len(history) == 2 and len(traced) == 1, traced


def test_reproduce_round_trip(store, capsys):
    from src import reproduce

    overrides = TINY + ["model=din", "model/activation=dice"] + store
    first = train_run(compose(overrides), overrides, log=lambda m: None)
    uri = store[0]
    assert reproduce.main([first.run_id, uri]) == 0
    out = capsys.readouterr().out
    assert "identical" in out and "not identical" not in out
    client = client_for(store)
    runs = client.search_runs([client.get_run(first.run_id).info.experiment_id],
                              filter_string=f"tags.reproduces = '{first.run_id}'")
    assert len(runs) == 1
    assert runs[0].data.metrics["test_auc"] == client.get_run(first.run_id).data.metrics["test_auc"]


def test_reproduce_on_changed_data_stops_before_training_and_goes_on_only_when_asked(store, tmp_path, capsys):
    import shutil

    from src import reproduce

    for name in ("clicks.csv", "items.csv", "users.csv"):  # the example log, in a folder of the test's own
        shutil.copy(ROOT / "docs" / "examples" / "clicks" / name, tmp_path / name)
    tiny = [o for o in TINY if not o.startswith("data")]
    overrides = ["data=clicks_example", f"data.path={tmp_path / 'clicks.csv'}", "data.cache=false",
                 f"data.items.path={tmp_path / 'items.csv'}", f"data.users.path={tmp_path / 'users.csv'}",
                 "model=din", *tiny, *store]
    first = train_run(compose(overrides), overrides, log=lambda m: None)
    client = client_for(store)
    logged = client.get_run(first.run_id).data.tags["data.fingerprint"]
    log = tmp_path / "clicks.csv"
    header, row, *rest = log.read_text().splitlines()
    log.write_text("\n".join([header, *rest, row]) + "\n")  # the same rows, one moved: another file
    capsys.readouterr()

    def reproductions():
        return client.search_runs([client.get_run(first.run_id).info.experiment_id],
                                  filter_string=f"tags.reproduces = '{first.run_id}'")

    assert reproduce.main([first.run_id, store[0]]) == 2
    err = capsys.readouterr().err
    [line] = [ln for ln in err.splitlines() if ln.startswith("error:")]
    now = reproduce.changed_data(compose(overrides), {"data.fingerprint": logged})
    assert f"its fingerprint was {logged}" in line and str(log) in line and "nothing was trained" in line, err
    assert now and now.split(" gives ")[1].split()[0] in line and "--allow-changed-data" in line
    assert not reproductions()  # stopped before any run
    assert reproduce.main([first.run_id, store[0], "--allow-changed-data"]) == 0
    assert "warning: the data changed since the run" in capsys.readouterr().err
    assert len(reproductions()) == 1


def test_divergence_fails_the_run_clearly(store):
    overrides = TINY + ["model=base", "train.optimizer.name=sgd", "train.optimizer.lr=1e30"] + store
    with pytest.raises(Diverged, match="train.optimizer.lr"):
        train_run(compose(overrides), overrides, log=lambda m: None)
    client = client_for(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    assert "Diverged" in runs[0].data.tags["failure"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=abc", "train.epochs"),
        ("train.optimizer.lr=-1", "train.optimizer.lr"),
        ("+train.epoch=3", "Did you mean epochs"),
        ("+model.attention.scaling=true", "model.attention.scaling"),
        ("train.early_stopping.metric=accuracy", "train.early_stopping.metric"),
    ],
)
def test_bad_values_fail_before_any_run(override, message, new_store):
    with pytest.raises(ConfigError, match=message):
        train_run(compose(TINY + [override] + new_store), log=lambda m: None)
    assert not (ROOT / "never").exists()
    db = new_store[0].split("sqlite:///", 1)[1]

    assert not os.path.exists(db)  # no store was even opened, so no run was left behind


def run_train(*args):
    return subprocess.run([sys.executable, "-m", "src.train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_errors_name_the_key_and_options(new_store):
    out = run_train("model/activation=dicee", *new_store)
    assert out.returncode != 0 and "dicee" in out.stderr and "dice" in out.stderr and "prelu" in out.stderr
    out = run_train("train.epoch=3", *new_store)
    assert out.returncode != 0 and "train.epoch" in out.stderr
    out = run_train("train.batch_size=big", *new_store)
    assert out.returncode == 2 and "train.batch_size" in out.stderr
    out = run_train("data.path=/nonexistent", *new_store)
    assert out.returncode == 2 and "/nonexistent" in out.stderr and "grouplens" in out.stderr
    db = new_store[0].split("sqlite:///", 1)[1]

    assert not os.path.exists(db)


@pytest.mark.slow
def test_cfg_job_prints_the_composed_config():
    out = run_train("model=dien", "model/evolution=agru", "--cfg", "job")
    assert out.returncode == 0, out.stderr
    assert "cell: agru" in out.stdout and "name: dien" in out.stdout and "hydra" not in out.stdout


@pytest.mark.slow
def test_no_native_log_lines_from_train_and_reproduce(store):
    # (a sweep's spawned workers: the two-worker sweep tests in tests/sweep/test_sweep.py check their output)
    out = run_train(*TINY, *store)
    assert out.returncode == 0, out.stderr[-2000:]
    run_id = next(line.split()[1].rstrip(":") for line in out.stdout.splitlines() if line.startswith("run "))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"}  # as a user has it
    rep = subprocess.run([sys.executable, "-m", "src.reproduce", run_id, store[0]], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=env)
    assert rep.returncode == 0, rep.stderr[-2000:]
    for proc in (out, rep):
        text = proc.stdout + proc.stderr
        assert not native_lines(text), text[:3000]
        assert "Downloading artifacts" not in text, text[:3000]  # nor MLflow's progress bars


def test_a_ctrl_c_during_training_is_raised_where_the_loop_checks_and_a_second_one_at_once():
    """Python raises KeyboardInterrupt wherever the signal lands; in a weak-reference callback it is printed
    and dropped, and the run trained on. While a model trains the first Ctrl-C is noted and raised by the
    loop's check (src/run/interrupts.py: kept)."""
    import signal

    from src.run.interrupts import at_checks

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran the tests
    try:
        with at_checks() as check:
            check()  # nothing came yet
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler has run by now: it raised nothing
                pass
            with pytest.raises(KeyboardInterrupt):
                check()
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)  # the second: at once
                for _ in range(1000):
                    pass
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_handler_a_library_installs_inside_an_entry_point_is_replaced_by_reclaim():
    """ray.init replaces SIGTERM's handler with one that exits; after reclaim a SIGTERM raises Terminated
    again, and the handler from before the entry point is put back at its end."""
    import signal

    from src.run.interrupts import Terminated, reclaim, stoppable

    before = signal.getsignal(signal.SIGTERM)
    with stoppable():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(15))  # what a library does
        reclaim()
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
    assert signal.getsignal(signal.SIGTERM) is before


SHORT_SHUTDOWN_CHILD = """
import atexit, gc, sys
atexit.register(lambda: print("frozen:", gc.get_freeze_count() > 0))  # registered first: runs last
n = atexit._ncallbacks()
from src.run import runtime
runtime.short_shutdown()
runtime.short_shutdown()
print("handlers added:", atexit._ncallbacks() - n)
class Holder:
    pass
held = Holder()
held.me = held  # a cycle: only the collector would close (and flush) its file
held.out = open(sys.argv[1], "w")
held.out.write("every byte written")
"""


def test_a_short_shutdown_freezes_the_objects_and_loses_no_written_byte(tmp_path):
    """runtime.short_shutdown: one exit handler however often it is asked for; a handler registered before
    it runs after it and finds the objects frozen; and the file that only a reference cycle holds is
    flushed before the collector is told to skip it (without the flush it ends empty)."""
    out = tmp_path / "written.txt"
    proc = subprocess.run([sys.executable, "-c", SHORT_SHUTDOWN_CHILD, str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "handlers added: 1" in proc.stdout and "frozen: True" in proc.stdout, proc.stdout
    assert out.read_text() == "every byte written"


FROZEN_STACK_CHILD = """
import gc, sys
from src.run import runtime
runtime.quiet_tensorflow_import()
full = []
gc.callbacks.append(lambda phase, info: full.append(1) if phase == "stop" and info["generation"] == 2 else None)
import keras  # noqa: F401  (as a run imports them: Keras first, which imports TensorFlow)
print("full passes during the import:", len(full), "enabled:", gc.isenabled(), "tensorflow" in sys.modules)
print("loaded for nothing:", [n for n in runtime.NOT_FOR_TENSORFLOW if n in sys.modules])
import jax, sklearn.metrics  # noqa: E401, F401
print("imported afterwards:", all(sys.modules.get(n) is not None for n in runtime.NOT_FOR_TENSORFLOW))
after_import = gc.get_freeze_count()
import weakref
class Node:
    pass
garbage = Node()
garbage.me = garbage  # a cycle made after the import: configure's collection frees it, not its freeze
seen = weakref.ref(garbage)
del garbage
held = Node()
held.me = held  # a cycle frozen by configure, with a file only the collector would have closed
held.out = open(sys.argv[1], "w")
held.out.write("every byte written")
runtime.configure(0)
print("frozen by the import:", after_import > 100000, "more by configure:", gc.get_freeze_count() > after_import)
print("collected:", seen() is None)
"""


def test_tensorflow_loads_without_collector_passes_and_the_stack_is_frozen_once(tmp_path):
    """The import hook pauses the garbage collector for TensorFlow's import and freezes what it loaded,
    without the packages TensorFlow loads for nothing the project uses (they import as usual afterwards);
    configure, at the first run, collects and freezes what exists then; and a process whose objects were
    frozen flushes its files at exit, whatever its entry point (src/run/runtime.py)."""
    out = tmp_path / "written.txt"
    proc = subprocess.run([sys.executable, "-c", FROZEN_STACK_CHILD, str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr
    assert "full passes during the import: 0 enabled: True True" in proc.stdout, proc.stdout
    assert "loaded for nothing: []" in proc.stdout and "imported afterwards: True" in proc.stdout, proc.stdout
    assert "frozen by the import: True more by configure: True" in proc.stdout, proc.stdout
    assert "collected: True" in proc.stdout, proc.stdout
    assert out.read_text() == "every byte written"


def test_every_entry_point_starts_with_the_runtime_entry_point():
    """src.train, src.reproduce, src.sweep and its spawned workers, src.bench: TensorFlow's start-up lines off
    the terminal and the short shutdown (src/run/runtime.py: entry_point), each first thing in its process."""
    import ast

    def calls(node):
        return {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}

    for path in ("src/train.py", "src/reproduce.py", "src/sweep/__main__.py", "src/bench.py", "src/tools/bench.py"):
        tree = ast.parse((ROOT / path).read_text())
        [block] = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
        assert "entry_point" in calls(block), path
    worker = ast.parse((ROOT / "src/sweep/worker.py").read_text())
    [main] = [n for n in worker.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert "entry_point" in calls(main)


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_the_run_ends_killed(store):
    import signal
    import time

    # never stopping early: the run is surely still training when the signal comes
    proc = subprocess.Popen([sys.executable, "-m", "src.train", *TINY, "train.epochs=200",
                             "train.early_stopping.patience=0", *store], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = ""
    deadline = time.time() + 240
    while not line.startswith("epoch 1/") and time.time() < deadline:
        line = proc.stdout.readline()
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted; run ") and "KILLED" in lines[0], err[-3000:]
    import mlflow

    mlflow.set_tracking_uri(store[0].split("=", 1)[1])
    run_id = lines[0].split()[2]
    assert mlflow.MlflowClient().get_run(run_id).info.status == "KILLED"


@pytest.mark.slow
def test_a_mixed_precision_run_and_an_xla_run(store):
    lines = []
    result = train_run(compose(TINY + ["model=dien", "model/activation=dice", "train.precision=mixed_bfloat16"]
                               + store), log=lines.append)
    assert result.status == "FINISHED" and np.isfinite(result.valid["auc"])
    assert mlflow.MlflowClient().get_run(result.run_id).data.params["train.precision"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    again = train_run(compose(TINY + ["model=din"] + store), log=lines.append)  # the next run is float32 again
    assert keras.config.dtype_policy().name == "float32" and again.status == "FINISHED"
    with pytest.raises(ConfigError, match="jit_compile=true` needs `train.deterministic=false"):
        validate(compose(TINY + ["train.jit_compile=true"]))
    xla = train_run(compose(TINY + ["model=din", "train.jit_compile=true", "train.deterministic=false"] + store),
                    log=lines.append)
    assert xla.status == "FINISHED" and np.isfinite(xla.valid["auc"])
