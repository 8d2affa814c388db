"""The Optuna side of a sweep: storage, study creation and resume, samplers and pruners, queued
configurations, and the recovery of trials whose worker died.

Only Optuna here; nothing of MLflow or training. Private Optuna attributes are used where no
public call exists, each said where: a live trial's storage id for its heartbeat
(`trial._trial_id`, as Optuna's own `optimize` does), and setting a user attribute on a trial
of another process (the storage's `set_trial_state_values`).

Dead workers: a RUNNING trial of this host whose process is gone is dead at once; a trial
of another host is dead when its heartbeat stopped for `sweep.grace` seconds. On an RDB
storage the heartbeat is Optuna's own (`record_heartbeat`, `fail_stale_trials`); on a
journal file it is the trial's `heartbeat` user attribute. A dead trial is marked FAIL and
its configuration queued again once, the reason in the retry's `retry_reason` attribute.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import asdict, dataclass

from src.answer.effects import key
from src.answer.records import Cell
from src.config.paths import MLRUNS_DIR, resolve
from src.sweep import SweepError, attrs
from src.sweep.definition import Definition, Settings

# the identity of this machine in the study; DIL_HOST sets it (tests simulate a second machine)
HOST = os.environ.get("DIL_HOST") or socket.gethostname()
log = logging.getLogger(__name__)


def quiet() -> None:
    """Optuna's chatter off (info lines, experimental-feature warnings), and the training run's too."""
    import warnings

    import optuna

    from src.run.runtime import quiet as quiet_run

    quiet_run()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def storage_url(setting) -> str:
    """The storage URL with relative paths resolved from the project root; journal file by default."""
    if not setting:
        return f"journal:{MLRUNS_DIR / 'optuna.journal'}"
    s = str(setting)
    if s.startswith("sqlite:///") and not s.startswith("sqlite:////"):
        return f"sqlite:///{resolve(s[len('sqlite:///'):])}"
    if s.startswith("journal:"):
        return f"journal:{resolve(s[len('journal:'):])}"
    return s


def on_this_disk(url: str) -> bool:
    """A journal file or a SQLite database: a storage on this machine's disk, which other machines do not see
    (any other URL names a database server)."""
    return url.startswith(("journal:", "sqlite:"))


class _StaleCollector:
    """Optuna's stale-trial callback: it is called for exactly the trials this process failed."""

    def __init__(self):
        self.failed = []

    def __call__(self, study, trial):
        self.failed.append(trial)


def open_storage(url: str, heartbeat: float = 30, grace: float = 90):
    """An Optuna storage: a journal file, or an RDB URL with heartbeats (dead workers' trials fail)."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if url.startswith("journal:"):
        path = url[len("journal:"):]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(url[len("sqlite:///"):]), exist_ok=True)
    engine = None
    if url.startswith("postgresql"):
        engine = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

    from src.redact import redact

    def refuse(e):
        return SweepError(f"cannot open the study storage {redact(url)}: {type(e).__name__}: "
                          f"{redact(str(e)).splitlines()[0]}")

    try:
        for attempt in range(6):
            try:
                return RDBStorage(url, heartbeat_interval=max(1, round(heartbeat)), grace_period=max(2, round(grace)),
                                  engine_kwargs=engine, heartbeat_stale_trial_callback=_StaleCollector())
            except (ProgrammingError, IntegrityError) as e:
                # machines opening a new database together race to create Optuna's tables ("already
                # exists"); once one has made them, the others' next attempt finds them
                if attempt == 5:
                    raise refuse(e) from None
                time.sleep(0.5 + attempt)
            except (SQLAlchemyError, ImportError, ValueError) as e:  # unreachable database, bad URL, no driver
                raise refuse(e) from None
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def has_heartbeat(storage) -> bool:
    from optuna.storages import RDBStorage

    return isinstance(storage, RDBStorage)


def _base_sampler(s: Settings, seed: int):
    import optuna

    if s.sampler in ("random", "grid", "fractional"):  # a design is enqueued; anything beyond it is random
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                      n_startup_trials=min(5, max(2, s.trials // 3)))


def make_sampler(s: Settings):
    """The configured sampler, seeded per trial from (sweep.seed, trial number).

    Workers in other processes or on other machines then propose different points for different
    trials (one seed per process would make them propose the same ones), and a study's proposals
    are reproducible from its history.
    """
    import optuna

    class PerTrialSeed(optuna.samplers.BaseSampler):
        def __init__(self):
            self.inner = _base_sampler(s, s.seed)

        def before_trial(self, study, trial):
            self.inner = _base_sampler(s, (int(s.seed) * 1_000_003 + trial.number) % 2**31)
            self.inner.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self.inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self.inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self.inner.after_trial(study, trial, state, values)

    return PerTrialSeed()


def make_pruner(s: Settings, epochs: int):
    import optuna

    steps = epochs if s.designed else epochs * len(s.seeds)  # a designed trial is one cell
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(steps, 1), reduction_factor=3)
    return optuna.pruners.NopPruner()


def load(definition: Definition, url: str, storage=None, epochs: int = 1):
    """The existing study, with this sweep's sampler and pruner."""
    import optuna

    s = definition.settings
    storage = storage or open_storage(url, s.heartbeat, s.grace)
    return optuna.load_study(study_name=s.name, storage=storage, sampler=make_sampler(s),
                             pruner=make_pruner(s, epochs))


def create_or_resume(definition: Definition, url: str):
    """Opens the study, or creates it; refuses a study of the same name with another search space.

    Returns:
        (study, storage, resumed, creator): the storage as opened (Optuna wraps an RDB storage in a
        cache inside the study); creator is True for the one process that created the study.
    """
    import optuna

    from src.redact import redact

    s = definition.settings
    storage = open_storage(url, s.heartbeat, s.grace)
    sig = definition.signature()
    try:
        study = optuna.load_study(study_name=s.name, storage=storage)
    except KeyError:
        try:
            study = optuna.create_study(study_name=s.name, storage=storage, direction=s.direction)
        except optuna.exceptions.DuplicatedStudyError:  # another machine was a moment faster
            return optuna.load_study(study_name=s.name, storage=storage), storage, False, False
        attrs.SIGNATURE.set(study, sig)
        attrs.DEFINITION.set(study, {"base": [redact(o) for o in definition.base],
                                     "search": {k: p.expr for k, p in definition.params.items()}})
        return study, storage, False, True
    old = attrs.SIGNATURE.get(study)
    if old is not None and old != sig:
        raise SweepError(_space_differs(s.name, redact(url), json.loads(old), json.loads(sig)))
    return study, storage, True, False


def _space_differs(name: str, url: str, old: dict, new: dict) -> str:
    parts = []
    for k in ("space", "metric", "direction", "seeds"):
        if old.get(k) != new.get(k):
            parts.append(f"{k}: stored {json.dumps(old.get(k))[:400]} vs now {json.dumps(new.get(k))[:400]}")
    return (f"study {name!r} already exists in {url} with a different search space; "
            f"use another `sweep.name` or the same definition. Differences: " + "; ".join(parts))


def point(trial) -> dict:
    """A trial's configuration: its parameters, or, while it waits in the queue, the ones enqueued."""
    return dict(trial.params) or attrs.enqueued_params(trial)


def _key(p: dict, seed=None) -> str:
    return key({"config": p, "seed": seed})


def cell_key(trial) -> str:
    """A trial's cell as a comparable key: its configuration and, for a designed sweep's trial, its seed."""
    return _key(point(trial), attrs.SEED.get(trial))


def enqueue(study, cells: list[tuple[dict, int]]) -> int:
    """Queues the (configuration, seed) cells that are neither finished, running nor already waiting, each
    as a trial that carries its seed (user attribute `seed`); returns how many."""
    from optuna.trial import TrialState

    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    seen = {cell_key(t) for t in study.get_trials(deepcopy=False, states=live)}
    n = 0
    for p, seed in cells:
        if _key(p, seed) not in seen:
            study.enqueue_trial(p, user_attrs=attrs.enqueued({attrs.SEED: seed}))
            seen.add(_key(p, seed))
            n += 1
    return n


@dataclass(frozen=True)
class Counts:
    """A study's trials by state (surplus ones left out); `finished` (complete or pruned) is what a sweep's
    target counts."""

    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int

    @property
    def finished(self) -> int:
        return self.complete + self.pruned

    def metrics(self) -> dict:
        """As the parent run's metrics: trials_finished, trials_complete, ..."""
        return {f"trials_{k}": v for k, v in {"finished": self.finished, **asdict(self)}.items()}


def tally(trials) -> Counts:
    """The trials' `Counts`: the one count of finished trials, the driver's, the workers' and the report's."""
    c = Counter(t.state.name for t in trials if not attrs.SURPLUS.get(t))
    return Counts(complete=c["COMPLETE"], pruned=c["PRUNED"], failed=c["FAIL"], running=c["RUNNING"],
                  waiting=c["WAITING"])


def counts(study) -> Counts:
    return tally(study.get_trials(deepcopy=False))


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _dead(trial, grace: float, heartbeat_storage: bool, now: float) -> bool:
    host, pid = attrs.HOST.get(trial), attrs.PID.get(trial)
    if host == HOST and pid is not None:
        return not pid_alive(int(pid))
    if heartbeat_storage:  # another host's trial: Optuna's heartbeat decides (fail_stale_trials)
        return False
    beat = attrs.HEARTBEAT.get(trial) or (trial.datetime_start.timestamp() if trial.datetime_start else now)
    return now - float(beat) > grace


def recover_stale(study, storage, s: Settings) -> list:
    """RUNNING trials whose worker is gone: marked FAIL and their configuration queued again once.

    `storage` is the storage as `open_storage` made it (it says whether there are heartbeats).

    Returns the recovered trials (as they were while running), for the caller to end their
    MLflow runs. Of several processes recovering at once, exactly one recovers each trial.
    """
    import optuna
    from optuna.trial import TrialState

    recovered = []
    collector = storage.get_heartbeat_stale_trial_callback() if has_heartbeat(storage) else None
    if collector is not None:
        collector.failed.clear()
        optuna.storages.fail_stale_trials(study)  # calls the collector for each trial it failed
        recovered += collector.failed
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _dead(t, s.grace, collector is not None, now):
            continue
        try:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)  # no public call for this
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # finished meanwhile, or recovered by another process
        recovered.append(t)
    for t in recovered:  # a finished trial takes no attributes: the reason goes with the retry
        reason = (f"worker died while trial {t.number} ran (host {attrs.HOST.get(t)}, pid "
                  f"{attrs.PID.get(t)}); recovered by host {HOST}, pid {os.getpid()}")
        retried = any(attrs.RETRY_OF.get(o) == t.number for o in study.get_trials(deepcopy=False))
        if t.params and not retried:
            cell = {attrs.SEED: attrs.SEED.get(t)} if attrs.SEED.has(t) else {}
            study.enqueue_trial(dict(t.params), user_attrs=attrs.enqueued(
                {attrs.RETRY_OF: t.number, attrs.RETRY_REASON: reason, **cell}))
    return recovered


def rows(study) -> list[Cell]:
    """The study's trials as the answer reads them (surplus ones left out)."""
    from optuna.trial import TrialState

    return [Cell(trial=t.number, state=t.state.name, params=dict(t.params),
                 value=t.value if t.state == TrialState.COMPLETE else None, seed=attrs.SEED.get(t),
                 seed_values=attrs.SEED_VALUES.get(t), test_values=attrs.TEST_VALUES.get(t),
                 eval_bootstrap=attrs.EVAL_BOOTSTRAP.get(t), spread=attrs.SPREAD.get(t),
                 overrides=attrs.OVERRIDES.get(t), attention=attrs.ATTENTION.get(t),
                 pruned_at_epoch=attrs.PRUNED_AT_EPOCH.get(t), failure=attrs.FAILURE.get(t) or None,
                 seconds=(t.datetime_complete - t.datetime_start).total_seconds()
                 if t.datetime_complete and t.datetime_start else None)
            for t in study.get_trials(deepcopy=False) if not attrs.SURPLUS.get(t)]
