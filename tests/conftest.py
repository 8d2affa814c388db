import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import signal  # noqa: E402

import pytest  # noqa: E402

# Ctrl-C reaches the processes the tests start: a shell script that starts `make test &` (no job control)
# starts it with SIGINT ignored, which every process started from it inherits, and the tests that send
# Ctrl-C to a run or a sweep would wait for it to end on its own
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from src.run.runtime import quiet_tensorflow_import  # noqa: E402

quiet_tensorflow_import()  # as runtime.entry_point does: TensorFlow's native start-up lines off the terminal

TINY = [
    "data=synthetic", "data.users=60", "data.items=80", "data.cats=4", "data.seq_len=25",
    "data.samples_per_user=8", "data.split.valid=2", "data.split.test=2", "data.max_len=20",
    "data.cache=false",
    "model.embedding.item=8", "model.embedding.cat=4", "model.mlp.width=16",
    "train.batch_size=64", "train.epochs=1", "train.probe.size=4", "train.probe.metrics_size=40",
]


def float64():
    """A context in which float64 tensors exist (JAX makes them only in its x64 mode)."""
    import contextlib

    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


# the files whose tests take minutes each (make test's slowest, measured): the device check and the JAX run,
# the synthetic ordering at default sizes, the scale-out faults, the browser tests of the MLflow UI
LONGEST = ("tests/test_backends.py", "tests/test_synthetic_answer.py", "tests/sweep/test_scaleout.py",
           "tests/tools/test_ui.py")


def pytest_collection_modifyitems(config, items):
    """The slow tests of the LONGEST files first, then the other slow tests, then the rest, each group in
    its usual order: on pytest-xdist's workers (make test's TensorFlow pass hands out one test at a time)
    the minutes-long tests start early and the short ones fill the end, instead of one worker training a
    minutes-long test alone while the other has nothing left to take. Only the order changes."""

    def group(item):
        if item.get_closest_marker("slow") is None:
            return 2
        return 0 if item.nodeid.split("::")[0] in LONGEST else 1

    items.sort(key=group)


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory):
    """An MLflow SQLite store with no runs, made by MLflow once per test process: making a store runs
    MLflow's schema migrations, 2.6 s each time, and most tests need a store of their own to write to."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("empty-mlflow")
    db = folder / "mlflow.db"
    SqlAlchemyStore(f"sqlite:///{db}", (folder / "artifacts").as_uri()).engine.dispose()
    return db


def mlflow_db_at(db, empty_mlflow_db):
    """A private store at `db` that starts as a copy of the empty one (what a first run would make)."""
    import shutil

    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_mlflow_db, db)
    return db


@pytest.fixture
def new_store(tmp_path):
    """Tracking overrides for a private MLflow store in tmp_path that does not exist yet: the first run
    makes it (and a run refused before it starts must leave nothing there)."""
    db = tmp_path / "mlruns" / "mlflow.db"
    return [f"tracking.uri=sqlite:///{db}", f"tracking.artifact_root={tmp_path / 'mlruns' / 'artifacts'}"]


@pytest.fixture
def store(new_store, empty_mlflow_db):
    """Tracking overrides for a private MLflow store in tmp_path, made before the test (empty_mlflow_db)."""
    mlflow_db_at(Path(new_store[0].split("sqlite:///", 1)[1]), empty_mlflow_db)
    return new_store


@pytest.fixture(autouse=True)
def _reset_mlflow():
    yield
    try:
        import mlflow

        while mlflow.active_run():
            mlflow.end_run()
    except ImportError:
        pass


@pytest.fixture
def sweep_main(capsys):
    """`python -m src.sweep ARGS` in the test's process, as `sweep_main(*ARGS)`: its exit status and what it
    printed, as a finished process's (subprocess.CompletedProcess). A one-worker sweep trains in the process
    that runs it, so a test whose sweep is neither killed nor interrupted needs no process of its own, and
    saves the start of one that imports TensorFlow, MLflow and Optuna (about 7 s of CPU). The environment
    is put back afterwards (the sweep sets defaults in it)."""
    import subprocess

    def run(*argv):
        from src.sweep.__main__ import main

        env = dict(os.environ)
        capsys.readouterr()
        try:
            code = main(list(argv))
        finally:
            os.environ.clear()
            os.environ.update(env)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["src.sweep", *argv], code, out.out, out.err)

    return run


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server on loopback: DIL_TEST_PG_URL (a URL with {db}, started by .ci/run), else a
    throwaway one started here. Never skipped: a missing server is an error."""
    url = os.environ.get("DIL_TEST_PG_URL")
    if url:
        yield url
        return
    import secrets

    from src.tools.services import postgres

    with postgres(password="pw-" + secrets.token_hex(4)) as started:
        yield started


@pytest.fixture
def pg_db(pg_server, request):
    """A fresh database on the test server; returns its URL."""
    import re
    import secrets

    import psycopg

    name = "t_" + re.sub(r"\W", "_", request.node.name)[:40].lower() + "_" + secrets.token_hex(3)
    admin = pg_server.format(db="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_server.format(db=name)


def session_commands(sid: int) -> list[str]:
    """The command lines of the processes in session `sid` (a server started with start_new_session)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # the fields after the command name: state, ppid, pgrp, session
                out.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, IndexError, ValueError):  # a process that ended while being read
            continue
    return out


def job_runner_processes(sid: int) -> list[str]:
    """The processes of MLflow's job runner in a server's session (none: src/tools/server.py, environment)."""
    return [c for c in session_commands(sid) if "huey" in c or "server.jobs" in c]


# TensorFlow's and XLA's native start-up lines, which the entry points keep off the terminal (src/run/runtime.py)
NATIVE = ("absl::InitializeLog", "I0000", "port.cc", "cudart_stub", "oneDNN")


def native_lines(text: str) -> list[str]:
    """The markers of native start-up lines found in a process's output."""
    return [m for m in NATIVE if m in text]
