"""Every server the project or its tests start listens on 127.0.0.1 alone, unless the user names a host: the
listening sockets of each server's processes, read with `ss`. And the protected tracking server's verb
(src/tools/server.py) refuses to start without an admin password it can use, before anything starts."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from src.config.paths import ROOT
from src.tools.services import free_port, start_mlflow_server, start_postgres, stop_postgres, stop_process

pytestmark = pytest.mark.slow


def descendants(root: int) -> set[int]:
    """The pid and those of all its descendants."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # a process that ended while being read
                continue
    found, grew = {root}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in found} - found
        found |= more
        grew = bool(more)
    return found


def listening(root: int) -> set[str]:
    """The local addresses (host:port) of the TCP and UDP sockets the process tree at `root` listens on."""
    pids = descendants(root)
    out = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True, check=True).stdout
    return {line.split()[4] for line in out.splitlines() if pids & {int(p) for p in re.findall(r"pid=(\d+)", line)}}


def listening_any() -> set[str]:
    """The local addresses of every listening TCP socket of the machine (this namespace)."""
    out = subprocess.run(["ss", "-Hlnt"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3] for line in out.splitlines()}


def wait_listening(root: int, port: int, proc=None, timeout=180) -> set[str]:
    deadline = time.time() + timeout
    while True:
        found = listening(root)
        if any(a.endswith(f":{port}") for a in found):
            return found
        assert time.time() < deadline and (proc is None or proc.poll() is None), (found, proc and proc.poll())
        time.sleep(0.5)


def only_loopback(addresses: set[str]) -> bool:
    return bool(addresses) and all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::1]") for a in addresses)


def start(args, **env):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env})


def test_the_protected_tracking_server_listens_on_loopback_unless_told(tmp_path):
    port = free_port()
    proc = start(["src.tools.server", "--backend-store-uri", f"sqlite:///{tmp_path}/m.db", "--artifacts",
                  str(tmp_path / "a"), "--dir", str(tmp_path / "srv"), "--port", str(port)],
                 MLFLOW_AUTH_ADMIN_PASSWORD="admin-password-for-test")
    try:
        found = wait_listening(proc.pid, port, proc)
        assert only_loopback(found), found
        proc.terminate()  # a service manager's stop, to the process it started: nothing is left listening
        proc.wait(timeout=60)
        deadline = time.time() + 30
        while any(a.endswith(f":{port}") for a in listening_any()):
            assert time.time() < deadline, "the server outlived its process"
            time.sleep(0.5)
    finally:
        stop_process(proc)
    ini = (tmp_path / "srv" / "basic_auth.ini").read_text()
    assert "admin-password-for-test" not in ini and "admin_password" not in ini


def test_the_test_servers_listen_on_loopback(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="dil-pg-"))
    port = free_port()
    try:
        start_postgres(folder, port)
        postmaster = int((folder / "data" / "postmaster.pid").read_text().split()[0])
        found = wait_listening(postmaster, port)
        assert only_loopback(found), found
    finally:
        stop_postgres(folder)
        shutil.rmtree(folder)  # 53 MB of cluster files in /tmp, left behind by every run before
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "admin-password-for-test")
        proc = start_mlflow_server(f"sqlite:///{tmp_path}/m.db", tmp_path / "a", port, workers=1, auth=tmp_path / "u")
    try:
        assert only_loopback(found := wait_listening(proc.pid, port, proc)), found
    finally:
        stop_process(proc)


@pytest.mark.parametrize("tool", ["ui", "dashboard"])
def test_make_ui_and_the_dashboard_listen_on_loopback(tmp_path, tool):
    port = free_port()
    args = {"ui": ["src.tools.ui", "--port", str(port), "--uri", f"sqlite:///{tmp_path}/m.db", "--artifact-root",
                   str(tmp_path / "a")],
            "dashboard": ["src.tools.dashboard", f"journal:{tmp_path / 'j'}", "--port", str(port)]}[tool]
    if tool == "dashboard":
        import optuna

        optuna.create_study(study_name="s", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "j"))))
    proc = start(args)
    try:
        assert only_loopback(found := wait_listening(proc.pid, port, proc)), found
    finally:
        stop_process(proc)


@pytest.mark.parametrize("password, says", [
    (None, "the server's first start creates its admin user: set MLFLOW_AUTH_ADMIN_PASSWORD"),
    ("short", "MLFLOW_AUTH_ADMIN_PASSWORD is 5 characters long; MLflow asks for at least 12"),
])
def test_the_server_refuses_to_start_without_a_usable_admin_password(tmp_path, password, says):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_AUTH_ADMIN_PASSWORD"}
    if password:
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    p = subprocess.run([sys.executable, "-m", "src.tools.server", "--backend-store-uri", f"sqlite:///{tmp_path}/m.db",
                        "--artifacts", str(tmp_path / "a"), "--dir", str(tmp_path / "srv"), "--port",
                        str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith(f"error: {says}"), p.stderr[-2000:]
    assert not (tmp_path / "m.db").exists()  # nothing started


def test_no_usage_report_is_sent_by_mlflow():
    """MLflow's telemetry, read when mlflow is first imported, is off in every process of the project
    (src/run/logger.py) outside CI too."""
    ci = ("CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    env = {k: v for k, v in os.environ.items() if k not in ci}
    code = "import src.run.logger, mlflow.telemetry as t; print(t.get_telemetry_client())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None", out.stdout
