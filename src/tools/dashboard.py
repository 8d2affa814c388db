"""Optuna's own dashboard on a sweep's study, read-only (make dashboard).

    python -m src.tools.dashboard                                   the local journal (mlruns/optuna.journal)
    python -m src.tools.dashboard postgresql://lab@DBHOST/optuna    a shared study database
    python -m src.tools.dashboard --port 8081 STORAGE

The dashboard can rename and delete studies, tell trials and write notes; here every write to the
storage is refused, so looking at a running sweep can never change it.
"""

from __future__ import annotations

import argparse
import sys

from optuna.storages import BaseStorage


def _refuse(name):
    def method(self, *args, **kwargs):
        raise PermissionError(f"the dashboard is read-only: {name} is refused")

    method.__name__ = name
    return method


def _delegate(name):
    def method(self, *args, **kwargs):
        return getattr(self._inner, name)(*args, **kwargs)

    method.__name__ = name
    return method


def _is_write(name: str) -> bool:
    return name.startswith(("create_", "delete_", "set_"))


# every storage method Optuna declares: reads go to the wrapped storage, writes are refused
ReadOnlyStorage = type("ReadOnlyStorage", (BaseStorage,), {
    "__doc__": "An Optuna storage that reads through to another and refuses every write.",
    "__init__": lambda self, inner: setattr(self, "_inner", inner),
    **{name: (_refuse(name) if _is_write(name) else _delegate(name)) for name in BaseStorage.__abstractmethods__},
    "check_trial_is_updatable": _delegate("check_trial_is_updatable"),
})


def main(argv=None) -> int:
    from src.redact import redact
    from src.sweep.study import open_storage, storage_url

    p = argparse.ArgumentParser(prog="python -m src.tools.dashboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("storage", nargs="?", default=None,
                   help="Optuna storage URL (default: the project's journal, mlruns/optuna.journal)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    a = p.parse_args(argv)
    url = storage_url(a.storage)
    if url.startswith("journal:"):
        from pathlib import Path

        if not Path(url[len("journal:"):]).is_file():
            print(f"error: no study journal at {url[len('journal:'):]}; run a sweep first (make sweep)",
                  file=sys.stderr)
            return 2
    from optuna_dashboard import run_server

    storage = ReadOnlyStorage(open_storage(url))
    print(f"Optuna dashboard (read-only) on http://{a.host}:{a.port}  (storage {redact(url)}); Ctrl-C stops it",
          flush=True)
    try:
        run_server(storage, host=a.host, port=a.port)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the server is stopped
    return 0


if __name__ == "__main__":
    sys.exit(main())
