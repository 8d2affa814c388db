"""A cell stopped at each named point of its life (src/run/faults.py), by each way a sweep is stopped on the
local launcher: Ctrl-C to the process group, SIGTERM to the driver, SIGKILL of a worker, SIGKILL of the
driver. After every stop nothing is RUNNING in the study or the tracking store (the parent run included),
and the two agree; the same command resumes, and in the end every cell is complete exactly once.

Each way is one chain of sweeps on one study: the k-th invocation adds a seed (new cells to stop) and
stops at the k-th group of points, two points a group, one worker waiting at each; the last invocation runs
clean. The stop comes when every paused process has written its marker file, never after a guessed delay.
Every point is stopped by every way, as when each point had a sweep of its own, in half the sweeps."""

import os
import signal
import subprocess
import time
from collections import Counter

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from src.config.paths import ROOT
from src.run.faults import POINTS
from tests.conftest import mlflow_db_at
from tests.sweep.test_sweep import DIN, TINY, sweep_cmd, wait_for

pytestmark = pytest.mark.slow

# two configurations: every added seed gives two new cells, one for each of the two workers (sweep.trials=1:
# the design's cells alone, none sampled beyond them)
DESIGN = ["sweep.trials=1", "sweep.sampler=grid", "sweep.pruner=none", "train.epochs=1", *DIN, "~train.optimizer.lr",
          "model/activation=choice(sigmoid,dice)", "sweep.heartbeat=1", "sweep.grace=6"]
CONFIGS = 2
PER_STOP = 2  # points stopped at once: one worker waits at each


def groups(points, size=PER_STOP):
    """The points in groups of `size`, in their order: one group to a sweep."""
    return [tuple(points[i:i + size]) for i in range(0, len(points), size)]


class Stores:
    """One study's journal and tracking store, and the sweep command on them (`extra`: more overrides)."""

    def __init__(self, tmp_path, empty_mlflow_db, name, extra=(), workers=2):
        self.tmp, self.name = tmp_path, name
        self.journal = tmp_path / "optuna.journal"
        self.db = mlflow_db_at(tmp_path / "mlflow.db", empty_mlflow_db)
        self.args = [f"sweep.name={name}", f"sweep.storage=journal:{self.journal}", f"tracking.uri=sqlite:///{self.db}",
                     f"tracking.artifact_root={tmp_path / 'artifacts'}", f"sweep.workers={workers}", *extra]

    def command(self, seeds):
        return sweep_cmd([*TINY, *DESIGN, *self.args, f"sweep.seeds={list(seeds)}"])

    def start(self, seeds, points=(), log=None):
        env = dict(os.environ)
        if points:
            env.update(DIL_FAULT=",".join(points), DIL_FAULT_DIR=str(self.faults(points)))
        return subprocess.Popen(self.command(seeds), cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                text=True, start_new_session=True, env=env)

    def faults(self, points):
        d = self.tmp / "faults" / "+".join(points)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def study(self):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return optuna.load_study(study_name=self.name, storage=JournalStorage(JournalFileBackend(str(self.journal))))

    def runs(self):
        mlflow.set_tracking_uri(f"sqlite:///{self.db}")
        c = mlflow.MlflowClient()
        return c.search_runs([e.experiment_id for e in c.search_experiments()], max_results=5000)


def agree(stores, what):
    """Nothing RUNNING in either store, the parent included; each COMPLETE trial has exactly one FINISHED run,
    and every FINISHED run belongs to a COMPLETE trial."""
    study, runs = stores.study(), stores.runs()
    trials = {str(t.number): t for t in study.get_trials()}
    assert not [t.number for t in trials.values() if t.state == TrialState.RUNNING], what
    assert not [(r.info.run_name, r.data.tags.get("trial")) for r in runs if r.info.status == "RUNNING"], what
    cells = [r for r in runs if r.data.tags.get("trial") is not None]
    finished = Counter(r.data.tags["trial"] for r in cells if r.info.status == "FINISHED")
    complete = {n for n, t in trials.items() if t.state == TrialState.COMPLETE}
    assert set(finished) == complete and set(finished.values()) <= {1}, (what, finished, complete)
    return study, runs


def once_each(study, cells):
    done = Counter((tuple(sorted(t.params.items())), t.user_attrs["seed"]) for t in study.get_trials()
                   if t.state == TrialState.COMPLETE)
    assert len(done) == cells and set(done.values()) == {1}, done


def parent(runs):
    [p] = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    return p


def alive(pid):
    from src.sweep.study import pid_alive

    return pid_alive(pid)


def stop(way, proc, paused):
    """Stops the sweep `proc` while the processes `paused` wait at fault points; the exit status it should end
    with."""
    if way == "sigint":
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole process group
        return 130
    if way == "sigterm":
        os.kill(proc.pid, signal.SIGTERM)  # a cluster scheduler's stop: the driver alone
        return 143
    if way == "sigkill-worker":
        for pid in paused:
            os.kill(pid, signal.SIGKILL)
        return 0  # the worker that was waiting goes on, and steps in for the lost cells
    os.kill(proc.pid, signal.SIGKILL)  # sigkill-driver: no word to anyone
    return -signal.SIGKILL


def workers_of(stores):
    return {t.user_attrs["pid"] for t in stores.study().get_trials() if "pid" in t.user_attrs}


def stop_at(stores, way, seeds, points, stop=stop):
    """Starts the sweep with its faults at `points`, stops it `way` (by `stop`) once a process waits at each;
    (exit status, the status it should be, output, {point: the pid of the process paused there})."""
    log = stores.tmp / f"{'+'.join(points)}.log"
    proc = stores.start(seeds, points, log)
    markers = {p: stores.faults(points) / p for p in points}

    def all_paused():
        pids = {p: m.read_text() for p, m in markers.items() if m.exists()}
        return len(pids) == len(points) and all(pids.values()) and {p: int(v) for p, v in pids.items()}

    paused = wait_for(all_paused, proc, timeout=300, output=lambda: log.read_text()[-4000:])
    expected = stop(way, proc, list(paused.values()))
    rc = proc.wait(timeout=300)
    return rc, expected, log.read_text(), paused


def paused_trial(stores, pid):
    """The trial the paused process was running (its latest)."""
    return max((t for t in stores.study().get_trials() if t.user_attrs.get("pid") == pid), key=lambda t: t.number)


@pytest.mark.parametrize("way", ["sigint", "sigterm", "sigkill-worker", "sigkill-driver"])
def test_a_cell_stopped_at_every_point_leaves_nothing_running_and_the_same_command_resumes(
        way, tmp_path, empty_mlflow_db):
    # a worker more than the points stopped at once, for SIGKILL of workers: one waits, to step in
    stores = Stores(tmp_path, empty_mlflow_db, f"stop-{way}", workers=PER_STOP + (way == "sigkill-worker"))
    chain = groups(POINTS) if way != "sigkill-driver" else [("mid_epoch", "after_run_end")]
    for k, points in enumerate(chain):
        rc, expected, out, paused = stop_at(stores, way, range(k + 1), points)
        assert rc == expected, f"{way} at {points}:\n{out[-4000:]}"
        if way == "sigkill-driver":  # the workers see their driver gone within a heartbeat and stop
            deadline = time.time() + 30
            while time.time() < deadline and any(alive(p) for p in workers_of(stores)):
                time.sleep(0.2)
            assert not any(alive(p) for p in workers_of(stores)), out[-4000:]
        else:
            study, runs = agree(stores, f"{way} at {points}:\n{out[-4000:]}")
            assert not any(alive(p) for p in workers_of(stores)), out[-4000:]  # no worker outlives its driver
        for point, pid in paused.items():
            stopped_at(stores, way, point, pid, out)
    seeds = range(len(chain))
    final = subprocess.run(stores.command(seeds), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-4000:] + final.stderr[-3000:]
    study, runs = agree(stores, f"{way}, the final resume:\n{final.stdout[-4000:]}")
    once_each(study, CONFIGS * len(seeds))
    p = parent(runs)
    assert p.info.status == "FINISHED" and "end_reason" not in p.data.tags


def stopped_at(stores, way, point, pid, out):
    """What a stop `way` must leave of the cell that process `pid` was running, paused at `point`."""
    what = f"{way} at {point}:\n{out[-4000:]}"
    trial, runs = paused_trial(stores, pid), stores.runs()
    own = [r for r in runs if r.data.tags.get("trial") == str(trial.number)]
    if way == "sigkill-driver":
        if point == "after_run_end":  # its training had ended: told COMPLETE
            assert trial.state == TrialState.COMPLETE, what
        else:
            assert trial.state == TrialState.FAIL and trial.user_attrs["failure"] == "the sweep's driver died"
            [run] = own
            assert run.info.status == "KILLED" and run.data.tags["end_reason"] == "the sweep's driver died"
        assert parent(runs).info.status == "RUNNING"  # no one was left to end it: the resume does
        return
    if way == "sigkill-worker":
        assert parent(runs).info.status == "FINISHED", what  # the sweep went on to its end
        return
    why = "interrupted" if way == "sigint" else "terminated"
    assert f"\n{why}: " in out and "run the same command again to resume" in out, what
    p = parent(runs)
    assert p.info.status == "KILLED" and p.data.tags["end_reason"] == why, what
    if point == "after_run_end":  # its training had ended: told COMPLETE, its run FINISHED
        assert trial.state == TrialState.COMPLETE and [r.info.status for r in own] == ["FINISHED"], what
    else:
        assert trial.state == TrialState.FAIL and trial.user_attrs["failure"].startswith(why), what
        assert len(own) == (point != "before_run"), what  # no run before its creation
        assert all(r.info.status == "KILLED" and r.data.tags["end_reason"] == why for r in own), what
