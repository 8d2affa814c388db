"""The sweep driver: check the space, open or resume the study, queue a design, run the workers,
write the report. Plain Python around Optuna; nothing imports this module but `__main__`.

    definition (definition.py) -> checked space (space.py) -> design (design.py) -> study (study.py)
      -> MLflow parent run (tracking.py) -> workers on their GPUs (placement.py), each with a frozen
      Job (worker.py) -> the answer (answer.py, on src/answer/) and the report (report.py)
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from src.answer import best, decision, summary
from src.answer.effects import key as config_key
from src.config import compose
from src.run import interrupts
from src.sweep import SweepError, answer, attrs, launch, placement, report, space, worker
from src.sweep import design as designs
from src.sweep import study as studies
from src.sweep import tracking as sweep_tracking
from src.sweep.definition import Definition
from src.sweep.worker import Job

if TYPE_CHECKING:
    import optuna


@dataclass(kw_only=True)
class Sweep:
    """A prepared sweep: its study is open and its parent run exists."""

    definition: Definition
    url: str                                    # the study's storage URL (resolved)
    study: optuna.Study
    parent_run_id: str                          # the sweep's MLflow parent run
    epochs: int                                 # train.epochs of the base config (pruning steps per seed)
    tracking: dict                              # the resolved `tracking` config, for the workers
    resumed: bool                               # the study existed before this invocation
    recovered: list = field(default_factory=list)  # trials of dead workers this start marked failed
    queued: int = 0                             # cells this start queued
    design: list = field(default_factory=list)  # the configurations of a designed sweep, or of a sampled race
    seeds: list = field(default_factory=list)   # the seeds whose cells are queued (designed sweeps, races)
    gpus: list = field(default_factory=list)    # the GPU of each worker (None: the CPU)
    started: float = field(default_factory=time.time)
    storage: object = None                      # the study's storage as opened (it says whether it beats)
    closed: int = 0                             # runs the start's reconciliation ended
    ended: dict = field(default_factory=dict)   # block -> how many of the seeds it holds: its questions were all
                                                # decided then, and it gets no more (sweep.block, until=decided)
    look_seconds: float = 0.0                   # how long the last look took (its answer, report and logging)
    dropped: dict = field(default_factory=dict)  # configuration (design.race_key) -> the seeds it holds: racing
                                                 # (sweep.until=best) showed it worse than another
    searched: int = 0                            # a sampled race's search: its finished trials (RACE)

    @property
    def cells(self) -> int:
        """The (configuration, seed) cells queued so far, a design's or a sampled race's; 0 for a search."""
        return len(self.queued_cells())

    def queued_cells(self) -> list[tuple[dict, int]]:
        return designs.cells(self.design, self.seeds, self.definition.settings.block, self.ended, self.dropped)

    def open_points(self) -> list[dict]:
        """The configurations that another seed would train: those of the blocks not ended, not dropped."""
        block = self.definition.settings.block
        return [p for p in self.design if designs.block_of(p, block) not in self.ended
                and designs.race_key(p, block) not in self.dropped]

    def race(self, sets: list) -> tuple[int, int]:
        """Racing (sweep.until=best): drops the configurations that the best sets (src/answer/best.py) no longer
        hold, at the seeds they hold, and ends the blocks whose set is decided; (configurations still racing,
        configurations in all)."""
        block = self.definition.settings.block
        kept = {designs.race_key({}, levels=m.levels, block_name=b.block) for b in sets for m in b.members}
        decided = {b.block or "" for b in sets if b.verdict != "undecided"}
        for p in self.design:
            k = designs.race_key(p, block)
            if k not in kept and k not in self.dropped:
                self.dropped[k] = len(self.seeds)
            if designs.block_of(p, block) in decided and block and designs.block_of(p, block) not in self.ended:
                self.ended[designs.block_of(p, block)] = len(self.seeds)
        attrs.DROPPED.set(self.study, self.dropped)
        if block:
            attrs.ENDED_BLOCKS.set(self.study, self.ended)
        return len(self.open_points()), len(self.design)

    def end_decided_blocks(self, records: list) -> list[str]:
        """Ends the blocks whose questions are now all decided, at the seeds they hold; returns their names."""
        verdicts: dict[str, list] = {}
        for r in records:
            verdicts.setdefault(r.block, []).append(r.verdict)
        now = [b for b, v in verdicts.items() if b and b not in self.ended and "undecided" not in v]
        if now:
            self.ended.update({b: len(self.seeds) for b in now})
            attrs.ENDED_BLOCKS.set(self.study, self.ended)
        return now

    @property
    def target(self) -> int:
        """Finished trials the study should hold: the design's cells (more only if sweep.trials asks), or
        sweep.trials for a sampled sweep (once it races, its search's and then its race's cells)."""
        s = self.definition.settings
        if s.designed:
            return max(self.cells, s.trials or 0)
        return self.searched + self.cells if self.design else s.trials

    def job(self, i: int = 0, workers: int = 1, gpu: str | None = None, inter_op: int = 0, gpu_share: int = 1) -> Job:
        return Job(definition=self.definition, url=self.url, parent_run_id=self.parent_run_id,
                   tracking=self.tracking, epochs=self.epochs, started=self.started, worker=i, workers=workers,
                   inter_op=inter_op, gpu=gpu, gpu_share=gpu_share, target=self.target, design_cells=self.cells,
                   searched=self.searched)

    def add_seeds(self, seeds: list[int]) -> int:
        """Queues the design's cells for more seeds (a block); returns how many were queued."""
        self.seeds = list(dict.fromkeys([*self.seeds, *seeds]))  # in order, each seed once
        attrs.SEEDS.set(self.study, self.seeds)
        return studies.enqueue(self.study, self.queued_cells())


def warm_data(d: Definition) -> None:
    """Builds (or finds in the cache) the data set of each top-level combination once, before any worker
    starts: several workers would otherwise build the same cache at the same time, and a missing or
    malformed data file is reported before the study exists."""
    import json

    from src.config import to_plain
    from src.data import load_data

    seen = set()
    for combo in space.structural_combinations(d.params):
        data_cfg = to_plain(compose(list(d.base) + combo).data)
        key = json.dumps(data_cfg, sort_keys=True, default=str)
        if key not in seen and data_cfg.get("cache", True):
            seen.add(key)
            load_data(data_cfg, progress=lambda m: print(m, flush=True))


def check_tracking(uri: str | None) -> None:
    """A tracking server must accept this process's credentials before the study exists or data is built.

    Raises:
        SweepError: the server refused them or cannot be reached (one line, from the logger's check).
    """
    from src.run.logger import AccessError, check_access, resolve_uri

    try:
        check_access(resolve_uri(uri))
    except AccessError as e:
        raise SweepError(str(e)) from None


def prepare(d: Definition) -> Sweep:
    """Checks the space, opens or creates the study (refusing a different space under the same
    name), recovers dead trials, opens the MLflow parent run and queues the design's cells."""
    from src.config import to_plain
    from src.config.validate import validate

    if d.settings.launcher == "ray" and importlib.util.find_spec("ray") is None:
        raise SweepError("sweep.launcher=ray needs Ray, which is not installed here: pip install -e '.[ray]' "
                         "(make install installs it)")
    space.check(list(d.base), d.params, compose, validate)
    base_cfg = compose(list(d.base) + space.structural_combinations(d.params)[0])
    check_tracking(base_cfg.tracking.get("uri"))
    if d.settings.launcher == "ray":  # a cluster that refuses this driver is refused before the study exists
        from src.sweep import cluster

        cluster.connect(d.settings.ray_address)
    warm_data(d)
    gpus = [None]
    if d.settings.launcher == "local" and d.settings.workers > 1:
        gpus = placement.placement(d.settings.workers, placement.gpu_ids(), d.settings.trials_per_gpu)
    design = designs.points(d.settings, list(d.base), d.params, compose)
    epochs = int(base_cfg.train.epochs)
    url = studies.storage_url(d.settings.storage)
    study, storage, resumed, creator = studies.create_or_resume(d, url)
    tracking_cfg = to_plain(base_cfg.tracking)
    # from the parent's (re)opening to the end of the start, an interrupt waits: the sweep that is
    # stopped then has a parent run to end KILLED
    with interrupts.atomic():
        parent = sweep_tracking.open_parent(d, study, url, creator, tracking_cfg, str(base_cfg.data.name))
        sw = Sweep(definition=d, url=url, study=study, parent_run_id=parent, epochs=epochs, tracking=tracking_cfg,
                   resumed=resumed, design=design, gpus=gpus, storage=storage)
        sw.closed = reconcile(sw)  # recovers dead workers' trials first (sw.recovered)
        sw.queued = queue_cells(sw)
    return sw


def queue_cells(sw: Sweep) -> int:
    """Queues the cells the study should hold (a design's, or a sampled sweep's race once its search is done),
    with what a resume keeps; returns how many were queued."""
    d, study = sw.definition, sw.study
    if d.settings.designed:
        # the seeds given, then any a sequential sweep added before (a resume keeps its blocks of seeds, and
        # a block of the design whose questions were all decided keeps the seeds it had)
        sw.ended = dict(attrs.ENDED_BLOCKS.get(study))
        sw.dropped = dict(attrs.DROPPED.get(study))
        return sw.add_seeds(list(d.settings.seeds) + list(attrs.SEEDS.get(study)))
    if race := attrs.RACE.get(study):  # a sampled sweep that raced before: its race goes on where it was
        sw.design, sw.searched = list(race["points"]), int(race["searched"])
        sw.dropped = dict(attrs.DROPPED.get(study))
        return sw.add_seeds(list(attrs.SEEDS.get(study)))
    return 0


def reconcile(sw: Sweep) -> int:
    """Dead workers' trials marked failed (their cells queued again), then the tracking store made to
    agree with the study (tracking.reconcile); returns how many runs were ended."""
    for t in studies.recover_stale(sw.study, sw.storage, sw.definition.settings):
        sw.recovered.append(t.number)
    return sweep_tracking.reconcile(sw.study, sw.parent_run_id)


def stopped(sw: Sweep, exc: KeyboardInterrupt) -> str:
    """After Ctrl-C or SIGTERM, once the workers have stopped: the stores made to agree and the parent run
    ended KILLED with why; returns the line that says so."""
    why = interrupts.reason(exc)
    with interrupts.atomic():
        closed = reconcile(sw)
        sweep_tracking.end_parent(sw.parent_run_id, "KILLED", why)
    failed = sum(worker.stopped(t) for t in sw.study.get_trials(deepcopy=False)
                 if t.datetime_complete and t.datetime_complete.timestamp() >= sw.started)
    return (f"{why}: {failed} running trial(s) marked failed, {closed} run(s) closed by the reconciliation, the "
            f"sweep's parent run ended KILLED; run the same command again to resume")


def _header(sw: Sweep) -> None:
    from src.redact import redact

    s = sw.definition.settings
    c = studies.counts(sw.study)
    state = (f"resuming study {s.name!r}: {c.finished} of {sw.target} trials finished"
             if sw.resumed else f"new study {s.name!r}: {sw.target} trials")
    if sw.recovered:
        state += f"; trials {sw.recovered} had a dead worker: marked failed, their cells queued again"
    if sw.closed:
        state += f"; {sw.closed} run(s) left open by a stopped sweep were ended KILLED"
    workers = f"{s.workers} worker(s)" if s.launcher == "local" else (
        f"Ray workers at {s.ray_address}" + (f", at most {s.workers}" if s.workers else ""))
    seeds = f"{len(sw.seeds)} seed(s) per configuration" if s.designed else f"{len(s.seeds)} seed(s) per trial"
    print(f"{state} ({s.sampler} sampler, {s.pruner} pruner, {workers}, {seeds}, storage "
          f"{redact(sw.url)})", flush=True)
    if sw.design and not s.designed:
        print(f"racing: the search's top {len(sw.design)} configurations (of {sw.searched} trials) on seeds "
              f"{sw.seeds}; {sw.queued} trainings queued now; then blocks of {s.add_seeds} seed(s) for those still "
              f"in the best set, until it is decided or {budget(sw)} trainings", flush=True)
        if sw.dropped:
            print(f"racing: {len(sw.dropped)} configuration(s) left the best set before and get no more seeds",
                  flush=True)
        if s.trials > sw.searched:
            print(f"note: sweep.trials={s.trials} is past the {sw.searched} trials this race started from; the race "
                  f"keeps its configurations (a new study name searches again)", flush=True)
    elif s.until == "best" and not s.designed:
        print(f"then racing: the top {s.race_top} configurations by mean, on fresh seeds, until the best set is "
              f"decided or {s.budget or 4 * s.race_top * race_seeds(s)} trainings (sweep.race_top)", flush=True)
    if sw.design and s.designed:
        print(f"design: {len(sw.design)} configurations x {len(sw.seeds)} seeds = {sw.cells} cells, one trial "
              f"each; {sw.queued} queued now" + (f"; then blocks of {s.add_seeds} seed(s) until every question is "
                                                  f"decided or {budget(sw)} trainings" if s.until == "decided"
                                                  else f"; then blocks of {s.add_seeds} seed(s) for the "
                                                  f"configurations still in the best set, until it is decided or "
                                                  f"{budget(sw)} trainings (racing)" if s.until == "best"
                                                  else ""), flush=True)
        fixed = answer.fix_plan(sw.definition, sw.study, budget(sw) // len(sw.design) if s.until != "design"
                                else len(sw.seeds))  # before any look
        if fixed:
            print(f"plan: looks up to {fixed.last} seeds per configuration use a group-sequential boundary at "
                  f"{fixed.share:.0%} of each question's error, later ones the anytime-valid sequence alone "
                  f"(sweep.plan; docs/answer.md)", flush=True)
        if note := answer.plan_note(sw.definition, fixed):
            print(note, flush=True)
        for b, n in sw.ended.items():
            print(f"{b}: every question of this block was decided at {n} seed(s); it gets no more seeds", flush=True)
        if sw.dropped:
            print(f"racing: {len(sw.dropped)} configuration(s) left the best set before and get no more seeds",
                  flush=True)
        if s.trials and s.trials > sw.cells:
            print(f"note: the design has {sw.cells} cells; sweep.trials={s.trials} samples the rest at random, "
                  f"outside the design (the report says so)")
        if s.pruner != "none":
            print(f"note: sweep.pruner={s.pruner} may stop cells of the design early; pruned cells leave holes "
                  f"that the report counts")


def budget(sw: Sweep) -> int:
    """The most trainings a sequential sweep may spend: sweep.budget, or 4 times its first block (a sampled
    race's cells: its search is apart)."""
    s = sw.definition.settings
    return s.budget or 4 * len(sw.design) * (len(s.seeds) if s.designed else race_seeds(s))


def design_size(sw: Sweep) -> int:
    """The configurations in the design for the answer; 0 for a sampled sweep, raced or not."""
    return len(sw.design) if sw.definition.settings.designed else 0


def race_seeds(s) -> int:
    """Seeds in a sampled race's first block: the sweep's seeds, at least two (a comparison needs a spread)."""
    return max(2, len(s.seeds))


def race_points(rows: list, direction: str, top: int) -> list[dict]:
    """A sampled sweep's top configurations by their mean over the search's complete trials, best first."""
    from statistics import fmean

    groups: dict[str, list] = {}
    for r in rows:
        if r.state == "COMPLETE" and r.seed is None and r.value is not None:
            groups.setdefault(config_key(r.params), [r.params, []])[1].append(r.value)
    sign = -1 if direction == "maximize" else 1
    return [p for p, _ in sorted(groups.values(), key=lambda g: sign * fmean(g[1]))[:top]]


def _start_race(sw: Sweep) -> bool:
    """After a sampled sweep's search (sweep.until=best): queues its top configurations on fresh seeds (the
    search's own values chose them, so the best set reads the new cells alone); False if there is nothing to
    race."""
    s = sw.definition.settings
    finished = studies.counts(sw.study).finished
    if finished < s.trials:
        print(f"racing waits for the search: {finished} of {s.trials} trials finished (run the same command again "
              f"to go on)", flush=True)
        return False
    top = race_points(studies.rows(sw.study), s.direction, s.race_top)
    if len(top) < 2:
        print(f"racing needs two configurations; the search completed {len(top)}: nothing to race", flush=True)
        return False
    start = max(s.seeds) + 1
    seeds = list(range(start, start + race_seeds(s)))
    sw.design, sw.searched = top, finished
    attrs.RACE.set(sw.study, {"points": top, "searched": finished, "first": len(seeds)})
    queued = sw.add_seeds(seeds)
    print(f"racing: the top {len(top)} configurations of the search by mean, on fresh seeds {seeds} ({queued} "
          f"trainings); then blocks of {s.add_seeds} seed(s) for those still in the best set, until it is decided "
          f"or {budget(sw)} trainings:", flush=True)
    for p in top:
        print(f"  {best.name(p)}", flush=True)
    return True


def _workers_then_report_failure(sw: Sweep) -> bool:
    """Runs the workers until the study holds its target; False (the report written) if the sweep gave up."""
    from src.redact import redact

    if studies.counts(sw.study).finished >= sw.target:
        return True
    outcome = launch.run_workers(sw)
    if not outcome.error:
        return True
    if outcome.outage:  # the report goes to the parent run, on the server that is down: not tried
        print(f"error: {outcome.error}\n(no report now: it is logged to the sweep's parent run on that server; "
              f"the resumed sweep writes it)", flush=True)
        return False
    try:
        report.finish(sw.definition, sw.study, sw.parent_run_id, failed=outcome.error)
    except Exception as e:  # noqa: BLE001 - e.g. the tracking server is the thing that is down
        print(f"error: {outcome.error}\n(the report could not be written: "
              f"{redact(str(e)).splitlines()[0][:300]})")
    return False


def _another_block(sw: Sweep, t0: float, cells0: int) -> bool:
    """After a look of a sequential sweep: prints and logs it, then queues the next block of seeds, or says
    why the sweep stops."""
    s = sw.definition.settings
    per_cell, per_block = _timing(sw, time.time() - t0, studies.counts(sw.study).finished - cells0)
    looked = time.time()
    ans = answer.build(sw.definition, sw.study, studies.rows(sw.study), budget(sw), design_size(sw))
    summary.print_look(ans)
    sweep_tracking.log_look(sw.parent_run_id, ans.runs, summary.text(ans), summary.plan_figure(ans))
    sw.look_seconds = time.time() - looked
    if s.until == "best":  # racing: seeds go to the configurations the best set still holds
        racing, total = sw.race(ans.best)
        verdicts, what, done = [b.verdict for b in ans.best], "the best configuration is undecided", (
            "the best configuration is decided (" + ", ".join(b.verdict for b in ans.best) + ")")
        print(f"racing: {racing} of {total} configurations are still in the best set; the others get no more "
              f"seeds" if racing < total else f"racing: all {total} configurations are still in the best set",
              flush=True)
    else:
        for b in sw.end_decided_blocks(ans.records):
            print(f"{b}: every question of this block is decided at {sw.ended[b]} seed(s); it gets no more seeds",
                  flush=True)
        verdicts, what, done = [q.verdict for q in ans.records], "undecided questions remain", \
            "every question is decided"
    block = len(sw.open_points()) * s.add_seeds
    step = decision.next_step(verdicts, sw.cells, budget(sw), block)
    if step is decision.Next.DECIDED:
        print(f"{done}: the sweep stops here", flush=True)
        return False
    if step is decision.Next.BUDGET:
        print(f"{what}, and another block would pass the budget of {budget(sw)} trainings (sweep.budget)",
              flush=True)
        return False
    if s.timeout and time.time() - sw.started + block * per_cell + per_block > s.timeout:
        print(f"{what}, but another block ({block} trainings, about "
              f"{(block * per_cell + per_block) / 60:.1f} min) would not finish within sweep.timeout={s.timeout:.0f}s",
              flush=True)
        return False
    top = max(sw.seeds)
    new = list(range(top + 1, top + 1 + s.add_seeds))
    queued = sw.add_seeds(new)
    print(f"adding seeds {new}: {queued} more trainings (about {(queued * per_cell + per_block) / 60:.1f} min)",
          flush=True)
    return True


def _timing(sw: Sweep, wall: float, trained: int) -> tuple[float, float]:
    """A block's time split in two and recorded in the study: seconds per training at the sweep's parallelism
    (the trainings' own durations over the workers) and the block's fixed cost (the workers' start-up and
    waits, the wall time the trainings do not explain, plus the last look), which a price pays per block."""
    s = sw.definition.settings
    busy = summary.seconds_per_cell(studies.rows(sw.study), s.workers or 1)
    if not trained:
        return attrs.SECONDS_PER_CELL.get(sw.study) or 0.0, attrs.SECONDS_PER_BLOCK.get(sw.study) or 0.0
    per_cell = min(busy, wall / trained) if busy else wall / trained
    per_block = max(0.0, wall - trained * per_cell) + sw.look_seconds
    attrs.SECONDS_PER_CELL.set(sw.study, per_cell)
    attrs.SECONDS_PER_BLOCK.set(sw.study, per_block)
    return per_cell, per_block


def run(sw: Sweep) -> int:
    """Runs the prepared sweep to the end and writes its report; the process exit code.

    A sequential sweep (sweep.until=decided) looks at the effects after each block of seeds and adds
    the next block until every question is decided, or the budget or the timeout is reached; a racing one
    (sweep.until=best) adds each block to the configurations still in the best set, until it is decided.
    """
    s = sw.definition.settings
    _header(sw)
    if studies.counts(sw.study).finished >= sw.target and s.until == "design":
        print(f"the study already holds {studies.counts(sw.study).finished} finished trials; add seeds "
              f"(sweep.seeds) or raise sweep.trials to run more")
    try:
        while True:
            t0, cells0 = time.time(), studies.counts(sw.study).finished
            if not _workers_then_report_failure(sw):
                return 1
            if s.until == "design":
                break
            if not sw.design:  # a sampled sweep's search is done: its top configurations race
                if not _start_race(sw):
                    break
                continue
            if not _another_block(sw, t0, cells0):
                break
    finally:
        launch.close(sw)  # a Ray instance started for the sweep stops; the report needs no workers
    closed = reconcile(sw)
    if closed:
        print(f"{closed} run(s) whose trial did not complete were ended KILLED (the study and the tracking store "
              f"agree)", flush=True)
    report.finish(sw.definition, sw.study, sw.parent_run_id, planned=budget(sw) if s.until != "design" else None,
                  design_size=design_size(sw))
    return 0
