"""The sweep driver: check the space, open or resume the study, queue a design, run the workers,
write the report. Plain Python around Optuna; nothing imports this module but `__main__`.

    definition (definition.py) -> checked space (space.py) -> design (design.py) -> study (study.py)
      -> MLflow parent run (tracking.py) -> workers on their GPUs (placement.py), each with a frozen
      Job (worker.py) -> effects and report (effects.py, report.py)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from src.config import compose
from src.sweep import design as designs
from src.sweep import placement, report, space, worker
from src.sweep import study as studies
from src.sweep import tracking as sweep_tracking
from src.sweep.definition import Definition
from src.sweep.worker import Job


@dataclass
class Sweep:
    """A prepared sweep: its study is open and its parent run exists."""

    definition: Definition
    url: str
    study: object
    parent_run_id: str
    epochs: int
    tracking: dict
    resumed: bool
    recovered: list = field(default_factory=list)
    queued: int = 0
    design: list = field(default_factory=list)
    gpus: list = field(default_factory=list)  # the GPU of each worker (None: the CPU)

    def job(self, i: int = 0, workers: int = 1, gpu: str | None = None, inter_op: int = 0, gpu_share: int = 1) -> Job:
        return Job(definition=self.definition, url=self.url, parent_run_id=self.parent_run_id,
                   tracking=self.tracking, epochs=self.epochs, started=time.time(), worker=i, workers=workers,
                   inter_op=inter_op, gpu=gpu, gpu_share=gpu_share, design_size=len(self.design))


def prepare(d: Definition) -> Sweep:
    """Checks the space, opens or creates the study (refusing a different space under the same
    name), recovers dead trials, opens the MLflow parent run and queues the design."""
    from src.config import to_plain
    from src.config.validate import validate

    space.check(list(d.base), d.params, compose, validate)
    gpus = [None]
    if d.settings.workers > 1:
        gpus = placement.placement(d.settings.workers, placement.gpu_ids(), d.settings.trials_per_gpu)
    design = designs.points(d.settings, list(d.base), d.params, compose)
    base_cfg = compose(list(d.base) + space.structural_combinations(d.params)[0])
    epochs = int(base_cfg.train.epochs)
    url = studies.storage_url(d.settings.storage)
    study, storage, resumed, creator = studies.create_or_resume(d, url)
    recovered = studies.recover_stale(study, storage, d.settings)
    tracking_cfg = to_plain(base_cfg.tracking)
    parent = sweep_tracking.open_parent(d, study, url, creator, tracking_cfg, str(base_cfg.data.name))
    for t in recovered:
        sweep_tracking.kill_runs(t.user_attrs.get("mlflow_run_ids", []), "worker died")
    queued = studies.enqueue(study, design)
    return Sweep(d, url, study, parent, epochs, tracking_cfg, resumed, [t.number for t in recovered], queued,
                 design, gpus)


def _entry(job: Job, queue) -> None:
    try:
        queue.put(worker.main(job))
    except KeyboardInterrupt:
        queue.put({"error": None})


def run_workers(sw: Sweep) -> dict:
    """Runs the workers to the end; returns {"error": message} if the sweep gave up."""
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
    errors = [o["error"] for o in outcomes if o.get("error")]
    bad_exit = [p.name for p in procs if p.exitcode not in (0, None)]
    if bad_exit and not errors:
        print(f"warning: worker(s) {bad_exit} exited abnormally; their trials are recovered at the next start",
              file=sys.stderr)
    return {"error": errors[0]} if errors else {}


def run(sw: Sweep) -> int:
    """Runs the prepared sweep to the end and writes its report; the process exit code."""
    from src.redact import redact

    s = sw.definition.settings
    c = studies.counts(sw.study)
    state = (f"resuming study {s.name!r}: {c['finished']} of {s.trials} trials finished"
             if sw.resumed else f"new study {s.name!r}: {s.trials} trials")
    if sw.recovered:
        state += f"; trials {sw.recovered} had a dead worker: marked failed, their configs queued again"
    print(f"{state} ({s.sampler} sampler, {s.pruner} pruner, {s.workers} worker(s), {len(s.seeds)} seed(s) "
          f"each, storage {redact(sw.url)})", flush=True)
    if sw.design:
        print(f"design: {len(sw.design)} configurations x {len(s.seeds)} seeds; {sw.queued} queued now", flush=True)
        if s.trials > len(sw.design):
            print(f"note: the design has {len(sw.design)} configurations; sweep.trials={s.trials} samples the "
                  f"rest at random")
    if c["finished"] >= s.trials:
        print(f"the study already holds {c['finished']} finished trials (sweep.trials={s.trials}); "
              f"raise sweep.trials to run more")
    else:
        outcome = run_workers(sw)
        if outcome.get("error"):
            try:
                report.finish(sw.definition, sw.study, sw.parent_run_id, failed=outcome["error"])
            except Exception as e:  # noqa: BLE001 - e.g. the tracking server is the thing that is down
                print(f"error: {outcome['error']}\n(the report could not be written: "
                      f"{redact(str(e)).splitlines()[0][:300]})")
            return 1
    report.finish(sw.definition, sw.study, sw.parent_run_id)
    return 0
