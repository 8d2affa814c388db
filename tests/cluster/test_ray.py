"""Sweeps on Ray: a simulated cluster (ray.cluster_utils.Cluster: a head and nodes declaring GPUs, on this
machine) with a real PostgreSQL study, nodes removed and added while the sweep runs; and a sweep that
starts its own Ray instance, interrupted with Ctrl-C and resumed."""

import os
import signal
import subprocess
import sys
from collections import Counter

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from src.config.paths import ROOT
from tests.sweep.test_sweep import GRID, TINY
from tests.sweep.test_sweep import wait_for as wait_until

pytestmark = pytest.mark.slow


def start(args, log, **kw):
    return subprocess.Popen([sys.executable, "-m", "src.sweep", *TINY, *GRID, "sweep.launcher=ray", *args], cwd=ROOT,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def wait_for(predicate, proc, log, timeout=300):
    return wait_until(predicate, proc, timeout, output=lambda: log.read_text()[-5000:])


def running(study, **attrs):
    for t in study.get_trials(states=(TrialState.RUNNING,)):
        if t.user_attrs.get("mlflow_run_ids") and all(t.user_attrs.get(k) == v for k, v in attrs.items()):
            return t
    return None


def load(name, storage):
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def cell_runs(db):
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    c = mlflow.MlflowClient()
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()], max_results=1000)
    return [r for r in runs if r.data.tags.get("trial") is not None]


def once_each(study, cells):
    done = Counter((tuple(sorted(t.params.items())), t.user_attrs["seed"]) for t in study.get_trials()
                   if t.state == TrialState.COMPLETE)
    assert len(done) == cells and set(done.values()) == {1}, done
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_a_sweep_that_starts_ray_connects_once_for_all_its_blocks_and_stops_it_at_the_end():
    import ray

    from src.sweep import cluster

    env = {k: os.environ.pop(k) for k in ("RAY_ADDRESS",) if k in os.environ}
    try:
        assert cluster.connect("auto") is True  # none running: a local instance, started here
        assert ray.is_initialized() and len(ray.nodes()) == 1
        node = ray.get_runtime_context().get_node_id()
        # the next block of a sequential sweep: the same connection, still to the instance started here
        assert cluster.connect("auto") is True and ray.get_runtime_context().get_node_id() == node
        assert len(ray.nodes()) == 1
        cluster.close()
        assert not ray.is_initialized()
        cluster.close()  # nothing to close: no error
    finally:
        os.environ.update(env)


def test_every_cell_runs_once_while_nodes_leave_and_join(tmp_path, pg_db):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        gpu_nodes = [cluster.add_node(num_cpus=1, num_gpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        db, log = tmp_path / "mlflow.db", tmp_path / "sweep.log"
        proc = start(["sweep.name=cluster", "sweep.seeds=[0,1,2,3]", "sweep.trials_per_gpu=2", "sweep.heartbeat=1",
                      "sweep.grace=4", f"sweep.storage={pg_db}", f"sweep.ray_address={cluster.address}",
                      f"tracking.uri=sqlite:///{db}", f"tracking.artifact_root={tmp_path / 'artifacts'}"], log)
        victim = wait_for(lambda: (s := load("cluster", pg_db)) and running(s, node=gpu_nodes[0].node_id), proc, log)
        cluster.remove_node(gpu_nodes[0])  # a GPU node goes, mid-cell
        joined = cluster.add_node(num_cpus=1)  # a CPU node comes
        rc = proc.wait(timeout=900)
        out = log.read_text()
        assert rc == 0, out[-5000:]
    finally:
        cluster.shutdown()
    study = load("cluster", pg_db)
    once_each(study, 16)  # 4 configurations x 4 seeds, every cell once, the lost one again
    lost = study.get_trials()[victim.number]
    assert lost.state == TrialState.FAIL
    [retry] = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == victim.number]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["seed"] == victim.user_attrs["seed"]
    assert "was lost" in out and "joined: it gets workers" in out
    assert "(sweep-worker-0 pid=" in out and "COMPLETE: valid_auc" in out  # the workers' lines, on the driver
    runs = cell_runs(db)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 16
    nodes = Counter(r.data.tags["node"] for r in finished)
    assert nodes[joined.node_id] >= 1, nodes  # the node that joined took cells
    gpu_ids = {n.node_id for n in gpu_nodes}
    on_gpu = [r for r in finished if r.data.tags["node"] in gpu_ids]
    assert on_gpu and all(r.data.tags["gpu"] == "0" and r.data.tags["gpu_share"] == "2" for r in on_gpu)
    assert all(r.data.tags["gpu"] == "none" for r in finished if r.data.tags["node"] not in gpu_ids)


def test_a_sweep_starts_its_own_ray_and_ctrl_c_leaves_nothing_running(tmp_path):
    journal, db, log = tmp_path / "optuna.journal", tmp_path / "mlflow.db", tmp_path / "sweep.log"
    args = ["sweep.name=own", "sweep.seeds=[0,1]", f"sweep.storage=journal:{journal}", f"tracking.uri=sqlite:///{db}",
            f"tracking.artifact_root={tmp_path / 'artifacts'}"]

    def study():
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return load("own", JournalStorage(JournalFileBackend(str(journal)))) if journal.exists() else None

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = start(args, log, env=env)
    wait_for(lambda: (s := study()) and running(s), proc, log)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the driver's whole process group
    rc = proc.wait(timeout=300)
    out = log.read_text()
    assert rc == 130, out[-5000:]
    assert "a local Ray instance started for this sweep" in out and "cancelling" in out
    s = study()
    assert not s.get_trials(states=(TrialState.RUNNING,))
    assert any("interrupted" in t.user_attrs.get("failure", "") for t in s.get_trials(states=(TrialState.FAIL,)))
    assert not [r for r in cell_runs(db) if r.info.status == "RUNNING"]
    again = subprocess.run([sys.executable, "-m", "src.sweep", *TINY, *GRID, "sweep.launcher=ray", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0, again.stdout[-5000:] + again.stderr[-3000:]
    assert "resuming study 'own'" in again.stdout
    once_each(study(), 8)

