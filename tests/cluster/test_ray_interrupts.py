"""The Ray launcher's half of the interrupt matrix (tests/sweep/test_interrupts.py holds the local one): a cell
stopped at each named point of its life (src/run/faults.py) by Ctrl-C to the driver (which cancels its Ray
tasks with ray.cancel), SIGTERM to the driver, SIGKILL of a Ray worker process, and its Ray node removed.
After every stop nothing is RUNNING in the study or the tracking store, the parent run included, and the two
agree; the same command resumes, and in the end every cell is complete exactly once.

The sweeps run on one simulated cluster (ray.cluster_utils.Cluster): a head with no CPUs, so every worker
runs on a node that can be removed, and two one-CPU nodes (a removed one is replaced). As in the local
matrix, each sweep stops two cells at once, its two workers paused at two points."""

import os
import signal
import subprocess
import time

import pytest
from optuna.trial import TrialState

from src.config.paths import ROOT
from src.run.faults import POINTS
from tests.sweep import test_interrupts as local

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            c.add_node(num_cpus=1)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


def stopper(cluster, stores):
    def stop(way, proc, paused):
        """Stops the sweep `proc` while the Ray workers `paused` wait at fault points; the exit status it
        should end with."""
        if way == "sigint":
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the driver cancels its tasks (ray.cancel)
            return 130
        if way == "sigterm":
            os.kill(proc.pid, signal.SIGTERM)
            return 143
        if way == "sigkill-worker":
            for pid in paused:
                os.kill(pid, signal.SIGKILL)
            return 0  # the launcher starts a new worker on each slot, the study queues the lost cells again
        for pid in paused:  # node-removed: each paused worker's node goes
            node = local.paused_trial(stores, pid).user_attrs["node"]
            [gone] = [n for n in cluster.worker_nodes if n.node_id == node]
            cluster.remove_node(gone)
            cluster.add_node(num_cpus=1)  # and another comes, for the next stop
        return 0
    return stop


def gone(pids, timeout=60):
    """Whether every process in `pids` has ended within `timeout` seconds (Ray ends a job's workers soon
    after its driver, not at once)."""
    deadline = time.time() + timeout
    while time.time() < deadline and any(local.alive(p) for p in pids):
        time.sleep(0.2)
    return not any(local.alive(p) for p in pids)


@pytest.mark.parametrize("way", ["sigint", "sigterm", "sigkill-worker", "node-removed"])
def test_a_ray_cell_stopped_at_every_point_leaves_nothing_running_and_the_same_command_resumes(
        way, cluster, tmp_path, empty_mlflow_db):
    stores = local.Stores(tmp_path, empty_mlflow_db, f"ray-{way}",
                          ["sweep.launcher=ray", f"sweep.ray_address={cluster.address}"])
    stop = stopper(cluster, stores)
    chain = local.groups(POINTS)
    for k, points in enumerate(chain):
        rc, expected, out, paused = local.stop_at(stores, way, range(k + 1), points, stop)
        what = f"{way} at {points}:\n{out[-4000:]}"
        assert rc == expected, what
        assert gone(local.workers_of(stores)), what  # no worker outlives its driver (nor its node)
        study, runs = local.agree(stores, what)
        for point, pid in paused.items():
            stopped_at(study, runs, way, point, local.paused_trial(stores, pid), out)
    seeds = range(len(chain))
    final = subprocess.run(stores.command(seeds), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-4000:] + final.stderr[-3000:]
    study, runs = local.agree(stores, f"{way}, the final resume:\n{final.stdout[-4000:]}")
    local.once_each(study, local.CONFIGS * len(seeds))
    p = local.parent(runs)
    assert p.info.status == "FINISHED" and "end_reason" not in p.data.tags


def stopped_at(study, runs, way, point, trial, out):
    """What a stop `way` must leave of `trial`, whose worker was paused at `point` (`out`: what the sweep
    printed)."""
    what = f"{way} at {point}:\n{out[-4000:]}"
    if way in ("sigkill-worker", "node-removed"):
        assert local.parent(runs).info.status == "FINISHED", what  # the sweep went on to its end
        assert trial.state == TrialState.FAIL, what  # the lost cell, failed and trained again
        [retry] = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == trial.number]
        assert retry.state == TrialState.COMPLETE, what
        return
    why = "interrupted" if way == "sigint" else "terminated"
    assert f"\n{why}: " in out and "cancelling" in out and "run the same command again to resume" in out, what
    p = local.parent(runs)
    assert p.info.status == "KILLED" and p.data.tags["end_reason"] == why, what
    own = [r for r in runs if r.data.tags.get("trial") == str(trial.number)]
    if point == "after_run_end":  # its training had ended: told COMPLETE, its run FINISHED
        assert trial.state == TrialState.COMPLETE and [r.info.status for r in own] == ["FINISHED"], what
    else:  # ray.cancel reaches the cell as a Ctrl-C, whatever stopped the driver
        assert trial.state == TrialState.FAIL and trial.user_attrs["failure"].startswith("interrupted"), what
        assert len(own) == (point != "before_run"), what
        assert all(r.info.status == "KILLED" and r.data.tags["end_reason"] == "interrupted" for r in own), what
