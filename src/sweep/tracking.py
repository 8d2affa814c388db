"""The sweep's MLflow side: one parent run per study, trial tags, cleaning up after dead workers."""

from __future__ import annotations

import json
import os
import time

import yaml

from src import tracking


def trial_tags(sweep, trial, seed) -> dict:
    return {"study": sweep.s["name"], "study_key": study_key(sweep), "trial": str(trial.number),
            "trial_seed": str(seed), "sweep_parent": sweep.parent_run_id or ""}


def _client():
    import mlflow

    return mlflow.MlflowClient()


def definition_yaml(sweep) -> str:
    doc = {"study": sweep.s, "fixed": sweep.base, "search": {k: p.expr for k, p in sweep.params.items()},
           "command": ["python", "-m", "src.sweep", *sweep.definition["argv"]], "file": sweep.definition["file"]}
    return tracking.redact(yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False))


def study_key(sweep) -> str:
    """Identifies the study across processes and machines: its storage (redacted) and its id there."""
    return f"{tracking.redact(sweep.url)}#{sweep.study._study_id}"


PARENT_WAIT_S = 120


def _live_run(client, run_id):
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 - gone with a reset store
        return None
    return run if run.info.lifecycle_stage == "active" else None


def open_parent(sweep) -> str:
    """The study's parent run: created once by the process that created the study, reopened by a
    resume or a joining machine (which waits for it if the creator is a moment behind).

    Also ends, as KILLED, any child run still RUNNING whose trial is no longer running (its worker died).
    """
    from optuna.trial import TrialState

    tracking.setup(sweep.base_cfg.tracking)
    client = _client()
    exp_id = tracking.experiment_id(sweep.base_cfg.tracking, str(sweep.base_cfg.data.name))
    key = study_key(sweep)

    def stored():
        rid = sweep.study._storage.get_study_user_attrs(sweep.study._study_id).get("mlflow_parent_run_id")
        return _live_run(client, rid) if rid else None

    run = stored()
    fresh = not sweep.study._storage.get_study_user_attrs(sweep.study._study_id).get("mlflow_parent_run_id") \
        and not sweep.study.get_trials(deepcopy=False)
    if run is None and fresh and not sweep.creator:
        deadline = time.time() + PARENT_WAIT_S
        while run is None and time.time() < deadline:
            time.sleep(1)
            run = stored()
    if run is None:  # the creator, a resume after a store reset, or a creator that died first
        run = client.create_run(exp_id, run_name=f"sweep {sweep.s['name']}",
                                tags={"study": sweep.s["name"], "study_key": key, "sweep_role": "parent",
                                      "storage": tracking.redact(sweep.url), **tracking.git_info(),
                                      **tracking.versions()})
        sweep.study.set_user_attr("mlflow_parent_run_id", run.info.run_id)
        client.log_text(run.info.run_id, definition_yaml(sweep), "sweep.yaml")
    parent = run.info.run_id
    client.update_run(parent, status="RUNNING")
    # one artifact per invocation, named so that machines starting together never write the same
    # thing (a counter tag raced: read, add one, write)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    client.log_text(parent, definition_yaml(sweep), f"invocations/{stamp}-{tracking.HOST}-{os.getpid()}.yaml")
    running = {str(t.number) for t in sweep.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    stale = client.search_runs([exp_id], filter_string=f"tags.study_key = '{key}' and attributes.status = 'RUNNING'",
                               max_results=1000)
    for r in stale:
        if r.info.run_id != parent and r.data.tags.get("trial") not in running:
            kill_runs([r.info.run_id], "worker died")
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
    client = _client()
    for rid in run_ids:
        try:
            if client.get_run(rid).info.status == "RUNNING":
                client.set_tag(rid, "end_reason", reason)
                client.set_terminated(rid, "KILLED", end_time=int(time.time() * 1000))
        except Exception:  # noqa: BLE001 - a run that cannot be found needs no cleaning
            pass


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
    client = _client()
    for rid in run_ids:
        try:
            client.set_tag(rid, "trial_state", state)
        except Exception:  # noqa: BLE001
            pass
