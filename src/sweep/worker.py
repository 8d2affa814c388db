"""A sweep worker: ask a trial, train it once per seed as a nested `src.train` run, tell the result.

A worker gets a frozen `Job` with everything it needs and rebuilds nothing. It stops when the
study holds the requested number of finished trials, when the timeout passes, or when the
first trials all failed. While a trial runs, a thread beats its heartbeat.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import statistics
import threading
import time
import traceback
from dataclasses import dataclass

from src.config import compose
from src.run import faults, interrupts
from src.sweep import attrs, design, placement, space
from src.sweep import study as studies
from src.sweep import tracking as sweep_tracking
from src.sweep.definition import Definition

WAIT_S = 2
DRIVER_DIED = "the sweep's driver died"
STOPPED = ("interrupted", "terminated", DRIVER_DIED)  # how the failure of a trial whose worker was stopped starts
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """Everything one worker process needs (picklable)."""

    definition: Definition
    url: str                 # the study's storage URL (resolved)
    parent_run_id: str       # the study's MLflow parent run
    tracking: dict           # the resolved `tracking` config
    epochs: int              # train.epochs of the base config (pruning steps per seed)
    started: float           # when the sweep started (sweep.timeout counts from here)
    worker: int = 0
    workers: int = 1
    inter_op: int = 0        # TensorFlow inter-op threads for each training (0: its default)
    gpu: str | None = None   # the GPU this worker uses (CUDA_VISIBLE_DEVICES), None: all / none
    gpu_share: int = 1       # workers sharing that GPU (each gets 1/gpu_share of its memory on JAX)
    target: int = 1          # finished trials the study should hold before the workers stop
    design_cells: int = 0    # (configuration, seed) cells queued so far (a design's or a race's); 0: sampled
    searched: int = 0        # a sampled race's search: the finished trials of the target that are not its cells
    node: str | None = None  # the Ray node this worker runs on (sweep.launcher=ray), None: this machine
    driver_pid: int | None = None  # the driver that spawned this worker process (local launcher), None: none

    def driver_gone(self) -> bool:
        """Whether the driver that spawned this worker died (the worker was handed to another parent)."""
        return self.driver_pid is not None and os.getppid() != self.driver_pid

    @property
    def placement(self) -> str:
        where = f" on Ray node {self.node[:12]} ({studies.HOST})" if self.node else ""
        if self.gpu is None:
            return f"worker {self.worker} of {self.workers}{where} on the CPU"
        return f"worker {self.worker} of {self.workers}{where} on GPU {self.gpu} (shared by {self.gpu_share})"

    @property
    def where(self) -> dict:
        """The tags that say where a cell ran: host, Ray node, GPU and its share."""
        return {"host": studies.HOST, "node": self.node or studies.HOST, "gpu": self.gpu or "none",
                "gpu_share": str(self.gpu_share if self.gpu else 0), "placement": self.placement}


class Step(enum.Enum):
    """What a worker does next."""

    TRAIN = "train"      # ask a trial and train it
    WAIT = "wait"        # the remaining slots are taken by other workers: wait, and step in if one dies
    STOP = "stop"        # the study holds its trials, the design has run, or the timeout passed
    GIVE_UP = "give up"  # the sweep should stop spending its budget (`Next.why` says why)


@dataclass(frozen=True)
class Next:
    step: Step
    why: str = ""


@dataclass(frozen=True)
class Ended:
    """How a worker's loop ended: with its share done (no error), or with the sweep to give up (`error`
    says why; `outage`: the tracking server is what cannot be reached, so no report is tried)."""

    error: str | None = None
    outage: bool = False


class TrackingOutage(RuntimeError):
    """The tracking server is unreachable: stop the worker rather than fail trial after trial."""


class Heartbeat:
    """Tells the study that a trial's worker is alive, every `interval` seconds, until the block ends.

    RDB storages: Optuna's heartbeat (`record_heartbeat`), which `fail_stale_trials` reads on any
    machine; other storages: the trial's `heartbeat` user attribute. A missed beat is logged and
    tolerated (the next one may get through; `sweep.grace` allows for several).
    """

    def __init__(self, storage, trial, interval: float, driver_gone=lambda: False):
        from sqlalchemy.exc import SQLAlchemyError

        self.storage, self.trial, self.interval, self.driver_gone = storage, trial, interval, driver_gone
        self.expected = (SQLAlchemyError, OSError, RuntimeError)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{trial.number}")

    def beat(self) -> None:
        try:
            if studies.has_heartbeat(self.storage):
                self.storage.record_heartbeat(self.trial._trial_id)  # no public id of a live trial
            else:
                attrs.HEARTBEAT.set(self.trial, time.time())
        except self.expected as e:
            log.warning("trial %d: a heartbeat was missed (%s: %s)", self.trial.number, type(e).__name__,
                        str(e).splitlines()[0][:200] if str(e) else "")

    def _run(self):
        while not self.stop.wait(self.interval):
            if self.driver_gone():  # stop the cell as SIGTERM would: its run ends KILLED, its trial FAIL
                interrupts.stop(DRIVER_DIED)
                return
            self.beat()

    def __enter__(self):
        self.beat()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def main(job: Job) -> Ended:
    """One worker's loop on the study, until its next step is to stop or to give up."""
    placement.take_gpu(job.gpu, job.gpu_share)
    from src.run.runtime import entry_point

    entry_point()  # a spawned worker is a process of its own

    from src.run import logger as tracking
    from src.sweep.study import quiet

    s = job.definition.settings
    quiet()
    storage = studies.open_storage(job.url, s.heartbeat, s.grace)
    study = studies.load(job.definition, job.url, storage, job.epochs)
    tracking.setup(job.tracking)
    import src.run.training  # noqa: F401  (TensorFlow and Keras load once per worker, not inside the first trial)

    tag = f"[w{job.worker}] " if job.workers > 1 else ""
    while True:
        if job.driver_gone():
            raise interrupts.Terminated(DRIVER_DIED)
        recovered = studies.recover_stale(study, storage, s)
        if recovered:
            for t in recovered:
                sweep_tracking.kill_runs(attrs.MLFLOW_RUN_IDS.get(t), "worker died")
            print(f"{tag}trials {[t.number for t in recovered]} lost their worker: marked failed, their cells "
                  f"queued again", flush=True)
        trials = study.get_trials(deepcopy=False)
        step = _next(job, trials, tag)
        if step.step == Step.WAIT:
            time.sleep(WAIT_S)
            continue
        if step.step != Step.TRAIN:
            return Ended(step.why or None)
        try:
            if not one_trial(job, study, storage, tag):
                break
        except TrackingOutage as e:
            return Ended(str(e), outage=True)
    return Ended()


def _next(job: Job, trials, tag: str) -> Next:
    """What the worker does next, from the study's trials."""

    s = job.definition.settings
    c = studies.tally(trials)
    finished, running = c.finished, c.running
    if finished >= job.target:
        return Next(Step.STOP)
    if s.timeout and time.time() > job.started + float(s.timeout):
        if finished + running < job.target:
            print(f"{tag}timeout: no new trial after {s.timeout}s", flush=True)
        return Next(Step.STOP)
    if finished + running >= job.target:
        return Next(Step.WAIT)
    error = _initial_failures(trials, s.max_initial_failures)
    if error:
        return Next(Step.GIVE_UP, error)
    if design.exhausted(job.design_cells, job.target - job.searched, trials):
        what = "race" if job.searched else "design"
        print(f"{tag}the {what}'s {job.design_cells} cells have all run; {finished} finished (a failed one is left "
              f"out of the answer, not replaced by a configuration outside the {what})", flush=True)
        return Next(Step.STOP)
    return Next(Step.TRAIN)


def one_trial(job: Job, study, storage, tag: str = "") -> bool:
    """Asks one trial, runs it and tells the study its outcome once, in `finally` (as Optuna's own
    `_run_trial`); False if the trial turned out surplus.

    Asking the trial and entering the code that tells it are one step an interrupt cannot split, so
    a Ctrl-C, SIGTERM or Ray's cancel never leaves a trial RUNNING in the study. A cell whose training
    ended before the interrupt came is told COMPLETE.
    """
    from optuna.trial import TrialState

    with interrupts.atomic() as hold:
        trial = study.ask()
        outcome = Outcome()
        try:
            if _surplus(job, study, trial):
                outcome.state, outcome.reason, outcome.surplus = TrialState.FAIL, SURPLUS, True
                return False
            attrs.HOST.set(trial, studies.HOST)
            attrs.PID.set(trial, os.getpid())
            if job.node:
                attrs.NODE.set(trial, job.node)
            hold.release()
            _run(job, trial, storage, tag, outcome)
        finally:
            with interrupts.atomic():
                outcome.tell(study, trial)
    _report(study, trial, outcome, tag, job)
    if outcome.lost_tracking:
        raise TrackingOutage(outcome.reason)
    return True


SURPLUS = "surplus: the study already had its trials"


def _surplus(job: Job, study, trial) -> bool:
    """Two workers can ask for the last slot at once: the later trial number yields (told FAIL, surplus)."""
    from optuna.trial import TrialState

    ahead = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and
             t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)]
    return len(ahead) >= job.target


@dataclass
class Outcome:
    """How a trial ended, filled while it runs and told to the study once."""

    state: object = None      # optuna TrialState; None until known (then FAIL)
    value: float | None = None
    reason: str = ""
    traceback: str = ""
    lost_tracking: bool = False  # the tracking server could not be reached: the worker stops
    surplus: bool = False        # the trial took a slot another worker already had: not a cell

    def tell(self, study, trial) -> None:
        from optuna.trial import TrialState

        if self.state is None:  # the trial's code did not get to say: an interrupt, or an error
            self.state = TrialState.FAIL
        if self.surplus:
            attrs.SURPLUS.set(trial, True)
        if self.state == TrialState.FAIL:
            attrs.FAILURE.set(trial, self.reason or "unknown error")
            if self.traceback:
                attrs.TRACEBACK.set(trial, self.traceback)
        study.tell(trial, self.value if self.state == TrialState.COMPLETE else None, state=self.state)


def _run(job: Job, trial, storage, tag: str, outcome: Outcome) -> None:
    """Runs the trial and fills `outcome`; an interrupt propagates once the outcome says so."""
    import optuna
    from optuna.trial import TrialState

    from src.redact import redact

    try:
        with Heartbeat(storage, trial, job.definition.settings.heartbeat, job.driver_gone):
            outcome.value = run_trial(job, trial, tag)
            faults.point("after_run_end")
        outcome.state = TrialState.COMPLETE
    except optuna.TrialPruned as e:
        outcome.state, outcome.reason = TrialState.PRUNED, str(e)
    except KeyboardInterrupt as e:
        if outcome.value is not None:  # every seed trained and its run ended FINISHED: the cell is done
            outcome.state = TrialState.COMPLETE
        else:
            outcome.reason = interrupts.reason(e) if interrupts.terminated(e) else \
                "interrupted (Ctrl-C, or Ray's cancel)"  # each starts with one of STOPPED
        raise
    except Exception as e:  # noqa: BLE001 - any error of a trial is recorded, reported, and the sweep goes on
        reason = redact(f"{type(e).__name__}: {e}")[:2000]
        outcome.lost_tracking = sweep_tracking.outage(e)
        if outcome.lost_tracking:
            reason = (f"the MLflow tracking server {redact(sweep_tracking.tracking_uri())} cannot be reached; this "
                      f"worker stops (start the sweep again once the server is back: it resumes). {reason}")
        outcome.reason, outcome.traceback = reason, redact(traceback.format_exc())[-4000:]


def stopped(trial) -> bool:
    """Whether a trial failed because its worker was stopped (Ctrl-C, SIGTERM, a dead driver or a dead
    worker, whose cell is queued again), not because of its configuration or the code."""
    return attrs.FAILURE.get(trial).startswith(STOPPED)


def _initial_failures(trials, limit: int) -> str | None:
    """The first failure's reason when the study's first `limit` trials all failed (a trial that was stopped,
    or whose worker died, is no failure of its own)."""
    from optuna.trial import TrialState

    retried = {attrs.RETRY_OF.get(t) for t in trials}
    done = [t for t in sorted(trials, key=lambda t: t.number)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and not attrs.SURPLUS.get(t)
            and not stopped(t) and t.number not in retried]
    if len(done) >= limit and all(t.state == TrialState.FAIL for t in done) and not any(
            t.state == TrialState.COMPLETE for t in trials):
        first = done[0]
        return (f"the first {len(done)} trials all failed; stopping instead of spending the budget. "
                f"Trial {first.number} failed with: {attrs.FAILURE.get(first) or 'unknown error'}")
    return None


def _report(study, trial, outcome: Outcome, tag, job: Job):
    """Tags the trial's runs with its state (unless the tracking server is down) and prints a line."""

    s, state, value = job.definition.settings, outcome.state.name, outcome.value
    if not outcome.lost_tracking:
        sweep_tracking.tag_state(attrs.MLFLOW_RUN_IDS.get(trial), state)
    finished = studies.counts(study).finished
    best = ""
    try:
        bt = study.best_trial
        best = f", best {bt.value:.4f} (trial {bt.number})"
    except ValueError:  # no complete trial yet
        pass
    what = f"{s.metric} {value:.4f}" if value is not None else outcome.reason
    print(f"{tag}trial {trial.number} {state}: {what} | study {finished}/{job.target} finished{best}", flush=True)


def run_name(sampled: list[str], seed: int) -> str:
    """A child run's name: what it trained, short and stable ("depth=3 activation=dice ... seed=0")."""
    parts = [f"{k.replace('/', '.').rsplit('.', 1)[-1]}={v}" for k, v in (o.split("=", 1) for o in sampled)]
    return (" ".join(parts) or "base")[:200] + f" seed={seed}"


def trial_seeds(job: Job, trial) -> tuple:
    """The seeds a trial trains: its cell's seed (a designed sweep queues one trial per cell), or every seed
    of the sweep for a trial the sampler proposed."""
    return (attrs.SEED.get(trial),) if attrs.SEED.has(trial) else job.definition.settings.seeds


def run_trial(job: Job, trial, tag="") -> float:
    """Samples the trial's config and trains it once per seed (one cell: once); returns the mean best
    validation metric. Each seed's validation and test values are kept on the trial."""
    import optuna

    from src.run.training import Pruned

    d = job.definition
    overrides = space.sample(trial, list(d.base), d.params, compose)
    sampled = overrides[len(d.base):]
    attrs.OVERRIDES.set(trial, sampled)
    seeds = trial_seeds(job, trial)
    print(f"{tag}trial {trial.number} start: {' '.join(sampled) or '(base config)'}"
          + (f" seed={seeds[0]}" if len(seeds) == 1 else ""), flush=True)
    values, tests, run_ids = {}, {}, []
    for k, seed in enumerate(seeds):
        try:
            result = _train_seed(job, trial, overrides, sampled, seed, k, run_ids, last=k == len(seeds) - 1)
        except Pruned as e:
            attrs.PRUNED_AT_EPOCH.set(trial, e.epoch)
            raise optuna.TrialPruned(f"pruned at epoch {e.epoch} of seed {seed}") from None
        metric = d.settings.metric[len("valid_"):]
        values[str(seed)], tests[str(seed)] = result.valid[metric], result.test[metric]
        attrs.SEED_VALUES.set(trial, values)
        attrs.TEST_VALUES.set(trial, tests)
        if result.eval_bootstrap.get(metric):
            boot = {**attrs.EVAL_BOOTSTRAP.get(trial), str(seed): result.eval_bootstrap[metric]}
            attrs.EVAL_BOOTSTRAP.set(trial, boot)
        if result.attention:
            attrs.ATTENTION.set(trial, {**attrs.ATTENTION.get(trial), str(seed): result.attention})
    mean = statistics.fmean(values.values())
    attrs.SPREAD.set(trial, statistics.pstdev(values.values()) if len(values) > 1 else 0.0)
    if not math.isfinite(mean):
        raise ValueError(f"validation {d.settings.metric} is not a number")
    return mean


def _train_seed(job: Job, trial, overrides: list[str], sampled: list[str], seed: int, k: int, run_ids: list,
                last: bool = True):
    """One seed of a trial, as a nested run; its per-epoch validation feeds the pruner (step k*epochs+epoch).
    The last epoch of the trial's last seed is reported but never pruned: the result is complete, pruning
    would save nothing and leave it out of the search and the answer. A sampled sweep's race cell
    (sweep.until=best) is never pruned: the best set compares every one of them."""
    from src.run.training import Pruned, train_run

    d = job.definition
    metric = d.settings.metric[len("valid_"):]
    threads = [f"train.threads.inter_op={job.inter_op}"] if job.inter_op else []
    run_overrides = overrides + [f"seed={seed}"] + threads
    cfg = compose(run_overrides)
    epochs = int(cfg.train.epochs)  # this trial's, which the search may set
    raced = attrs.SEED.has(trial) and not d.settings.designed

    def reporter(epoch, m):
        v = m.get(metric)
        if v is None or not math.isfinite(v):
            return
        trial.report(v, step=k * job.epochs + epoch)
        if not raced and not (last and epoch >= epochs) and trial.should_prune():
            raise Pruned(epoch, v)

    def started(run_id):
        run_ids.append(run_id)
        attrs.MLFLOW_RUN_IDS.set(trial, list(run_ids))

    return train_run(cfg, run_overrides,
                     tags={**sweep_tracking.trial_tags(d, job.parent_run_id, trial.number, seed, sampled), **job.where},
                     parent_run_id=job.parent_run_id, run_name=run_name(sampled, seed), reporter=reporter,
                     on_start=started, log=lambda m: None)
