import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from src.config import compose, flatten
from src.run.logger import resolve_uri
from src.run.training import train_run
from src.tools.services import free_port, start_mlflow_server, stop_process
from tests.conftest import TINY


def test_relative_store_paths_are_absolute_from_the_root(monkeypatch, tmp_path):
    from src.config.paths import ROOT

    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None) == f"sqlite:///{ROOT}/mlruns/mlflow.db"
    assert resolve_uri("sqlite:///mlruns/x.db") == f"sqlite:///{ROOT}/mlruns/x.db"
    assert resolve_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": [1, 2], "d": None}


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


@pytest.mark.slow
def test_mlflow_server_serves_the_run_over_rest(store, tmp_path):
    overrides = TINY + ["model=din", "train.epochs=2"] + store
    result = train_run(compose(overrides), overrides, log=lambda m: None)
    port = free_port()
    uri = store[0].split("=", 1)[1]
    root = store[1].split("=", 1)[1]
    # the project's own server start (as the scale-out tests and the bench use it): the run's artifacts
    # were logged to `root` directly, and the server reads them from there by the run's artifact location
    server = start_mlflow_server(uri, Path(root), port, tmp_path / "server.log", workers=1)
    base = f"http://127.0.0.1:{port}"
    try:
        run = json.loads(get(f"{base}/api/2.0/mlflow/runs/get?run_id={result.run_id}"))["run"]
        assert run["info"]["status"] == "FINISHED"
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert metrics["test_auc"] == pytest.approx(result.test["auc"])
        hist = json.loads(get(f"{base}/api/2.0/mlflow/metrics/get-history?run_id={result.run_id}"
                              f"&metric_key=valid_auc"))["metrics"]
        assert [h["step"] for h in hist] == [1, 2]
        listing = json.loads(get(f"{base}/api/2.0/mlflow/artifacts/list?run_id={result.run_id}&path=attention"))
        paths = {f["path"] for f in listing["files"]}
        assert "attention/epoch_002.png" in paths
        q = urllib.parse.urlencode({"path": "attention/epoch_002.png", "run_uuid": result.run_id})
        png = get(f"{base}/get-artifact?{q}")
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        stop_process(server)


def test_a_tag_another_worker_adds_at_the_same_moment_is_no_error(store):
    # two sweep workers starting their first runs together both found the experiment's description missing
    # and both inserted it; the store refused the second insert (a unique key) and that worker's trial
    # failed. Here another process's insert lands just before this one's, the moment at which it did
    import contextlib
    import sqlite3

    import mlflow
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from src.run.logger import experiment_id

    uri = store[0].split("=", 1)[1]
    mlflow.set_tracking_uri(uri)
    exp = experiment_id({}, "race")  # as the sweep's parent run makes it: no description yet
    other = []

    def the_other_worker_first(conn, cursor, statement, parameters, context, executemany):
        if not other and statement.lstrip().startswith("INSERT INTO experiment_tags") and \
                "mlflow.note.content" in str(parameters):
            other.append(statement)
            with contextlib.closing(sqlite3.connect(uri.split("sqlite:///", 1)[1])) as db, db:
                db.execute("INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?)",
                           ("mlflow.note.content", "the other worker's", int(exp)))

    event.listen(Engine, "before_cursor_execute", the_other_worker_first)
    try:
        assert experiment_id({}, "race", "this worker's") == exp
    finally:
        event.remove(Engine, "before_cursor_execute", the_other_worker_first)
    assert other  # the two inserts met
    assert mlflow.MlflowClient().get_experiment(exp).tags["mlflow.note.content"] == "the other worker's"


def test_a_run_whose_closing_tags_the_store_refuses_still_leaves_the_process(store):
    """A worker process trains cell after cell: a run whose closing tags fail (here a key MLflow refuses, in
    the ray matrix a locked store) must not stay this process's active run, or every later run would start
    nested in it and fail."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from src.run import logger

    mlflow.set_tracking_uri(store[0].split("=", 1)[1])
    exp = logger.experiment_id({}, "closing")
    first = mlflow.start_run(experiment_id=exp)
    with pytest.raises(MlflowException):
        logger._end("FAILED", {"not a key!": "x"})  # the store refuses the closing tags
    assert mlflow.active_run() is None
    assert mlflow.get_run(first.info.run_id).info.status == "FAILED"
    with logger.tracked_run(exp, "next") as run:  # the next cell starts clean
        pass
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"
