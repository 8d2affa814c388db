import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from src.config import compose, flatten
from src.run.logger import resolve_uri
from src.run.training import train_run
from src.tools.services import mlflow_server_env
from tests.conftest import TINY


def test_relative_store_paths_are_absolute_from_the_root(monkeypatch, tmp_path):
    from src.config.paths import ROOT

    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None) == f"sqlite:///{ROOT}/mlruns/mlflow.db"
    assert resolve_uri("sqlite:///mlruns/x.db") == f"sqlite:///{ROOT}/mlruns/x.db"
    assert resolve_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": [1, 2], "d": None}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--default-artifact-root", root,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=mlflow_server_env())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                get(f"{base}/health")
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError(f"mlflow server did not start: {server.stderr.read()[-2000:]}") from None
                time.sleep(1)
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
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
