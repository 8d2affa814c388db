"""The tracking server with MLflow's basic authentication, on loopback (src/tools/server.py): a request without
credentials can neither read nor write; every entry point refuses, in one line and before anything exists,
credentials the server does not accept; a sweep with a user's credentials runs, and the user's password is
in no log, param, tag, artifact or printed URL. Real servers, a real sweep."""

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import mlflow
import pytest

from src.config.paths import ROOT
from src.tools.services import free_port, start_mlflow_server, stop_process
from tests.sweep.test_sweep import DIN, TINY

pytestmark = pytest.mark.slow

ADMIN_PW = "admin-" + secrets.token_hex(8)
USER, USER_PW = "alice", "alice-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """A basic-auth tracking server on 127.0.0.1 (SQLite store) with an admin and the user alice."""
    from src.run.logger import create_user

    tmp = tmp_path_factory.mktemp("auth")
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", ADMIN_PW)
        proc = start_mlflow_server(f"sqlite:///{tmp}/mlflow.db", tmp / "artifacts", port, tmp / "server.log",
                                   workers=1, auth=tmp / "users")
    uri = f"http://127.0.0.1:{port}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PW)
            create_user(uri, USER, USER_PW)
        yield uri, tmp
    finally:
        stop_process(proc)


def request(uri, path, body=None, auth=None):
    """(HTTP status, body) of a GET (or a POST of `body`) with basic auth `(user, password)` if given."""
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(uri + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def as_user(monkeypatch, user=USER, password=USER_PW):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_a_request_without_credentials_can_neither_read_nor_write(auth_server):
    uri, _ = auth_server
    for auth in (None, (USER, "not-" + USER_PW)):
        assert request(uri, "/api/2.0/mlflow/experiments/search?max_results=10", auth=auth)[0] == 401
        assert request(uri, "/api/2.0/mlflow/experiments/create", {"name": "intruder"}, auth=auth)[0] == 401
        assert request(uri, "/api/2.0/mlflow/runs/create", {"experiment_id": "0"}, auth=auth)[0] == 401
        assert request(uri, "/api/2.0/mlflow-artifacts/artifacts", auth=auth)[0] == 401
        assert request(uri, "/", auth=auth)[0] == 401  # the UI too
    status, body = request(uri, "/api/2.0/mlflow/experiments/search?max_results=10", auth=("admin", ADMIN_PW))
    assert status == 200 and "intruder" not in body
    status, body = request(uri, "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"]}, auth=("admin", ADMIN_PW))
    assert status == 200 and json.loads(body).get("runs", []) == []  # nothing was created
    # a request addressed to a name the server was not given is refused (DNS rebinding)
    req = urllib.request.Request(uri + "/api/2.0/mlflow/experiments/search?max_results=1",
                                 headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code in (400, 403)


@pytest.mark.parametrize("who, says", [
    (None, "asks for a user and password: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
    ((USER, "wrong-password-1234"), f"refused the credentials of user {USER}"),
    (("mallory", "mallory-password-1"), "refused the credentials of user mallory"),
])
def test_a_sweep_without_accepted_credentials_is_refused_before_its_study(auth_server, tmp_path, sweep_main,
                                                                         monkeypatch, who, says):
    uri, _ = auth_server
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    if who:
        as_user(monkeypatch, *who)
    out = sweep_main(*TINY, *DIN, f"sweep.storage=journal:{tmp_path}/j", "tracking=server", f"tracking.uri={uri}")
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip() == f"error: the tracking server {uri} {says}; nothing was started", out.stderr
    assert not (tmp_path / "j").exists() and "trial 0" not in out.stdout


@pytest.mark.parametrize("entry", ["src.train", "src.reproduce", "src.tools.ui"])
def test_every_entry_point_refuses_in_one_line(auth_server, entry):
    uri, _ = auth_server
    args = {"src.train": [f"tracking.uri={uri}", "model=din"],
            "src.reproduce": ["0123456789abcdef", f"tracking.uri={uri}"],
            "src.tools.ui": ["--uri", uri]}[entry]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(MLFLOW_TRACKING_USERNAME=USER, MLFLOW_TRACKING_PASSWORD="wrong-password-1234")
    p = subprocess.run([sys.executable, "-m", entry, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stderr.strip() == f"error: the tracking server {uri} refused the credentials of user {USER}; " \
                               f"nothing was started", p.stderr[-3000:]


def test_a_sweep_with_a_users_credentials_runs_and_writes_the_password_nowhere(auth_server, tmp_path, sweep_main,
                                                                               monkeypatch):
    uri, server_dir = auth_server
    as_user(monkeypatch)
    journal = tmp_path / "optuna.journal"
    out = sweep_main(*TINY, *DIN, "sweep.trials=2", "train.epochs=1", "sweep.pruner=none",
                     f"sweep.storage=journal:{journal}", "tracking=server", f"tracking.uri={uri}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=100)
    cells = [r for r in runs if r.data.tags.get("trial") is not None]
    assert len(cells) == 2 and all(r.info.status == "FINISHED" for r in cells)
    # the password: not in the terminal, params, tags, any text artifact, the study, the server's files
    texts = [out.stdout, out.stderr, journal.read_text()]
    for r in runs:
        texts += [str(r.data.params), str(r.data.tags)]
        for a in all_artifacts(client, r.info.run_id):
            if a.endswith((".yaml", ".json", ".txt", ".md", ".csv", ".html")):
                texts.append(mlflow.artifacts.load_text(f"runs:/{r.info.run_id}/{a}"))
    texts += [p.read_bytes().decode("latin-1") for p in Path(server_dir).rglob("*") if p.is_file()]
    assert len(texts) > 10
    assert not [t[:200] for t in texts if USER_PW in t or ADMIN_PW in t]


def all_artifacts(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        out += all_artifacts(client, run_id, f.path) if f.is_dir else [f.path]
    return out
