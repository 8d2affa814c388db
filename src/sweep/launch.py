"""Launchers: how a sweep's workers start. The local one (the default) runs worker processes on this
machine, each on the GPU that placement.py gives it; the Ray one (sweep.launcher=ray, cluster.py) runs
them as Ray tasks on every node of a Ray cluster."""

from __future__ import annotations

import os
import sys

from src.sweep import worker
from src.sweep.worker import Job


def _entry(job: Job, queue) -> None:
    try:
        queue.put(worker.main(job))
    except KeyboardInterrupt:
        queue.put({"error": None})


def run_workers(sw) -> dict:
    """Runs the workers to the end, with the sweep's launcher; returns {"error": message} if the sweep gave up
    (a worker's outcome: with "outage": True when the tracking server could not be reached)."""
    if sw.definition.settings.launcher == "ray":
        from src.sweep import cluster

        return cluster.run_workers(sw)
    return local_workers(sw)


def close(sw) -> None:
    """At the end of the sweep (done, given up or interrupted): what the launcher holds is let go."""
    if sw.definition.settings.launcher == "ray":
        from src.sweep import cluster

        cluster.close()


def local_workers(sw) -> dict:
    """Worker processes on this machine (one: in this process); {"error": message} if the sweep gave up."""
    s = sw.definition.settings
    n = s.workers
    if n == 1:
        job = sw.job()
        print(job.placement, flush=True)
        return worker.main(job)
    import multiprocessing as mp

    where = sw.gpus
    inter_op = max(1, (os.cpu_count() or 1) // n)
    shares = {g: where.count(g) for g in set(where) if g is not None}
    jobs = [sw.job(i, n, g, inter_op, shares.get(g, 1)) for i, g in enumerate(where)]
    for job in jobs:
        print(job.placement, flush=True)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_entry, args=(job, queue), name=f"sweep-worker-{i}") for i, job in enumerate(jobs)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=60)
        raise
    outcomes = []
    while not queue.empty():
        outcomes.append(queue.get())
    errors = [o for o in outcomes if o.get("error")]
    bad_exit = [p.name for p in procs if p.exitcode not in (0, None)]
    if bad_exit and not errors:
        print(f"warning: worker(s) {bad_exit} exited abnormally; their trials are recovered at the next start",
              file=sys.stderr)
    return errors[0] if errors else {}
