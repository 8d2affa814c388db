"""The scale-out recipe of docs/scale-out.md, run as written, with loopback addresses: a PostgreSQL server with
TLS (sslmode=require), the tracking server with basic authentication started by the recipe's command, a user
added by the recipe's command, a Ray head and a second node with token authentication, the recipe's Ray sweep
and its per-machine sweep. Substituted: the hosts (127.0.0.1), the ports (free ones), the artifact folder
and the server's own files (this test's folder), `sweep=default` (a tiny grid, for time), `sweep.workers=N`
(1), each Ray node given one CPU. Runs in the Ray tests' loopback-only network namespace, with its own home
(so its own Ray token)."""

import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from src.config.paths import ROOT
from src.tools.services import free_port, postgres, stop_process
from tests.sweep.test_sweep import GRID, TINY
from tests.test_docs import code_lines

pytestmark = pytest.mark.slow

PAGE = ROOT / "docs" / "scale-out.md"
BIN = Path(sys.executable).parent


def recipe() -> dict[str, str]:
    """The recipe's commands, by what they do."""
    lines = [" ".join(ln.split()) for ln in code_lines(PAGE)]
    find = {"server": r"^\.venv/bin/python -m src\.tools\.server --", "user": r"src\.tools\.server user ",
            "token": r"ray get-auth-token", "head": r"ray start --head", "node": r"ray start --address",
            "ray_sweep": r"src\.sweep .*sweep\.launcher=ray", "sweep": r"src\.sweep .*sweep\.workers=N"}
    out = {}
    for what, pattern in find.items():
        [out[what]] = [ln for ln in lines if re.search(pattern, ln)]
    assert "0.0.0.0" not in " ".join(out.values())
    return out


def loopback(cmd: str, ports: dict, tmp: Path) -> str:
    """The command with this machine's loopback addresses, free ports and this test's folders."""
    cmd = cmd.replace("DBHOST", f"127.0.0.1:{ports['db']}").replace("TRACKHOST:5000", f"127.0.0.1:{ports['track']}")
    cmd = cmd.replace("--port 5000", f"--port {ports['track']}").replace("TRACKHOST", "127.0.0.1")
    cmd = cmd.replace("HEADHOST:6379", f"127.0.0.1:{ports['ray']}").replace("--port 6379", f"--port {ports['ray']}")
    cmd = cmd.replace("HEADHOST", "127.0.0.1").replace("/srv/mlflow-artifacts", str(tmp / "artifacts"))
    cmd = cmd.replace(".venv/bin/python", sys.executable).replace(".venv/bin/ray", str(BIN / "ray"))
    if "src.tools.server --" in cmd:
        cmd += f" --dir {tmp / 'server'}"
    if "src.sweep" in cmd:
        cmd = cmd.replace("sweep=default", shlex.join(["sweep=tiny", *TINY[1:], *GRID]))
        cmd = cmd.replace("workers=N", "workers=1")
    return cmd


def run(cmd, env, **kw):
    p = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{cmd}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def test_the_scale_out_recipe_runs_as_written(tmp_path):
    steps = recipe()
    db_pw, admin_pw, user_pw = (f"{w}-{secrets.token_hex(8)}" for w in ("db", "admin", "alice"))
    (tmp_path / "home").mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "MLFLOW_TRACKING_", "PG"))},
           "HOME": str(tmp_path / "home"), "PGPASSWORD": db_pw, "RAY_USAGE_STATS_ENABLED": "0"}
    with postgres(password=db_pw, ssl=True) as url:
        ports = {"db": urlsplit(url.format(db="x")).port, "track": free_port(), "ray": free_port()}
        cmd = {k: loopback(v, ports, tmp_path) for k, v in steps.items()}
        server = subprocess.Popen(["bash", "-c", f"exec {cmd['server']}"], cwd=ROOT, start_new_session=True,
                                  env={**env, "MLFLOW_AUTH_ADMIN_PASSWORD": admin_pw},
                                  stdout=open(tmp_path / "server.log", "w"), stderr=subprocess.STDOUT)
        try:
            health(ports["track"], server)
            run(cmd["user"], {**env, "MLFLOW_TRACKING_PASSWORD": admin_pw}, input=f"{user_pw}\n{user_pw}\n",
                start_new_session=True, timeout=120)  # no terminal: the passwords are read from stdin
            run(cmd["token"], env, timeout=120)
            assert (tmp_path / "home" / ".ray" / "auth_token").is_file()
            try:
                run(cmd["head"] + " --num-cpus 1", env, timeout=300)
                run(cmd["node"] + " --num-cpus 1", env, timeout=300)
                user = {**env, "MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": user_pw}
                ray_out = run(cmd["ray_sweep"], user, timeout=900).stdout
                hand_out = run(cmd["sweep"] + " sweep.name=by-hand", user, timeout=900).stdout
            finally:
                subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)
            check(url.format(db="optuna"), ports["track"], admin_pw, ray_out + hand_out, user_pw)
        finally:
            stop_process(server)


def health(port, proc, timeout=180):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return
        except OSError:
            assert proc.poll() is None and time.time() < deadline, "the recipe's tracking server did not start"
            time.sleep(0.5)


def check(storage_url, track_port, admin_pw, out, user_pw):
    """Both sweeps finished every cell, over TLS, on the Ray cluster's two nodes; the runs are on the server."""
    assert "Ray workers:" in out and user_pw not in out
    for name in ("tiny", "by-hand"):
        study = optuna.load_study(study_name=name, storage=storage_url + "?sslmode=require")
        assert sum(t.state == TrialState.COMPLETE for t in study.get_trials()) == 4, name
    os.environ.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=admin_pw)
    try:
        mlflow.set_tracking_uri(f"http://127.0.0.1:{track_port}")
        client = mlflow.MlflowClient()
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=100)
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k)
    cells = [r for r in runs if r.data.tags.get("trial") is not None]
    assert len(cells) == 8 and all(r.info.status == "FINISHED" for r in cells)
    ray_nodes = {r.data.tags["node"] for r in cells} - {socket.gethostname()}  # the per-machine sweep's: the host
    assert len(ray_nodes) == 2  # the Ray sweep's two nodes
