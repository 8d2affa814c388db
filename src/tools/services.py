"""Local PostgreSQL and MLflow tracking servers on loopback, for the scale-out tests and benchmarks.

    python -m src.tools.services postgres --dir DIR [--port 55432] [--password PW]   start, print the URL
    python -m src.tools.services postgres --dir DIR --stop

Real servers, not stand-ins: PostgreSQL from the machine's packages (initdb and
pg_ctl run as the `postgres` user when this runs as root), `mlflow server` from
the project's environment.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

USER = "lab"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    """The folder of PostgreSQL's server binaries (initdb, pg_ctl)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")


def _as_postgres(cmd: list[str], **kw):
    """Runs a server command as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (openssl), readable by the server alone: TLS as
    the scale-out recipe asks of its database (sslmode=require), on a throwaway server."""
    crt, key = folder / "server.crt", folder / "server.key"
    if not crt.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7", "-subj",
                        "/CN=127.0.0.1", "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
        key.chmod(0o600)
        if os.geteuid() == 0:
            for f in (crt, key):
                shutil.chown(f, "postgres")
    return crt, key


def start_postgres(folder: Path, port: int, password: str | None = None, ssl: bool = False) -> str:
    """initdb + start on 127.0.0.1:port (with TLS if `ssl`); databases optuna and mlflow; returns a URL template
    with {db}."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    b = pg_bin()
    auth = ["--auth-local=trust", "--auth-host=" + ("scram-sha-256" if password else "trust")]
    if not data.exists():
        _as_postgres([str(b / "initdb"), "-D", str(data), "-U", USER, *auth, "--no-sync"])
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    if ssl:
        crt, key = certificate(folder)
        opts += f" -c ssl=on -c ssl_cert_file={crt} -c ssl_key_file={key}"
    _as_postgres([str(b / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "server.log"), "-w", "start"])
    psql = [str(b / "psql"), "-h", str(folder), "-p", str(port), "-U", USER, "-d", "postgres", "-q", "-c"]
    for db in ("optuna", "mlflow"):
        with contextlib.suppress(subprocess.CalledProcessError):
            _as_postgres([*psql, f"CREATE DATABASE {db}"])
    if password:
        _as_postgres([*psql, f"ALTER USER {USER} PASSWORD '{password}'"])
    cred = f"{USER}:{password}" if password else USER
    return f"postgresql://{cred}@127.0.0.1:{port}/{{db}}"


def stop_postgres(folder: Path) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        _as_postgres([str(pg_bin() / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"])


@contextlib.contextmanager
def postgres(password: str | None = None, ssl: bool = False):
    """A throwaway PostgreSQL server; yields a URL template with {db} (optuna, mlflow)."""
    folder = Path(tempfile.mkdtemp(prefix="dil-pg-"))
    try:
        yield start_postgres(folder, free_port(), password, ssl)
    finally:
        stop_postgres(folder)
        shutil.rmtree(folder, ignore_errors=True)


def start_mlflow_server(backend_uri: str, artifacts: Path, port: int, log: Path | None = None,
                        workers: int = 2, auth: Path | None = None) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port serving artifacts from `artifacts`, with `workers` server
    processes; waits until it answers. One worker serves a few sweep workers' requests (it answers
    them on threads) and starts in one process instead of a supervisor and two. `auth`: the folder of
    a basic-auth server's users (src/tools/server.py; the admin password from MLFLOW_AUTH_ADMIN_PASSWORD)."""
    from src.tools import server

    artifacts.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL
    env = server.environment(MLFLOW_HOST="127.0.0.1")
    if auth is not None:
        env.update(server.auth_environment(server.auth_config(auth, None)))
    cmd = server.command(backend_uri, artifacts, "127.0.0.1", port, workers, auth=auth is not None,
                         hosts=server.allowed_hosts("127.0.0.1", port) if auth is not None else None)
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.time() + 180
    while True:
        try:  # the health check needs no credentials
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return proc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"mlflow server on port {port} did not start") from None
            time.sleep(0.5)


def stop_process(proc: subprocess.Popen) -> None:
    """Stops a server started in its own session, with its children."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m src.tools.services", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("service", choices=["postgres"])
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--port", type=int, default=55432)
    p.add_argument("--password")
    p.add_argument("--stop", action="store_true")
    a = p.parse_args(argv)
    if a.stop:
        stop_postgres(a.dir)
        return 0
    print(start_postgres(a.dir, a.port, a.password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
