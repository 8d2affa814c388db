"""Launchers: how a sweep's workers start. The local one (the default) runs worker processes on this
machine, each on the GPU that placement.py gives it; the Ray one (sweep.launcher=ray, cluster.py) runs
them as Ray tasks on every node of a Ray cluster."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

from src.run import interrupts
from src.sweep import worker
from src.sweep.worker import Ended, Job

STOP_WAIT_S = 60  # how long stopped workers get to end their runs and tell their trials, then are killed
SIGINT_WAIT_S = 5  # after a Ctrl-C, how long before a worker that is still running gets it from the driver


def _entry(job: Job, queue) -> None:
    with interrupts.stoppable():
        try:
            queue.put(worker.main(job))
        except KeyboardInterrupt:
            if not job.driver_gone():  # no one would read it
                queue.put(Ended())


def run_workers(sw) -> Ended:
    """Runs the workers to the end, with the sweep's launcher; an `Ended` with its error if the sweep gave up."""
    if sw.definition.settings.launcher == "ray":
        from src.sweep import cluster

        return cluster.run_workers(sw)
    return local_workers(sw)


def close(sw) -> None:
    """At the end of the sweep (done, given up or interrupted): what the launcher holds is let go."""
    if sw.definition.settings.launcher == "ray":
        from src.sweep import cluster

        cluster.close()


def local_workers(sw) -> Ended:
    """Worker processes on this machine (one: in this process); an `Ended` with its error if the sweep gave up."""
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
    jobs = [dataclasses.replace(sw.job(i, n, g, inter_op, shares.get(g, 1)), driver_pid=os.getpid())
            for i, g in enumerate(where)]
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
    except KeyboardInterrupt as e:
        stop_workers(procs, signal.SIGTERM if interrupts.terminated(e) else signal.SIGINT)
        raise
    outcomes = []
    while not queue.empty():
        outcomes.append(queue.get())
    errors = [o for o in outcomes if o.error]
    bad_exit = [p.name for p in procs if p.exitcode not in (0, None)]
    if bad_exit and not errors:
        print(f"warning: worker(s) {bad_exit} exited abnormally; their trials are recovered at the next start",
              file=sys.stderr)
    return errors[0] if errors else Ended()


def stop_workers(procs, signum) -> None:
    """The driver was stopped: the workers get STOP_WAIT_S seconds to end their runs KILLED and tell their
    trials, then one still alive is killed (its trial is recovered as a dead worker's). A SIGTERM reached the
    driver alone: the workers get it at once. A Ctrl-C reached the whole process group: a worker that has
    not ended after SIGINT_WAIT_S gets it again (a `kill -INT` of the driver alone), not at once, since a
    second Ctrl-C stops a training wherever it is."""
    import time

    with interrupts.atomic():
        deadline = time.time() + STOP_WAIT_S
        if signum == signal.SIGINT:
            until = time.time() + SIGINT_WAIT_S
            for p in procs:
                p.join(timeout=max(0.0, until - time.time()))
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signum)
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.time()))
        late = [p for p in procs if p.is_alive()]
        for p in late:
            p.kill()
            p.join(timeout=10)
        if late:
            print(f"{len(late)} worker(s) did not stop within {STOP_WAIT_S}s and were killed; their trials are "
                  f"recovered now", file=sys.stderr, flush=True)
