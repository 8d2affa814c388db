"""The MLflow UI on the project's store, and where the latest sweep is.

    python -m src.tools.ui [--port 5000] [--uri URI] [--artifact-root DIR]     (make ui)
    python -m src.tools.ui --uri http://TRACKHOST:5000     a tracking server: checks the credentials, links
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from src.config.paths import resolve
from src.redact import redact
from src.run.logger import (
    ML_VIEW,
    AccessError,
    check_access,
    default_artifact_root,
    is_server,
    resolve_uri,
    ui_base,
    ui_url,
)
from src.tools.server import environment


def latest_sweep(uri: str) -> tuple[str, str, str] | None:
    """(experiment id, run id, study) of the most recently started sweep parent run in a store, or None."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    if not exps:
        return None
    runs = client.search_runs(exps, filter_string="tags.sweep_role = 'parent'", order_by=["attributes.start_time DESC"],
                              max_results=1)
    if not runs:
        return None
    r = runs[0]
    return r.info.experiment_id, r.info.run_id, r.data.tags.get("study", "")


def server_ui(uri: str) -> int:
    """A tracking server is its own UI: checks this process's credentials there and says where the latest
    sweep is (the browser asks for the same user and password)."""
    try:
        check_access(uri)
    except AccessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    base = ui_base(uri)
    print(f"MLflow UI on {redact(base)}/#/experiments?{ML_VIEW}  (the tracking server; the browser asks for your "
          f"user and password)", flush=True)
    latest = latest_sweep(uri)
    if latest:
        exp, run, study = latest
        print(f"latest sweep ({study}): {redact(ui_url(exp, run, base))}", flush=True)
    return 0


def serve_ui(port: int = 5000, uri: str | None = None, artifact_root: str | None = None) -> int:
    """Runs `mlflow server` on the project's store, bound to 127.0.0.1; says where the latest sweep is.
    A tracking server's address is not served again: `server_ui` points at it."""
    uri = resolve_uri(uri)
    if is_server(uri):
        return server_ui(uri)
    root = Path(resolve(artifact_root)) if artifact_root else default_artifact_root()
    root.mkdir(parents=True, exist_ok=True)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
           "--default-artifact-root", root.as_uri(), "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    print(f"MLflow UI on {base}/#/experiments?{ML_VIEW}  (store {redact(uri)}, artifacts {root}); Ctrl-C stops it",
          flush=True)
    latest = latest_sweep(uri) if not uri.startswith("sqlite:///") or Path(uri[len("sqlite:///"):]).exists() else None
    if latest:
        exp, run, study = latest
        print(f"latest sweep ({study}): {ui_url(exp, run, base)}", flush=True)
    return subprocess.call(cmd, env=environment(MLFLOW_HOST="127.0.0.1"))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m src.tools.ui", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--uri", default=None,
                   help="backend store (default: the project's SQLite store), or a tracking server's address")
    p.add_argument("--artifact-root", default=None)
    a = p.parse_args(argv)
    return serve_ui(a.port, a.uri, a.artifact_root)


if __name__ == "__main__":
    sys.exit(main())
