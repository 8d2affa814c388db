"""The shared MLflow tracking server, protected: MLflow's basic-auth app, the hosts it answers to named.

    python -m src.tools.server --backend-store-uri URI --artifacts DIR [--host 127.0.0.1] [--port 5000]
                               [--allowed-hosts NAME,...] [--auth-db URI] [--dir mlruns/server]
    python -m src.tools.server user NAME       adds a user (as the admin; its password is asked for)
    make tracking-server ARGS="..."

Every request needs a user and password (HTTP basic auth); clients send them from
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD. The admin user is created on the first start
with the password in MLFLOW_AUTH_ADMIN_PASSWORD (at least 12 characters; MLflow ships none): it is
read from the environment only, never from the command line or a file. The server binds 127.0.0.1
unless --host names another address, and answers only requests addressed (Host header) to the names
in --allowed-hosts (default: the --host address, localhost and 127.0.0.1), against DNS rebinding.
The users and their permissions live in --auth-db (default: a SQLite file in --dir).
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from pathlib import Path

from src.config.paths import resolve
from src.redact import redact

ADMIN = "admin"
PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
MIN_PASSWORD = 12  # MLflow's own minimum for a user's password


class ServerError(RuntimeError):
    """The server cannot be started as asked; the message says why and what to do."""


def environment(**extra) -> dict:
    """The environment of an `mlflow server` this project starts: without MLflow's job runner unless
    the caller's environment asks for it (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true). The runner (huey
    consumer processes beside the server) runs MLflow's GenAI jobs, scorers and trace roll-ups, which
    nothing of this project submits; it made each start longer and its processes kept polling."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true", **os.environ, **extra}


def allowed_hosts(host: str, port: int, names: list[str] | None = None) -> list[str]:
    """The Host headers the server answers: each name alone and with the port."""
    names = list(dict.fromkeys([*(names or [host]), "localhost", "127.0.0.1"]))
    return [h for n in names for h in (n, f"{n}:{port}")]


def auth_environment(ini: Path) -> dict:
    """What the basic-auth app reads from the environment beside its settings: their path, and the key
    that signs its forms (CSRF), random for each start unless MLFLOW_FLASK_SERVER_SECRET_KEY is set (the
    same key for every server process; several servers behind one address need one key set for all)."""
    return {"MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_hex(32)}


def auth_config(folder: Path, auth_db: str | None, default_permission: str = "READ") -> Path:
    """Writes the basic-auth app's settings (no password: that comes from the environment); its path.

    The admin is `admin`; users other than the admin read every experiment (`default_permission`) and
    edit only their own, unless the admin grants more."""
    folder.mkdir(parents=True, exist_ok=True)
    db = auth_db or f"sqlite:///{(folder / 'basic_auth.db').resolve()}"
    path = folder / "basic_auth.ini"
    path.write_text("[mlflow]\n"
                    f"default_permission = {default_permission}\n"
                    f"database_uri = {db}\n"
                    f"admin_username = {ADMIN}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    return path


def check_admin_password(folder: Path, auth_db: str | None) -> None:
    """Refuses, before the server starts, a first start without an admin password or with a short one.

    Raises:
        ServerError: says which variable to set.
    """
    pw = os.environ.get(PASSWORD_ENV)
    first = auth_db is None and not (folder / "basic_auth.db").exists()
    if pw is None and first:
        raise ServerError(f"the server's first start creates its admin user: set {PASSWORD_ENV} in the "
                          f"environment (at least {MIN_PASSWORD} characters), e.g. read -rs {PASSWORD_ENV}; "
                          f"export {PASSWORD_ENV}")
    if pw is not None and len(pw) < MIN_PASSWORD:
        raise ServerError(f"{PASSWORD_ENV} is {len(pw)} characters long; MLflow asks for at least {MIN_PASSWORD}")


def command(backend: str, artifacts: Path, host: str, port: int, workers: int = 2, auth: bool = True,
            hosts: list[str] | None = None) -> list[str]:
    """The `mlflow server` command line: artifacts served through the server, so that they are behind
    its authentication too."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--artifacts-destination",
           str(artifacts), "--serve-artifacts", "--host", host, "--port", str(port), "--workers", str(workers)]
    if auth:
        cmd += ["--app-name", "basic-auth"]
    if hosts:
        cmd += ["--allowed-hosts", ",".join(hosts)]
    return cmd


def serve(a: argparse.Namespace) -> int:
    """Starts the protected server in the foreground, in this process; Ctrl-C stops it."""
    folder = Path(resolve(a.dir))
    check_admin_password(folder, a.auth_db)
    ini = auth_config(folder, a.auth_db, a.default_permission)
    hosts = allowed_hosts(a.host, a.port, [h.strip() for h in a.allowed_hosts.split(",")] if a.allowed_hosts
                          else None)
    artifacts = Path(resolve(a.artifacts))
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = command(a.backend_store_uri, artifacts, a.host, a.port, a.workers, hosts=hosts)
    print(f"MLflow tracking server with basic authentication on http://{a.host}:{a.port} (store "
          f"{redact(a.backend_store_uri)}, artifacts {artifacts}, users in {redact(a.auth_db or str(folder))}); "
          f"answers Host {', '.join(hosts[::2])}; Ctrl-C stops it", flush=True)
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"  reachable from the network at {a.host}: every request needs a user and password "
              f"(docs/security.md)", flush=True)
    # the server replaces this process: Ctrl-C and a SIGTERM (a service manager's stop) reach it directly,
    # and no server is left behind a parent that was stopped
    os.execve(cmd[0], cmd, environment(**auth_environment(ini)))


def add_user(a: argparse.Namespace) -> int:
    """Adds a user as the admin (MLFLOW_TRACKING_USERNAME/PASSWORD); the new password is asked for, twice."""
    from src.run.logger import create_user

    pw = getpass.getpass(f"password for {a.name} (at least {MIN_PASSWORD} characters): ")
    if pw != getpass.getpass("again: "):
        print("error: the two passwords differ; no user was added", file=sys.stderr)
        return 2
    try:
        create_user(a.uri, a.name, pw)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"user {a.name} added on {a.uri}; it reads every experiment and edits its own")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["user"]:
        p = argparse.ArgumentParser(prog="python -m src.tools.server user", description=add_user.__doc__)
        p.add_argument("name")
        p.add_argument("--uri", default="http://127.0.0.1:5000", help="the server (default: %(default)s)")
        return add_user(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(prog="python -m src.tools.server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend-store-uri", required=True, help="runs, metrics and params (e.g. postgresql://...)")
    p.add_argument("--artifacts", required=True, help="where the server keeps artifacts (a folder)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--allowed-hosts", default=None, help="names clients use for this server, comma-separated")
    p.add_argument("--auth-db", default=None, help="users and permissions (default: DIR/basic_auth.db)")
    p.add_argument("--dir", default="mlruns/server", help="the server's own files (default: %(default)s)")
    p.add_argument("--default-permission", default="READ", choices=["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"])
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    try:
        return serve(a)
    except ServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
