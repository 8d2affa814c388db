"""The run's one MLflow seam: where the store is, and everything a run logs.

The training loop (src/run/training.py) imports no MLflow: it opens a `RunLogger` and hands
it the run's config, data set, per-epoch rows, attention arrays, final metrics and model.
The sweep's own MLflow calls (parent run, tags, reports) are in src/sweep/tracking.py, the
UI server in src/tools/ui.py.

Default store: SQLite at <project>/mlruns/mlflow.db with artifacts under
<project>/mlruns/artifacts, absolute paths whatever the working directory.
`tracking=server` (or `tracking.uri=http://...`) points at a tracking server.

    python -m src.tools.ui [--port 5000]     # the MLflow UI on the project's store (make ui)
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf

from src.config import flatten
from src.config.paths import MLRUNS_DIR, ROOT, resolve
from src.redact import redact
from src.run import faults, interrupts

# MLflow's telemetry off unless the user turns it on: it is read when mlflow is first imported, and the
# project's modules that import mlflow (this one, src/sweep/tracking.py, src/tools/ui.py) import this one first
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# nor its "Downloading artifacts" progress bars (read at each download) in what src.reproduce and src.tools.answer
# print: they fetch one small file each
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

LIBRARIES = ("tensorflow", "jax", "jaxlib", "keras", "mlflow", "optuna", "hydra-core", "omegaconf", "numpy",
             "pandas")
def default_uri() -> str:
    return f"sqlite:///{MLRUNS_DIR / 'mlflow.db'}"


def default_artifact_root() -> Path:
    return MLRUNS_DIR / "artifacts"


def resolve_uri(uri: str | None) -> str:
    """The tracking URI with relative sqlite/file paths made absolute from the project root."""
    if not uri:
        return default_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{resolve(uri[len('sqlite:///'):])}"
    if "://" not in uri:
        return f"sqlite:///{resolve(uri)}" if uri.endswith(".db") else resolve(uri).as_uri()
    return uri


def setup(tracking_cfg) -> str:
    """Points MLflow at the configured store; returns the URI (creating mlruns/ for the default).

    Against a server, requests give up after a few retries, so that an unreachable server fails the run
    with a clear error rather than hang; the MLFLOW_HTTP_REQUEST_* variables override.
    """
    import mlflow

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

    uri = resolve_uri(tracking_cfg.get("uri"))
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    # "Creating initial MLflow database tables..." and the schema migration's lines: routine, not news
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    return uri


def outage(exc: BaseException) -> bool:
    """Whether an exception (or its cause) says the tracking server cannot be reached."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        text = str(exc)
        if name in ("ConnectionError", "MaxRetryError", "NewConnectionError", "ConnectTimeout", "ReadTimeout"):
            return True
        if "API request to" in text and ("Max retries exceeded" in text or "Connection refused" in text
                                         or "failed with exception" in text):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class AccessError(RuntimeError):
    """The tracking server refused this client, or cannot be reached; one line that says which."""


def check_access(uri: str | None) -> None:
    """One authenticated request to a tracking server (a search for one experiment), before anything is
    trained or created: the credentials (MLFLOW_TRACKING_USERNAME/PASSWORD, or MLFLOW_TRACKING_TOKEN)
    are refused, or the server cannot be reached, is then one line. A store on this disk passes.

    Raises:
        AccessError: says what is wrong with which server and user, and what to set.
    """
    if not is_server(uri):
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds, shown = get_default_host_creds(uri), redact(uri)
    try:
        r = http_request(creds, "/api/2.0/mlflow/experiments/search", "GET", params={"max_results": 1},
                         max_retries=0, timeout=20, raise_on_status=False)
    except Exception as e:  # requests' and urllib3's connection errors, under MLflow's wrapping
        if not outage(e):
            raise
        raise AccessError(f"the tracking server {shown} cannot be reached; nothing was "
                          f"started: check the address and that the server runs") from None
    if r.status_code == 401:
        if creds.username or creds.token:
            who = f"user {creds.username}" if creds.username else "the token in MLFLOW_TRACKING_TOKEN"
            raise AccessError(f"the tracking server {shown} refused the credentials of {who}; nothing was started")
        raise AccessError(f"the tracking server {shown} asks for a user and password: set "
                          f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD; nothing was started")
    if r.status_code == 403:
        raise AccessError(f"the tracking server {shown} refused user {creds.username} access to its "
                          f"experiments (HTTP 403); nothing was started")
    if r.status_code != 200:
        raise AccessError(f"the tracking server {shown} answered HTTP {r.status_code} to a search for "
                          f"experiments ({redact(r.text[:200])!r}); nothing was started")


def create_user(uri: str, name: str, password: str) -> None:
    """Adds a user to a basic-auth tracking server, as the admin whose credentials are in the environment.

    Raises:
        RuntimeError: the server refused (not the admin, a short password, a user that exists).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    check_access(uri)
    try:
        AuthServiceClient(uri).create_user(name, password)
    except MlflowException as e:
        raise RuntimeError(f"the server refused to add user {name}: {redact(e.message).splitlines()[0]}") from None


# MLflow 3's UI opens an experiment in its GenAI view unless told otherwise: the experiment tag says
# what kind it is, and the URL parameter opens the "Model training" view directly
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
ML_VIEW = "workflowType=machine_learning"
UI_BASE = "http://127.0.0.1:5000"


def is_server(uri: str | None) -> bool:
    """A tracking server's address (http or https), rather than a store on this machine's disk."""
    return str(uri or "").startswith(("http://", "https://"))


def ui_base(uri: str | None = None) -> str:
    """Where the UI for this store is: the tracking server itself, or `make ui`'s address."""
    return uri.rstrip("/") if is_server(uri) else UI_BASE


def ui_url(experiment: str, run_id: str | None = None, base: str = UI_BASE) -> str:
    """The UI page of a run (or of an experiment) in the Model training view."""
    page = f"#/experiments/{experiment}" + (f"/runs/{run_id}" if run_id else "")
    return f"{redact(base)}/{page}?{ML_VIEW}"


def experiment_id(tracking_cfg, default_name: str, description: str | None = None) -> str:
    """The experiment's id, creating it (tagged as model training, with an absolute artifact location
    for local stores, and `description` as its Markdown description); an existing experiment without
    the kind tag, or without a description, gets them."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    name = tracking_cfg.get("experiment") or default_name
    client = mlflow.MlflowClient()
    wanted = {**EXPERIMENT_KIND, **({MLFLOW_RUN_NOTE: description} if description else {})}
    exp = client.get_experiment_by_name(name)
    if exp is None:
        root = tracking_cfg.get("artifact_root")
        location = None
        if root or mlflow.get_tracking_uri().startswith("sqlite:"):
            location = (resolve(root) if root else default_artifact_root()).as_uri()
        try:
            return client.create_experiment(name, artifact_location=location, tags=wanted)
        except MlflowException:  # created meanwhile by another worker
            exp = client.get_experiment_by_name(name)

    def missing(k, v, tags):
        # a description someone wrote stays
        return not tags.get(k) if k == MLFLOW_RUN_NOTE else tags.get(k) != v

    for k, v in wanted.items():
        if not missing(k, v, exp.tags):
            continue
        try:
            client.set_experiment_tag(exp.experiment_id, k, v)
        except MlflowException:
            # two workers that find the same tag missing insert it at the same moment and the store refuses
            # the second (a unique key; MLflow reads, then inserts): the tag is there now, or the write is
            # tried once more, as an update this time, and an error that was not this one is raised again
            tags = client.get_experiment(exp.experiment_id).tags
            if missing(k, v, tags):
                client.set_experiment_tag(exp.experiment_id, k, v)
    return exp.experiment_id


def data_description(data) -> str:
    """An experiment's description of its data set: source, users, items, samples per split, protocol."""
    m, v = data.meta, data.vocab
    files = ", ".join(f"`{f}`" for f in m.get("files") or []) or "generated"
    protocol = json.dumps(m.get("protocol") or m.get("params") or {}, default=str)
    return "\n".join([
        f"## Data set `{data.name}`", "",
        f"- source: {m.get('source', data.name)} ({files})",
        f"- users {v.get('user', 2) - 2:,}, items {v.get('item', 2) - 2:,}, categories {v.get('cat', 2) - 2:,}"
        + (f", events {m['events']:,}" if m.get("events") else ""),
        f"- samples: train {data.size('train'):,}, valid {data.size('valid'):,}, test {data.size('test'):,}",
        f"- protocol: `{redact(protocol)}`",
        f"- histories of at most {data.max_len} steps; fingerprint `{m.get('fingerprint', '')}`",
    ])


def browse_hint(experiment: str, run_id: str, uri: str | None = None) -> str:
    """The line that says how to open a run in the UI."""
    uri = uri or default_uri()
    if is_server(uri):
        return f"open {ui_url(experiment, run_id, ui_base(uri))}"
    serve = "make ui" if uri == default_uri() else f"python -m src.tools.ui --uri '{redact(uri)}'"
    return f"browse: {serve}, then open {ui_url(experiment, run_id)}"


def git_info() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"git.commit": "unknown"}
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
        return {"git.commit": head.stdout.strip(), "git.dirty": str(dirty).lower()}
    except (OSError, subprocess.TimeoutExpired):
        return {"git.commit": "unknown"}


def versions() -> dict:
    out = {}
    for lib in LIBRARIES:
        try:
            out[f"version.{lib}"] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    out["version.python"] = sys.version.split()[0]
    return out


def log_params(params: dict) -> None:
    import mlflow

    items = [(k, redact(json.dumps(v) if isinstance(v, list | dict) else v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 90):
        mlflow.log_params(dict(items[i:i + 90]))


RERUN_HEADER = """# Resolved config of a run. Rerun it with Hydra:
#   python -m src.train --config-path <folder of this file> --config-name <file name without .yaml>
# or with python -m src.reproduce RUN_ID
defaults:
  - _self_
  - override hydra/job_logging: disabled
  - override hydra/hydra_logging: disabled
hydra:
  output_subdir: null
  run:
    dir: .
"""


def rerunnable_yaml(cfg) -> str:
    """A resolved config that `python -m src.train --config-path DIR --config-name NAME` runs as is."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    return redact(RERUN_HEADER + OmegaConf.to_yaml(OmegaConf.create(plain)))


def load_logged_config(text: str):
    """The config of a logged config.yaml, without the Hydra rerun header."""
    cfg = OmegaConf.create(text)
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k not in ("defaults", "hydra")])


def log_config(cfg, overrides: list[str], data_used: dict | None = None) -> None:
    """The resolved config as config.yaml, the command-line overrides, and every key as a param.

    `data_used`: the protocol values the data set was actually built with (a protocol may set some,
    as Amazon's `dien` sets samples_per_user and the split); they are what the data.* params say.
    """
    import mlflow

    plain = OmegaConf.to_container(cfg, resolve=True)
    mlflow.log_text(rerunnable_yaml(cfg), "config.yaml")
    mlflow.log_text(redact("\n".join(overrides) + ("\n" if overrides else "")), "overrides.txt")
    params = flatten(plain)
    params.update({k: v for k, v in flatten({"data": data_used or {}}).items() if k in params})
    log_params(params)


def log_dataset(data) -> None:
    """The data set as an MLflow input (name, digest = cache key, source = its files or cache)."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.exceptions import MlflowException

    from src.data.dataset import filtering_params

    log_params(filtering_params(data.meta))
    files = data.meta.get("files") or []
    cache_path = (data.meta.get("cache") or {}).get("path")
    source_path = files[0] if files else (cache_path or str(ROOT / "data"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = resolve_dataset_source(source_path)
    except MlflowException as e:  # a source MLflow cannot resolve is not worth failing a run
        warnings.warn(f"the data set is not logged as an MLflow input: {e}", stacklevel=2)
        return
    ds = MetaDataset(source=source, name=data.name, digest=str(data.meta.get("fingerprint", ""))[:36])
    for context in ("training", "validation", "test"):
        try:
            mlflow.log_input(ds, context=context)
        except MlflowException:
            # two workers' first runs insert the same new data set row at the same moment (a unique
            # constraint of the store); by the second attempt the row exists and is linked instead
            time.sleep(0.5)
            mlflow.log_input(ds, context=context)


def run_tags(data, device: str, extra: dict | None = None) -> dict:
    import keras

    tags = {**git_info(), **versions(), "data.fingerprint": str(data.meta.get("fingerprint", "")),
            "data.name": data.name, "device": device, "keras_backend": keras.backend.backend()}
    tags.update(extra or {})
    return {k: redact(v) for k, v in tags.items()}


class Pruned(Exception):
    """Raised by a reporter to stop a run early (a sweep's pruner); the run ends KILLED."""

    def __init__(self, epoch: int, value: float | None = None):
        super().__init__(f"pruned at epoch {epoch}")
        self.epoch, self.value = epoch, value


def fresh_run_name(experiment_id: str, tries: int = 20) -> str:
    """A run name in MLflow's style (`adjective-animal-123`) that no run of the experiment has yet. MLflow's own
    draws from the global `random`, which the run's seed sets: two runs with one seed got one name. This one
    draws from the system's entropy and leaves the global generator as it was."""
    import random

    import mlflow
    from mlflow.utils.name_utils import _generate_random_name

    state = random.getstate()
    try:
        for _ in range(tries):
            random.seed(os.urandom(16))
            name = _generate_random_name()
            taken = mlflow.MlflowClient().search_runs([experiment_id], filter_string=f"attributes.run_name = '{name}'",
                                                      max_results=1)
            if not taken:
                return name
    finally:
        random.setstate(state)
    raise RuntimeError(f"no free run name after {tries} draws in experiment {experiment_id}")


@contextmanager
def tracked_run(experiment_id: str, run_name=None, parent_run_id=None, tags=None):
    """An MLflow run's lifecycle: FINISHED when the block ends, KILLED when pruned or interrupted (Ctrl-C,
    SIGTERM, Ray's cancel; `end_reason` says which), FAILED (with the reason as a tag) on any other
    exception, which propagates.

    Creating the run and entering the code that ends it are one step: an interrupt that comes while
    MLflow creates the run (`mlflow.start_run` creates it, then sets up the active run) is held and raised
    inside the `try`, where it ends the run KILLED; ending the run is held the same way.
    """
    import mlflow

    run_name = run_name or fresh_run_name(experiment_id)
    with interrupts.atomic() as hold:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, parent_run_id=parent_run_id,
                               nested=parent_run_id is not None, tags=tags)
        faults.point("in_run_creation")
        try:
            hold.release()
            yield run
        except Pruned as e:
            _end("KILLED", {"pruned_at_epoch": str(e.epoch), "end_reason": "pruned"})
            raise
        except KeyboardInterrupt as e:
            _end("KILLED", {"end_reason": interrupts.reason(e)})
            raise
        except BaseException as e:
            _end("FAILED", {"end_reason": "failed", "failure": redact(f"{type(e).__name__}: {e}")[:5000]})
            raise
        _end("FINISHED")


def _end(status: str, tags: dict | None = None) -> None:
    """Ends the active run with its closing tags, in one step an interrupt cannot split. The run leaves this
    process's active-run stack even when the store refuses the tags (a locked or unreachable store): else
    every later cell of a worker process would start nested in it and fail; the store's copy of a run left
    RUNNING is ended by the sweep's reconciliation."""
    import mlflow

    with interrupts.atomic():
        try:
            if tags:
                mlflow.set_tags(tags)
        finally:
            mlflow.end_run(status)


def _whole(method):
    """A store write that an interrupt cannot split: the signal is raised when the write is done. Raised
    inside SQLAlchemy's commit, a KeyboardInterrupt (Ctrl-C, Ray's cancel) can leave the SQLite connection
    in its transaction, holding the lock: every other process's write then waits and fails with
    "database is locked", and this process cannot end its own run."""

    @functools.wraps(method)
    def whole(*args, **kwargs):
        with interrupts.atomic():
            return method(*args, **kwargs)
    return whole


def _finite(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


class RunLogger:
    """What one training run logs, and where: the run's only MLflow calls.

    Args:
        tracking_cfg: the `tracking` config (store URI, artifact root, experiment name).
        data: the run's data set (its name names the experiment; it is logged as an input).
        device: the device description, a tag.
        model: the short description of what is trained, a tag and a title.
    """

    @_whole
    def __init__(self, tracking_cfg, data, device: str, model: str):
        self.tracking_cfg, self.data, self.device, self.model = tracking_cfg, data, device, model
        setup(tracking_cfg)
        self.experiment = experiment_id(tracking_cfg, data.name, data_description(data))
        self.run_id = None
        self._tmp = None

    @contextmanager
    def run(self, run_name=None, parent_run_id=None, tags=None):
        """The tracked run (see `tracked_run`); yields its id."""
        all_tags = run_tags(self.data, self.device, {"model": self.model, **(tags or {})})
        with tracked_run(self.experiment, run_name, parent_run_id, all_tags) as run, \
                tempfile.TemporaryDirectory() as tmp:
            self.run_id, self._tmp = run.info.run_id, Path(tmp)
            yield self.run_id

    @_whole
    def config(self, cfg, overrides) -> None:
        """The resolved config, the overrides, every key as a param, and the data set as an input."""
        log_config(cfg, list(overrides), data_used=self.data.meta.get("protocol"))
        log_dataset(self.data)

    @_whole
    def epoch(self, row: dict, attention: dict | None = None, figure=None) -> None:
        """An epoch's metrics (step = epoch) and, for models with attention, the probe's arrays and picture."""
        import mlflow

        epoch = row["epoch"]
        if attention is not None:
            from src.run.probe import npz_bytes

            path = self._tmp / f"epoch_{epoch:03d}.npz"
            path.write_bytes(npz_bytes(attention))
            mlflow.log_artifact(str(path), "attention")
            faults.point("in_artifacts")
        if figure is not None:
            import matplotlib.pyplot as plt

            mlflow.log_figure(figure, f"attention/epoch_{epoch:03d}.png")
            plt.close(figure)
        mlflow.log_metrics(_finite({k: v for k, v in row.items() if k != "epoch"}), step=epoch)

    @_whole
    def final(self, metrics: dict) -> None:
        """The run's closing metrics (best epoch, best validation, test), the finite ones."""
        import mlflow

        mlflow.log_metrics(_finite(metrics))

    @_whole
    def keras_model(self, model) -> None:
        """The trained model as `model/model.keras`."""
        import mlflow

        path = self._tmp / "model.keras"
        model.save(path)
        mlflow.log_artifact(str(path), "model")

    def browse_hint(self) -> str:
        import mlflow

        return browse_hint(self.experiment, self.run_id, mlflow.get_tracking_uri())


class FetchError(LookupError):
    """A logged run cannot be read: an unknown id, a store that cannot be reached, no config.yaml."""


def fetch_run(run_id: str, tracking_uri: str | None = None):
    """(logged config without the rerun header, metrics, tags) of a run in a store.

    Raises:
        FetchError: the run or its config cannot be read; the message says why.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(resolve_uri(tracking_uri))
    try:
        run = mlflow.MlflowClient().get_run(run_id)
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    except (MlflowException, OSError) as e:
        raise FetchError(redact(str(e))) from e
    return load_logged_config(text), dict(run.data.metrics), dict(run.data.tags)


def run_metrics(run_id: str) -> dict:
    """A run's latest metrics, from the store MLflow points at."""
    import mlflow

    return dict(mlflow.MlflowClient().get_run(run_id).data.metrics)
