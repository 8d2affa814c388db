"""The sweep's MLflow side: one parent run per study, trial tags, cleaning up after dead workers."""

from __future__ import annotations

import json
import logging
import os
import time

import yaml

from src.run import logger as tracking
from src.sweep.definition import Definition
from src.sweep.study import HOST

log = logging.getLogger(__name__)
PARENT_WAIT_S = 120


def _client():
    import mlflow

    return mlflow.MlflowClient()


def trial_tags(definition: Definition, parent_run_id: str, trial_number: int, seed: int) -> dict:
    return {"study": definition.settings.name, "trial": str(trial_number), "trial_seed": str(seed),
            "sweep_parent": parent_run_id or ""}


def definition_yaml(definition: Definition) -> str:
    from dataclasses import asdict

    doc = {"study": asdict(definition.settings), "fixed": list(definition.base),
           "search": {k: p.expr for k, p in definition.params.items()},
           "command": ["python", "-m", "src.sweep", *definition.argv], "file": definition.file}
    return tracking.redact(yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False))


def _live_run(client, run_id):
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:  # gone with a reset store
        return None
    return run if run.info.lifecycle_stage == "active" else None


def open_parent(definition: Definition, study, url: str, creator: bool, tracking_cfg, experiment: str) -> str:
    """The study's parent run: created once by the process that created the study, reopened by a
    resume or a joining machine (which waits for it if the creator is a moment behind).

    Also ends, as KILLED, any child run still RUNNING whose trial is no longer running (its worker died).
    """
    from optuna.trial import TrialState

    tracking.setup(tracking_cfg)
    client = _client()
    exp_id = tracking.experiment_id(tracking_cfg, experiment)

    def stored():
        rid = study.user_attrs.get("mlflow_parent_run_id")
        return _live_run(client, rid) if rid else None

    run = stored()
    fresh = not study.user_attrs.get("mlflow_parent_run_id") and not study.get_trials(deepcopy=False)
    if run is None and fresh and not creator:
        deadline = time.time() + PARENT_WAIT_S
        while run is None and time.time() < deadline:
            time.sleep(1)
            run = stored()
    if run is None:  # the creator, a resume after a store reset, or a creator that died first
        name = definition.settings.name
        run = client.create_run(exp_id, run_name=f"sweep {name}",
                                tags={"study": name, "sweep_role": "parent", "storage": tracking.redact(url),
                                      **tracking.git_info(), **tracking.versions()})
        study.set_user_attr("mlflow_parent_run_id", run.info.run_id)
        client.log_text(run.info.run_id, definition_yaml(definition), "sweep.yaml")
    parent = run.info.run_id
    client.update_run(parent, status="RUNNING")
    # one artifact per invocation, named so that machines starting together never write the same
    # thing (a counter tag raced: read, add one, write)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    client.log_text(parent, definition_yaml(definition), f"invocations/{stamp}-{HOST}-{os.getpid()}.yaml")
    running = {str(t.number) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    stale = client.search_runs([exp_id], filter_string=f"tags.sweep_parent = '{parent}' and "
                                                       f"attributes.status = 'RUNNING'", max_results=1000)
    kill_runs([r.info.run_id for r in stale if r.data.tags.get("trial") not in running], "worker died")
    return parent


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


def kill_runs(run_ids, reason: str) -> None:
    """Ends the RUNNING ones among these runs as KILLED, with the reason as a tag."""
    from mlflow.exceptions import MlflowException

    client = _client()
    for rid in run_ids:
        try:
            if client.get_run(rid).info.status == "RUNNING":
                client.set_tag(rid, "end_reason", reason)
                client.set_terminated(rid, "KILLED", end_time=int(time.time() * 1000))
        except MlflowException as e:  # a run deleted from the store needs no cleaning
            log.warning("could not end run %s as KILLED: %s", rid, tracking.redact(str(e)).splitlines()[0])


def set_tags(run_id: str, tags: dict) -> None:
    """Sets tags in one call; retried once, since two machines inserting the same new tag at the same
    moment collide in the store and the retry updates instead."""
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    batch = [RunTag(k, str(v)) for k, v in tags.items()]
    try:
        _client().log_batch(run_id, tags=batch)
    except MlflowException:
        time.sleep(0.5)
        _client().log_batch(run_id, tags=batch)


def tag_state(run_ids, state: str) -> None:
    """Tags a trial's runs with the trial's final state."""
    from mlflow.exceptions import MlflowException

    client = _client()
    for rid in run_ids:
        try:
            client.set_tag(rid, "trial_state", state)
        except MlflowException as e:
            log.warning("could not tag run %s with trial_state=%s: %s", rid, state,
                        tracking.redact(str(e)).splitlines()[0])
