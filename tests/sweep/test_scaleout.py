"""Scale-out on real servers: studies on PostgreSQL, a shared `mlflow server` (PostgreSQL backend),
several worker processes started as separate machines would start them, and faults. Bounded in time."""

import os
import signal
import subprocess
import time
from urllib.parse import urlsplit

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from src.config.paths import ROOT
from src.tools.services import free_port, start_mlflow_server, stop_process
from tests.conftest import job_runner_processes, mlflow_db_at
from tests.sweep.test_sweep import DIN, TINY, sweep_cmd

pytestmark = pytest.mark.slow


@pytest.fixture
def server(pg_server, tmp_path, request):
    """An MLflow tracking server with a PostgreSQL backend store; restartable on the same port."""
    import psycopg

    db = "m_" + os.urandom(4).hex()
    with psycopg.connect(pg_server.format(db="postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')

    class Server:
        port = free_port()
        backend = pg_server.format(db=db)
        uri = f"http://127.0.0.1:{port}"
        proc = None

        def start(self):
            self.proc = start_mlflow_server(self.backend, tmp_path / "server-artifacts", self.port,
                                            tmp_path / "server.log", workers=1)
            assert not job_runner_processes(self.proc.pid), job_runner_processes(self.proc.pid)

        def stop(self):
            stop_process(self.proc)

    s = Server()
    s.start()
    yield s
    s.stop()


def sweep_args(storage, tracking_uri, *extra):
    return [*TINY, f"sweep.storage={storage}", "tracking=server", f"tracking.uri={tracking_uri}", "sweep.pruner=none",
            *extra]


def start(cmd, log, **env):
    """The command in a session of its own, its output to `log`, with `env` added to the environment."""
    return subprocess.Popen(cmd, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def password_of(url):
    return urlsplit(url).password


def all_runs(uri):
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    return client, client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=2000)


def running_trials(storage, name):
    """The study's RUNNING trials that have started their MLflow runs ([] before the study exists)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return []
    return [t for t in study.get_trials(states=(TrialState.RUNNING,)) if t.user_attrs.get("mlflow_run_ids")]


def wait_for(predicate, procs, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        if all(p.poll() is not None for p in procs):
            raise AssertionError("the workers ended before the condition held")
        time.sleep(0.5)
    raise AssertionError("timed out")


def test_three_workers_one_killed(pg_db, server, tmp_path):
    n = 6  # two trials a worker: the victim is killed in its first, the others take the rest and its retry
    cmd = sweep_cmd(sweep_args(pg_db, server.uri, "sweep.name=multi", f"sweep.trials={n}", "train.epochs=2",
                               "sweep.sampler=random", *DIN))
    procs = [start(cmd, tmp_path / f"worker{i}.log") for i in range(3)]
    storage = optuna.storages.RDBStorage(pg_db)

    def victim_trial():
        return next((t for t in running_trials(storage, "multi") if t.user_attrs.get("pid") == procs[1].pid), None)

    victim = wait_for(victim_trial, procs)
    os.killpg(procs[1].pid, signal.SIGKILL)
    for i in (0, 2):
        procs[i].wait(timeout=900)
    logs = "".join((tmp_path / f"worker{i}.log").read_text() for i in range(3))
    assert procs[0].returncode == 0 and procs[2].returncode == 0, logs[-5000:]
    study = optuna.load_study(study_name="multi", storage=storage)
    trials = [t for t in study.get_trials() if not t.user_attrs.get("surplus")]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == n
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = study.get_trials()[victim.number]
    assert dead.state == TrialState.FAIL
    retried = [t for t in trials if t.user_attrs.get("retry_of") == victim.number
               or t.system_attrs.get("failed_trial") == victim.number]
    assert retried and retried[0].params == dead.params
    client, runs = all_runs(server.uri)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    parents = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("trial") is not None]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert {int(r.data.tags["trial"]) for r in children} >= {t.number for t in trials if t.state == TrialState.COMPLETE}
    killed = [r for r in children if r.info.run_id in victim.user_attrs["mlflow_run_ids"]]
    assert killed and all(r.info.status == "KILLED" for r in killed)
    # the database password appears nowhere: terminal, params, tags, logged config and sweep definition
    secret = password_of(pg_db)
    assert secret and secret not in logs
    for r in runs:
        assert secret not in str(r.data.params) and secret not in str(r.data.tags)
    text = mlflow.artifacts.load_text(f"runs:/{parents[0].info.run_id}/sweep.yaml")
    assert "***" in text and secret not in text
    text = mlflow.artifacts.load_text(f"runs:/{children[0].info.run_id}/config.yaml")
    assert secret not in text


def test_tracking_server_stopped_mid_sweep(pg_db, server, tmp_path, sweep_main):
    args = sweep_args(pg_db, server.uri, "sweep.name=outage", "sweep.trials=2", "train.epochs=3", *DIN)
    proc = start(sweep_cmd(args), tmp_path / "first.log")
    storage = optuna.storages.RDBStorage(pg_db)

    wait_for(lambda: running_trials(storage, "outage"), [proc])
    server.stop()
    proc.wait(timeout=300)
    out = (tmp_path / "first.log").read_text()
    assert proc.returncode == 1, out[-3000:]
    assert "tracking server" in out and "cannot be reached" in out
    # neither the report nor the failed trial's tag is tried against the server that is down
    assert "no report now" in out and "could not be written" not in out and "could not tag run" not in out
    study = optuna.load_study(study_name="outage", storage=storage)
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]  # not corrupted, nothing hangs
    failed = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert failed and "cannot be reached" in failed[-1].user_attrs["failure"]
    server.start()
    again = sweep_main(*args)  # the same command, in this process
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming study 'outage'" in again.stdout
    study = optuna.load_study(study_name="outage", storage=storage)
    assert sum(t.state == TrialState.COMPLETE for t in study.get_trials()) == 2
    _, runs = all_runs(server.uri)
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_database_unreachable_at_start(tmp_path, sweep_main):
    port = free_port()  # nothing listens there
    url = f"postgresql://lab:hunter2secret@127.0.0.1:{port}/optuna"
    out = sweep_main(*TINY, f"sweep.storage={url}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    assert out.returncode == 2
    assert "cannot open the study storage" in out.stderr and f"127.0.0.1:{port}" in out.stderr
    assert "hunter2secret" not in out.stdout + out.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing trained, nothing tracked


def test_tracking_server_unreachable_at_start(tmp_path, sweep_main, monkeypatch):
    port = free_port()  # nothing listens there; the client's retries off, to fail at once
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    out = sweep_main(*TINY, f"sweep.storage=journal:{tmp_path}/j", "tracking=server",
                     f"tracking.uri=http://127.0.0.1:{port}")
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert f"the tracking server http://127.0.0.1:{port} cannot be reached; nothing was started" in out.stderr
    assert "trial 0 start" not in out.stdout
    assert not (tmp_path / "j").exists()  # refused before the study exists


def test_second_host_heartbeat(pg_db, tmp_path, empty_mlflow_db):
    """Two "machines" (DIL_HOST) on one PostgreSQL study, with a 1 s heartbeat and a 6 s grace period.
    Host A judges host B's trials by heartbeat alone (the process-id check is for its own host)."""
    grace = 6
    mlflow_db_at(tmp_path / "mlflow.db", empty_mlflow_db)
    store = [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts"]

    def cmd(trials):
        return sweep_cmd([*TINY, f"sweep.storage={pg_db}", *store, "sweep.name=xhost",
                          "sweep.sampler=random", "sweep.pruner=none", "sweep.heartbeat=1", f"sweep.grace={grace}",
                          f"sweep.trials={trials}", "train.epochs=6", "model=dien"])

    def host(name, trials, log):
        return start(cmd(trials), log, DIL_HOST=name)

    storage = optuna.storages.RDBStorage(pg_db)

    def running_on(name, procs):
        return wait_for(lambda: next((t for t in running_trials(storage, "xhost")
                                      if t.user_attrs.get("host") == name), None), procs)

    # 1. B runs the study's only trial; A joins and, with nothing left to take, polls for dead trials
    #    every 2 s while B's trial runs past the grace period: the live trial is left alone and completes
    b = host("host-b", 1, tmp_path / "b1.log")
    running_on("host-b", [b])
    a = host("host-a", 1, tmp_path / "a1.log")
    assert b.wait(timeout=600) == 0, (tmp_path / "b1.log").read_text()[-3000:]
    assert a.wait(timeout=600) == 0, (tmp_path / "a1.log").read_text()[-3000:]
    study = optuna.load_study(study_name="xhost", storage=storage)
    [live] = study.get_trials()
    assert live.state == TrialState.COMPLETE and live.user_attrs["host"] == "host-b"
    assert (live.datetime_complete - live.datetime_start).total_seconds() > grace + 2

    # 2. both run two more trials; B is killed mid-trial and stops beating: A fails that trial after the
    #    grace period, queues its configuration once and trains it
    b = host("host-b", 3, tmp_path / "b2.log")
    a = host("host-a", 3, tmp_path / "a2.log")
    victim = running_on("host-b", [a, b])
    os.killpg(b.pid, signal.SIGKILL)
    b.wait(timeout=60)
    assert a.wait(timeout=600) == 0, (tmp_path / "a2.log").read_text()[-3000:]
    assert "lost their worker" in (tmp_path / "a2.log").read_text()
    study = optuna.load_study(study_name="xhost", storage=storage)
    trials = [t for t in study.get_trials() if not t.user_attrs.get("surplus")]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    dead = study.get_trials()[victim.number]
    assert dead.state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE and retries[0].params == dead.params
    reason = retries[0].user_attrs["retry_reason"]
    assert "worker died" in reason and "host host-b" in reason and "recovered by host host-a" in reason
    done = [tuple(sorted(t.params.items())) for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == len(set(done))  # no configuration trained twice to completion
    _, runs = all_runs(f"sqlite:///{tmp_path}/mlflow.db")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    killed = [r for r in runs if r.info.run_id in victim.user_attrs["mlflow_run_ids"]]
    assert killed and all(r.info.status == "KILLED" for r in killed)
