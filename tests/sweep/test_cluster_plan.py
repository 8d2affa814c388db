"""The Ray launcher's plan, on `ray.nodes()`-shaped entries (no Ray started): worker slots per node and the
refusal of one machine's stores on a cluster of several."""

import pytest

from src.sweep import SweepError
from src.sweep.cluster import Slot, check_shared_stores, slots


def node(i, cpus, gpus=0, alive=True, ip="10.0.0.1"):
    r = {"CPU": float(cpus), "memory": 1e9, **({"GPU": float(gpus)} if gpus else {})}
    return {"NodeID": f"n{i}", "Alive": alive, "Resources": r, "NodeManagerAddress": ip}


def test_gpu_nodes_get_trials_per_gpu_workers_per_gpu_and_a_cpu_share_cpu_nodes_one_per_ray_cpus():
    nodes = [node(0, 4), node(1, 8, gpus=2), node(2, 16, gpus=1, alive=False), node(3, 3)]
    found = slots(nodes, per_gpu=2, cpus=2.0)
    assert found == [Slot("n0", 0, 2.0), Slot("n0", 1, 2.0),
                     *[Slot("n1", i, 2.0, 0.5) for i in range(4)],  # 2 GPUs x 2, 8 CPUs shared by 4
                     Slot("n3", 0, 2.0)]  # 3 CPUs hold one worker of 2; the dead node none
    assert slots([node(0, 1, gpus=1)], per_gpu=1, cpus=1.0) == [Slot("n0", 0, 1.0, 1.0)]
    assert slots([node(0, 0.5)], per_gpu=1, cpus=1.0) == []


def test_stores_on_one_disk_are_refused_when_the_cluster_spans_machines():
    one = [node(0, 2, ip="10.0.0.1"), node(1, 2, ip="10.0.0.1")]  # simulated nodes: one machine
    two = [node(0, 2, ip="10.0.0.1"), node(1, 2, ip="10.0.0.2")]
    check_shared_stores(one, "journal:/x/optuna.journal", "sqlite:////x/mlflow.db")
    check_shared_stores(two, "postgresql://lab:pw@db/optuna", "http://tracker:5000")
    with pytest.raises(SweepError, match="spans 2 machines.*journal.*PostgreSQL") as e:
        check_shared_stores(two, "journal:/x/optuna.journal", "http://tracker:5000")
    assert "pw" not in str(e.value)
    with pytest.raises(SweepError, match="MLflow store sqlite.*tracking server"):
        check_shared_stores(two, "postgresql://lab:pw@db/optuna", "sqlite:////x/mlflow.db")
    dead = [node(0, 2, ip="10.0.0.1"), node(1, 2, ip="10.0.0.2", alive=False)]
    check_shared_stores(dead, "journal:/x/optuna.journal", "sqlite:////x/mlflow.db")
