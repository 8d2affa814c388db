"""The sweep's MLflow side: which stored parent run a sweep takes up again, and that a study has one."""

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


def test_a_worker_starting_while_the_creator_stores_its_parent_takes_that_parent(store, tmp_path):
    # three workers started together on a fast machine opened two parent runs for one study: one read the
    # study as having no parent, then (the creator having stored its parent and started a trial meanwhile)
    # as not fresh, and made its own. Here the creator acts right after this worker's first look at the
    # study's attributes, the moment at which it did
    import optuna

    from src.config import compose, to_plain
    from src.sweep.definition import load
    from src.sweep.tracking import open_parent

    d = load(["sweep=none", "sweep.name=race", *store])
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="race", storage=url)
    tracking_cfg = to_plain(compose(list(d.base)).tracking)
    created = []

    class AsTheWorkerSeesIt:
        """The same study; the creator opens its parent and starts a trial once this worker has read the
        attributes the first time."""

        @property
        def user_attrs(self):
            attrs = study.user_attrs
            if not created:
                created.append(open_parent(d, study, url, True, tracking_cfg, "race"))
                study.ask()
            return attrs

        def __getattr__(self, name):
            return getattr(study, name)

    parent = open_parent(d, AsTheWorkerSeesIt(), url, False, tracking_cfg, "race")
    assert parent == created[0]
    client = mlflow.MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string="tags.sweep_role = 'parent'")
    assert [r.info.run_id for r in runs] == [parent]
