"""`python -m src.bench ray [--nodes 1,2,4] [--seeds 3]`: what the Ray launcher costs and gains.

For each node count, a simulated Ray cluster on this machine (ray.cluster_utils.Cluster: a head
without CPUs, then N nodes of one CPU each, so N workers) runs the same tiny synthetic designed sweep
(4 configurations x SEEDS seeds, one epoch, a journal study and an SQLite MLflow store in a temp dir)
through `python -m src.sweep ... sweep.launcher=ray`. Printed per node count:

    cells/min      cells over the span from the first cell's start to the last cell's end
    start-up       driver start to the first cell's start (Ray workers placed, processes and TF started)
    training       a cell's MLflow run, start to end (fit, evaluation, metrics and artifacts logged)
    around it      a cell's Optuna trial less its run: ask, sampling, composition, the data (no cache
                   here) and the model built, tell, heartbeat, run tags
    idle           per cell, worker time not spent in a trial over the span: what the launcher's
                   scheduling and waiting cost, with start-up the launcher's own share

Ray listens beyond loopback unless its network namespace has loopback alone: the benchmark runs
itself in one (src/tools/netns.py) when it is not in one already. The machine's load is printed with
the figures.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from src.config.paths import ROOT
from src.sweep import attrs
from src.sweep.tracking import run_seconds
from src.tools import netns

SWEEP = ["sweep=tiny", "sweep.sampler=grid", "sweep.pruner=none", "model=din", "~model/evolution",
         "~train.optimizer.lr", "model.mlp.depth=choice(1,2)", "model/activation=choice(sigmoid,dice)",
         "train.epochs=1", "data.cache=false", "sweep.launcher=ray"]


def measure(nodes: int, seeds: int, tmp: Path) -> dict:
    """One sweep on a cluster of `nodes` one-CPU nodes; its figures."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState
    from ray.cluster_utils import Cluster

    name, journal, db = f"bench-ray-{nodes}", tmp / f"optuna-{nodes}.journal", tmp / f"mlflow-{nodes}.db"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        cmd = [sys.executable, "-m", "src.sweep", *SWEEP, f"sweep.name={name}",
               f"sweep.seeds=[{','.join(map(str, range(seeds)))}]", f"sweep.ray_address={cluster.address}",
               f"sweep.storage=journal:{journal}", f"tracking.uri=sqlite:///{db}",
               f"tracking.artifact_root={tmp / 'artifacts'}"]
        t0 = time.time()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        wall = time.time() - t0
    finally:
        cluster.shutdown()
    if out.returncode != 0:
        raise RuntimeError(f"the sweep on {nodes} node(s) failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    study = optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(journal))))
    trials = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    runs = run_seconds(f"sqlite:///{db}")
    first = min(t.datetime_start.timestamp() for t in trials)
    span = max(t.datetime_complete.timestamp() for t in trials) - first
    trial_s = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    run_s = [sum(runs[i] for i in attrs.MLFLOW_RUN_IDS.get(t)) for t in trials]
    return {"nodes": nodes, "workers": nodes, "cells": len(trials), "wall_s": wall, "span_s": span,
            "cells_per_min": 60 * len(trials) / span, "startup_s": first - t0,
            "training_s": statistics.fmean(run_s), "bookkeeping_s": statistics.fmean(t - r for t, r in zip(trial_s,
                                                                                                          run_s)),
            "idle_s": (nodes * span - sum(trial_s)) / len(trials)}


def bench(a) -> dict:
    if not netns.loopback_only():
        print("(running in a loopback-only network namespace: Ray listens beyond loopback anywhere else)",
              flush=True)
        cmd = netns.wrap([sys.executable, "-m", "src.bench", "ray", "--nodes", a.nodes, "--seeds", str(a.seeds)])
        code = subprocess.call(cmd, cwd=ROOT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        if code:
            raise SystemExit(code)
        return {}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    counts = [int(n) for n in a.nodes.split(",")]
    load = os.getloadavg()[0]
    print(f"Ray launcher: tiny synthetic sweep of 4 configurations x {a.seeds} seeds, one-CPU nodes "
          f"{counts}, on {os.cpu_count()} cores; load average before {load:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dil-bench-ray-") as tmp:
        for n in counts:
            r = measure(n, a.seeds, Path(tmp))
            rows.append(r)
            print(f"  {n} node(s): {r['cells']} cells in {r['span_s']:.1f}s = {r['cells_per_min']:.1f} cells/min; "
                  f"start-up {r['startup_s']:.1f}s; per cell: training {r['training_s']:.2f}s, around it "
                  f"{r['bookkeeping_s']:.2f}s, idle {r['idle_s']:.2f}s", flush=True)
    base = rows[0]["cells_per_min"]
    print(f"\n| nodes | cells/min | x {counts[0]} node(s) | start-up s | training s/cell | around it s/cell | "
          f"around / training | idle s/cell |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['nodes']} | {r['cells_per_min']:.1f} | {r['cells_per_min'] / base:.2f} | {r['startup_s']:.1f} | "
              f"{r['training_s']:.2f} | {r['bookkeeping_s']:.2f} | {r['bookkeeping_s'] / r['training_s']:.1%} | "
              f"{r['idle_s']:.2f} |")
    print(f"load average after {os.getloadavg()[0]:.2f} (before {load:.2f}); {os.cpu_count()} cores, so more "
          f"one-CPU nodes than cores share them")
    print(json.dumps({"ray": rows}))
    return {"ray": rows}
