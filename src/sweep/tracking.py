"""The sweep's MLflow side: one parent run per study, trial tags, cleaning up after dead workers."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import yaml

from src.redact import redact
from src.run import logger as tracking
from src.run.logger import outage
from src.sweep import SweepError, attrs
from src.sweep.definition import Definition
from src.sweep.study import HOST

log = logging.getLogger(__name__)
PARENT_WAIT_S = 120


def _client():
    import mlflow

    return mlflow.MlflowClient()


def trial_tags(definition: Definition, parent_run_id: str, trial_number: int, seed: int,
               sampled: list[str] | None = None) -> dict:
    """A cell's run's tags: its study, trial and seed, its parent run, and its configuration (`config`: a short
    hash of the levels it trained, the same for every seed of a configuration, so that MLflow groups a
    configuration's runs by it; `config_levels`: those levels, readable)."""
    tags = {"study": definition.settings.name, "trial": str(trial_number), "trial_seed": str(seed),
            "sweep_parent": parent_run_id or ""}
    if sampled is not None:
        short, levels = config_tag(sampled)
        tags.update(config=short, config_levels=levels[:5000])
    return tags


def config_tag(sampled: list[str]) -> tuple[str, str]:
    """A configuration's `config` tag (a short hash of its levels, whatever their order) and its levels, readable."""
    levels = " ".join(sorted(sampled)) or "(base config)"
    return hashlib.sha256(levels.encode()).hexdigest()[:10], levels


def configuration_metrics(definition: Definition, observations: list[dict]) -> tuple[dict, dict]:
    """Each configuration's mean over its seeds, that mean's 95% t interval and its trainings, as parent-run
    metrics named by its cells' `config` tag (`config.<hash>.mean`, `.low`, `.high`, `.trainings`), and the tags
    that name each hash's levels (`config.<hash>`): the numbers MLflow's group-by shows, kept with the answer."""
    import statistics
    from collections import defaultdict

    from src.answer.effects import key, t_quantile

    values, levels = defaultdict(list), {}
    for o in observations:
        k = key(o["config"])
        values[k].append(o["value"])
        levels[k] = [definition.params[p].override(v) for p, v in o["config"].items() if p in definition.params]
    metrics, tags = {}, {}
    for k, v in values.items():
        short, readable = config_tag(levels[k])
        mean = statistics.fmean(v)
        half = t_quantile(0.975, len(v) - 1) * statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else None
        metrics.update({f"config.{short}.mean": mean, f"config.{short}.trainings": len(v)})
        if half is not None:
            metrics.update({f"config.{short}.low": mean - half, f"config.{short}.high": mean + half})
        tags[f"config.{short}"] = readable[:5000]
    return metrics, tags


def definition_yaml(definition: Definition) -> str:
    doc = {"study": definition.settings.model_dump(), "fixed": list(definition.base),
           "search": {k: p.expr for k, p in definition.params.items()},
           "command": ["python", "-m", "src.sweep", *definition.argv], "file": definition.file}
    return redact(yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False))


def _live_run(client, run_id):
    """The run if it exists and is not deleted; None if the store has no such run (a reset store).

    Any other error (a server that fails or cannot be reached) is raised: read as "gone", it made
    the caller open a second parent run for the study and leave the first one RUNNING.
    """
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
    return run if run.info.lifecycle_stage == "active" else None


def open_parent(definition: Definition, study, url: str, creator: bool, tracking_cfg, experiment: str) -> str:
    """The study's parent run: created once by the process that created the study, reopened by a
    resume or a joining machine (which waits for it if the creator is a moment behind).

    A parent that a stopped sweep ended KILLED is RUNNING again (its `end_reason` removed).

    Raises:
        SweepError: the tracking store failed or cannot be reached; no trial has run yet.
    """
    from mlflow.exceptions import MlflowException

    try:
        return _open_parent(definition, study, url, creator, tracking_cfg, experiment)
    except MlflowException as e:
        what = "cannot be reached" if outage(e) else "failed"
        raise SweepError(f"the MLflow tracking store {redact(tracking_uri())} {what} before any trial ran "
                         f"({redact(str(e)).splitlines()[0][:300]}); nothing was trained: run the same command "
                         f"again once it answers") from None


def _open_parent(definition: Definition, study, url: str, creator: bool, tracking_cfg, experiment: str) -> str:

    tracking.setup(tracking_cfg)
    client = _client()
    exp_id = tracking.experiment_id(tracking_cfg, experiment)

    def stored_id():
        return attrs.MLFLOW_PARENT_RUN_ID.get(study)

    # the trials are read before the stored id: the creator stores its parent run before any trial exists,
    # so a trial seen here means the id read next is the creator's. Read the other way round, a worker
    # starting while the creator stored its id and began a trial saw neither the id nor a fresh study,
    # and opened a second parent run (three workers started together on a fast machine did)
    started = bool(study.get_trials(deepcopy=False))
    rid = stored_id()
    if rid is None and not started and not creator:
        deadline = time.time() + PARENT_WAIT_S
        while rid is None and time.time() < deadline:
            time.sleep(1)
            rid = stored_id()
    run = _live_run(client, rid) if rid else None
    if run is None:  # the creator, a resume after a store reset, or a creator that died first
        name = definition.settings.name
        parent = create_parent(exp_id, f"sweep {name}", {"study": name, "storage": redact(url)})
        attrs.MLFLOW_PARENT_RUN_ID.set(study, parent)
        client.log_text(parent, definition_yaml(definition), "sweep.yaml")
    else:
        parent = run.info.run_id
    client.update_run(parent, status="RUNNING")
    if run is not None and "end_reason" in run.data.tags:  # a stopped sweep's parent, running again
        client.delete_tag(parent, "end_reason")
    # one artifact per invocation, named so that machines starting together never write the same
    # thing (a counter tag raced: read, add one, write)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    client.log_text(parent, definition_yaml(definition), f"invocations/{stamp}-{HOST}-{os.getpid()}.yaml")
    return parent


def child_runs(parent: str) -> list:
    """Every run of the study's cells (tagged with the parent's id), page by page."""
    client = _client()
    exp = client.get_run(parent).info.experiment_id
    runs, token = [], None
    while True:
        page = client.search_runs([exp], filter_string=f"tags.sweep_parent = '{parent}'", max_results=1000,
                                  page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def reconcile(study, parent: str) -> int:
    """Makes the tracking store agree with the study; returns how many runs it ended (0, with a line that
    says so, when the store cannot be reached or fails: the next start reconciles).

    A cell's run still RUNNING while its trial is not (its worker died, or was stopped between creating the
    run and ending it) ends KILLED. A run that ended FINISHED while its trial is not COMPLETE (the worker
    was stopped between the run's end and the study's tell, or the trial failed or was pruned at a later
    seed) ends KILLED too: its cell runs again, and only a COMPLETE trial's runs stay FINISHED. A RUNNING run
    that no live trial owns ends too: one of a trial the study does not hold ends KILLED; one of a COMPLETE
    trial ends FINISHED if the trial recorded it (the trial completed, the run's end was lost), else KILLED
    (a second run of a finished cell, left open by a lost end). Runs of live trials are left alone. Call it
    after `study.recover_stale`, so that a dead worker's trial is FAIL.
    """
    from mlflow.exceptions import MlflowException

    try:
        return _reconcile(study, parent)
    except MlflowException as e:
        what = "cannot be reached" if outage(e) else "failed"
        print(f"note: the tracking store {what} ({redact(str(e)).splitlines()[0][:200]}); its runs are "
              f"reconciled with the study at the next start", flush=True)
        return 0


UNKNOWN_AFTER_S = 120  # a run whose trial the study does not hold is ended only if it started this much before the
# study was read: a trial is asked before its run starts, so an older run's trial is not in the study at all (the
# margin allows for the clocks of other machines)


def _reconcile(study, parent: str) -> int:
    from optuna.trial import TrialState

    read = time.time()
    trials = {str(t.number): t for t in study.get_trials(deepcopy=False)}  # before the runs (see below)
    client, ended = _client(), 0
    for run in child_runs(parent):
        number = run.data.tags.get("trial")
        t = trials.get(number)
        if t is not None and t.state in (TrialState.RUNNING, TrialState.WAITING):
            continue  # a trial read as RUNNING may have ended since; it is the next reconcile's
        status = run.info.status
        if t is None and run.info.start_time / 1000 > read - UNKNOWN_AFTER_S:
            continue  # its trial may have been asked (on another machine) after the study was read
        if t is None or t.state == TrialState.COMPLETE:
            if status == "RUNNING":
                ended += _end_unowned(client, run, t, number)
            continue
        if status not in ("RUNNING", "FINISHED"):
            continue
        why = attrs.FAILURE.get(t) or ("worker died" if t.state == TrialState.FAIL else "pruned")
        if status == "FINISHED":
            why = f"its trial {t.number} ended {t.state.name}, not COMPLETE ({why})"
        _end(client, run.info.run_id, "KILLED", {"end_reason": redact(str(why))[:5000], "trial_state": t.state.name},
             end_time=run.info.end_time)
        ended += 1
    return ended


def _end_unowned(client, run, t, number: str) -> int:
    """Ends a RUNNING run that no live trial owns: its trial `t` (number `number`, as the run's tag says) is
    COMPLETE, or None (the study does not hold it); 1."""
    if t is None:
        status, why = "KILLED", f"its trial {number} is not in the study"
    elif run.info.run_id not in (attrs.MLFLOW_RUN_IDS.get(t) or []):
        status, why = "KILLED", f"a second run of trial {number}, which is COMPLETE with the runs it recorded"
    else:
        status, why = "FINISHED", f"its trial {number} is COMPLETE; the run's end was lost"
    _end(client, run.info.run_id, status, {"end_reason": why, "trial_state": t.state.name if t else "unknown"})
    return 1


def _end(client, run_id: str, status: str, tags: dict, end_time: int | None = None) -> None:
    """Ends a run with this status and the tags that say why (`end_time`: when it ended, if known; else now)."""
    for k, v in tags.items():
        client.set_tag(run_id, k, v)
    client.set_terminated(run_id, status, end_time=end_time or int(time.time() * 1000))


def end_parent(parent: str, status: str, reason: str) -> None:
    """Ends a stopped sweep's parent run (KILLED, with why as `end_reason`); a resume reopens it. A store
    that cannot be reached leaves it to the next start, with a line that says so."""
    from mlflow.exceptions import MlflowException

    try:
        _end(_client(), parent, status, {"end_reason": reason})
    except MlflowException as e:
        print(f"note: the sweep's parent run could not be ended ({redact(str(e)).splitlines()[0][:200]}); the "
              f"next start reopens it", flush=True)


def create_parent(experiment: str, name: str, tags: dict) -> str:
    """A new sweep parent run (tagged as such, with the code's commit and library versions); its id."""
    run = _client().create_run(experiment, run_name=name, tags={**tags, "sweep_role": "parent",
                                                                **tracking.git_info(), **tracking.versions()})
    return run.info.run_id


def kill_runs(run_ids, reason: str) -> None:
    """Ends the RUNNING ones among these runs as KILLED, with the reason as a tag."""
    from mlflow.exceptions import MlflowException

    client = _client()
    for rid in run_ids:
        try:
            if client.get_run(rid).info.status == "RUNNING":
                _end(client, rid, "KILLED", {"end_reason": reason})
        except MlflowException as e:  # a run deleted from the store needs no cleaning
            log.warning("could not end run %s as KILLED: %s", rid, redact(str(e)).splitlines()[0])


def set_tags(run_id: str, tags: dict) -> None:
    """Sets tags in one call; retried once, since two machines inserting the same new tag at the same
    moment collide in the store and the retry updates instead."""
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    tags = [RunTag(k, str(v)) for k, v in tags.items()]
    for i in range(0, len(tags), 100):  # MLflow takes at most 100 tags a batch
        batch = tags[i:i + 100]
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
                        redact(str(e)).splitlines()[0])


def tracking_uri() -> str:
    """The store MLflow points at in this process."""
    import mlflow

    return mlflow.get_tracking_uri()


def log_summary(parent: str, files, plots, metrics: dict, best=None, best_cfg=None, failed: str | None = None) -> str:
    """The sweep's end on its parent run: report/ and optuna/ artifacts, counts and best value as metrics,
    the best configuration's parameters as tags (a resume may find a better one, and MLflow params
    cannot change) and its rerunnable config, the run's final state; returns the line that says where
    to look. `best`: src/sweep/report.py's BestConfig."""
    import math

    client = _client()
    for path in plots:
        client.log_artifact(parent, str(path), "optuna")
    for path in files:
        client.log_artifact(parent, str(path), "report")
    if best is not None:
        metrics = {**metrics, "best_value": best.value}
        levels = {f"best.{k}": redact(str(v)) for k, v in best.params.items()}
        set_tags(parent, {"best_cells": str(best.cells), **levels,
                          **({"best_verdict": best.verdict} if best.verdict else {})})
        said = "".join(f"# {line}\n" for line in (best.note or "").splitlines())
        client.log_text(parent, said + tracking.rerunnable_yaml(best_cfg), "best_config.yaml")
    for k, v in metrics.items():
        if v is not None and math.isfinite(float(v)):
            client.log_metric(parent, k, float(v))
    client.set_terminated(parent, "FAILED" if failed else "FINISHED")
    exp = client.get_run(parent).info.experiment_id
    return tracking.browse_hint(exp, parent, tracking_uri())


def trial_run_tags(uri: str) -> list[dict]:
    """The tags of every trial's run in a store, ordered by trial number."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    tags = [r.data.tags for r in runs if r.data.tags.get("trial") is not None]
    return sorted(tags, key=lambda t: int(t["trial"]))


def run_seconds(uri: str) -> dict[str, float]:
    """Each ended run's duration in a store, start to end, in seconds, by run id."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=5000)
    return {r.info.run_id: (r.info.end_time - r.info.start_time) / 1000 for r in runs if r.info.end_time}


def log_answer(parent: str, note: str, metrics: dict) -> None:
    """The answer where users look: the parent run's description (its note, rendered on the Overview page;
    rewritten at every finish) and each question's numbers as metrics, to compare sweeps and to search."""
    import math

    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    set_tags(parent, {MLFLOW_RUN_NOTE: note})
    client = _client()
    for k, v in metrics.items():
        if v is not None and math.isfinite(float(v)):
            client.log_metric(parent, k, float(v))


def log_look(parent: str, trainings: int, text: str, plan_figure=None) -> None:
    """A look of a sequential sweep on its parent run: `looks/at-N.md` and the plan picture `looks/at-N-plan.png`."""
    client = _client()
    client.log_text(parent, text + "\n", f"looks/at-{trainings:04d}.md")
    if plan_figure is not None:
        import matplotlib.pyplot as plt

        client.log_figure(parent, plan_figure, f"looks/at-{trainings:04d}-plan.png")
        plt.close(plan_figure)


def _effects_text(run_id: str, uri: str | None) -> str:
    """A finished sweep's `report/effects.json`, from its parent run in the store at `uri`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking.resolve_uri(uri))
    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/report/effects.json")
    except (MlflowException, OSError) as e:
        raise SweepError(f"no answer on run {run_id} in {redact(mlflow.get_tracking_uri())}: is it a sweep's parent "
                         f"run, and did the sweep finish? ({redact(str(e)).splitlines()[0]})") from None


def answer_questions(run_id: str, uri: str | None = None) -> list:
    """A finished sweep's answer, its questions (src/answer/records.py `Question`), from its parent run's
    `report/effects.json` in the store at `uri` (default: the project's).

    Raises:
        SweepError: the run or its answer cannot be read; the message says why.
    """
    from src.answer import records

    try:
        return records.load(_effects_text(run_id, uri))
    except ValueError as e:
        raise SweepError(f"run {run_id}: {e}") from None


def answer_best(run_id: str, uri: str | None = None) -> list:
    """A finished sweep's confidence set(s) of the best configuration (src/answer/best.py `BestSet`), from the
    same file; [] for answers written before they were kept."""
    from src.answer import records

    try:
        return records.load_best(_effects_text(run_id, uri))
    except ValueError as e:
        raise SweepError(f"run {run_id}: {e}") from None


def answer_frame(run_id: str, uri: str | None = None):
    """A finished sweep's answer as a pandas DataFrame, one row per question, for a notebook:

        from src.sweep.tracking import answer_frame
        df = answer_frame("PARENT_RUN_ID")          # the project's store; uri="http://..." for a server
    """
    from src.answer import records

    return records.frame(answer_questions(run_id, uri))


def best_frame(run_id: str, uri: str | None = None):
    """The members of a finished sweep's best set(s) as a pandas DataFrame, one row per member (its levels,
    mean, interval against the best of the others, trainings, its set's verdict, whether it leads)."""
    from src.answer import records

    return records.best_frame(answer_best(run_id, uri))
