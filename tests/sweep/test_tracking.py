"""The sweep's MLflow side: which stored parent run a sweep takes up again."""

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from src.sweep.tracking import _live_run
from src.tools.services import free_port


def test_a_missing_or_deleted_run_is_gone_and_a_live_one_is_returned(store):
    mlflow.set_tracking_uri(store[0].split("=", 1)[1])
    client = mlflow.MlflowClient()
    exp = client.create_experiment("parents")
    live, deleted = (client.create_run(exp).info.run_id for _ in range(2))
    client.delete_run(deleted)
    assert _live_run(client, live).info.run_id == live
    assert _live_run(client, deleted) is None
    assert _live_run(client, "0" * 32) is None  # a reset store: no such run


def test_a_server_that_cannot_be_reached_is_an_error_not_a_missing_run(monkeypatch):
    # read as "gone", it made a sweep open a second parent run and leave the first one RUNNING
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    client = mlflow.MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(MlflowException):
        _live_run(client, "0" * 32)
