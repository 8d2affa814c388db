"""The sweep driver: study creation and resume, workers, trials, stale-trial recovery.

Plain Python around Optuna; the search space is data (src/search.py).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field

import yaml

from src.paths import MLRUNS_DIR, SWEEPS_DIR, resolve
from src.sweep import space as search
from src.sweep.space import SweepError

SETTINGS = {
    "name": None,          # study name; default: the sweep file's name
    "metric": "valid_auc",  # best-epoch validation metric: valid_auc, valid_gauc, valid_logloss
    "direction": None,     # maximize / minimize; default: from the metric
    "trials": 10,          # finished (complete or pruned) trials the study should hold
    "timeout": None,       # seconds after which no new trial starts
    "sampler": "tpe",      # tpe, random, grid
    "pruner": "median",    # median, hyperband, none
    "seed": 0,             # sampler seed
    "seeds": [0],          # training seeds per sampled config; the objective is their mean
    "workers": 1,          # worker processes on this machine
    "storage": None,       # Optuna storage URL; default: a journal file under mlruns/
    "stale_after": 600,    # seconds without a heartbeat after which a RUNNING trial of another host is stale
    "max_initial_failures": 3,  # stop when this many trials failed before any succeeded
}
METRICS = {"valid_auc": "maximize", "valid_gauc": "maximize", "valid_logloss": "minimize"}
HOST = socket.gethostname()


def load_definition(argv: list[str]) -> dict:
    """sweeps/<name>.yaml merged with the command line (see src/search.py for the grammar)."""
    name = "default"
    rest = []
    for a in argv:
        if a.startswith("sweep="):
            name = a.split("=", 1)[1]
        else:
            rest.append(a)
    path = SWEEPS_DIR / f"{name}.yaml"
    if name == "none":  # the command line alone
        doc = {}
    elif not path.is_file():
        known = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))
        raise SweepError(f"no sweep file {path}; known sweeps: {', '.join(known)} (or sweep=none: the command "
                         f"line alone)")
    else:
        doc = yaml.safe_load(path.read_text()) or {}
    unknown = set(doc) - {"study", "fixed", "search"}
    if unknown:
        raise SweepError(f"{path}: unknown sections {sorted(unknown)}; expected study, fixed, search")
    file_items = [f"sweep.{k}={search.format_value(v)}" for k, v in (doc.get("study") or {}).items()]
    file_items += list(doc.get("fixed") or [])
    file_items += [f"{k}={v}" for k, v in (doc.get("search") or {}).items()]
    base, params, settings = search.merge(search.parse(file_items), search.parse(rest))
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise SweepError(f"unknown study setting(s) {sorted('sweep.' + k for k in unknown)}; known: "
                         f"{', '.join('sweep.' + k for k in SETTINGS)}")
    s = {**SETTINGS, **settings}
    s["name"] = str(s["name"] or name)
    if s["metric"] not in METRICS:
        raise SweepError(f"`sweep.metric` must be one of {sorted(METRICS)}, got {s['metric']!r}")
    s["direction"] = s["direction"] or METRICS[s["metric"]]
    if s["direction"] not in ("maximize", "minimize"):
        raise SweepError(f"`sweep.direction` must be maximize or minimize, got {s['direction']!r}")
    for k in ("trials", "workers"):
        if not isinstance(s[k], int) or isinstance(s[k], bool) or s[k] < 1:
            raise SweepError(f"`sweep.{k}` must be a positive integer, got {s[k]!r}")
    if s["sampler"] not in ("tpe", "random", "grid"):
        raise SweepError(f"`sweep.sampler` must be tpe, random or grid, got {s['sampler']!r}")
    if s["pruner"] not in ("median", "hyperband", "none"):
        raise SweepError(f"`sweep.pruner` must be median, hyperband or none, got {s['pruner']!r}")
    seeds = s["seeds"] if isinstance(s["seeds"], list) else [s["seeds"]]
    if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        raise SweepError(f"`sweep.seeds` must be a non-empty list of integers, got {s['seeds']!r}")
    s["seeds"] = seeds
    return {"file": str(path), "base": base, "params": params, "settings": s, "argv": list(argv)}


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


def open_storage(url: str):
    """An Optuna storage: a journal file, or an RDB URL (with heartbeats, so dead workers' trials fail)."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
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
    try:
        return RDBStorage(url, heartbeat_interval=30, grace_period=90, engine_kwargs=engine,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))
    except Exception as e:  # noqa: BLE001 - unreachable database, bad URL: one clear message
        from src.tracking import redact

        raise SweepError(f"cannot open the study storage {redact(url)}: {type(e).__name__}: "
                         f"{redact(str(e)).splitlines()[0]}") from None
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def _base_sampler(s: dict, seed: int):
    import optuna

    if s["sampler"] in ("random", "grid"):  # a grid is enqueued; anything beyond it is random
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                      n_startup_trials=min(5, max(2, s["trials"] // 3)))


def make_sampler(s: dict):
    """The configured sampler, seeded per trial from (sweep.seed, trial number).

    Workers in other processes or on other machines then propose different points for different
    trials (one seed per process would make them propose the same ones), and a study's proposals
    are reproducible from its history.
    """
    import optuna

    class PerTrialSeed(optuna.samplers.BaseSampler):
        def __init__(self):
            self.inner = _base_sampler(s, s["seed"])

        def before_trial(self, study, trial):
            self.inner = _base_sampler(s, (int(s["seed"]) * 1_000_003 + trial.number) % 2**31)
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


def make_pruner(s: dict, epochs: int):
    import optuna

    steps = epochs * len(s["seeds"])
    if s["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if s["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(steps, 1), reduction_factor=3)
    return optuna.pruners.NopPruner()


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


@dataclass
class Sweep:
    definition: dict
    compose_cache: dict = field(default_factory=dict)

    def __post_init__(self):
        self.creator = False  # this process created the study
        self.s = self.definition["settings"]
        self.base = self.definition["base"]
        self.params = self.definition["params"]
        self.url = storage_url(self.s["storage"])

    # -- composition -----------------------------------------------------------
    def compose(self, overrides):
        from src.config import compose

        key = tuple(overrides)
        if key not in self.compose_cache:
            self.compose_cache[key] = compose(list(overrides))
        return self.compose_cache[key]

    def signature(self) -> str:
        fixed = [o for o in self.base if not o.lstrip("+~").startswith("tracking")]
        return json.dumps({"space": json.loads(search.signature(fixed, self.params)), "metric": self.s["metric"],
                           "direction": self.s["direction"], "seeds": self.s["seeds"]}, sort_keys=True)

    # -- before the first trial ------------------------------------------------
    def prepare(self) -> None:
        """Checks the space, opens or creates the study (refusing a different space under the same
        name), recovers stale trials and opens the MLflow parent run."""
        import optuna

        from src.validate import validate

        search.check(self.base, self.params, self.compose, validate)
        if self.s["sampler"] == "grid":
            self.grid = search.grid(self.base, self.params, self.compose)
        self.base_cfg = self.compose(self.base + search.structural_combinations(self.params)[0])
        self.epochs = int(self.base_cfg.train.epochs)
        storage = open_storage(self.url)
        sig = self.signature()
        try:
            study = optuna.load_study(study_name=self.s["name"], storage=storage)
            old = study.user_attrs.get("signature")
            if old is not None and old != sig:
                raise SweepError(self._space_differs(json.loads(old), json.loads(sig)))
            self.resumed = True
        except KeyError:
            from src.tracking import redact

            self.resumed = False
            try:  # one process creates the study; it also creates the MLflow parent run
                study = optuna.create_study(study_name=self.s["name"], storage=storage,
                                            direction=self.s["direction"])
                self.creator = True
            except optuna.exceptions.DuplicatedStudyError:  # another machine was a moment faster
                study = optuna.load_study(study_name=self.s["name"], storage=storage)
            study.set_user_attr("signature", sig)
            study.set_user_attr("definition", {"base": [redact(o) for o in self.base],
                                               "search": {k: p.expr for k, p in self.params.items()}})
        self.study = study
        from src.sweep import tracking as sweep_tracking

        self.recovered = self.recover_stale()
        if self.s["sampler"] == "grid":
            self.enqueue_grid()
        self.parent_run_id = sweep_tracking.open_parent(self)

    def _space_differs(self, old: dict, new: dict) -> str:
        parts = []
        for k in ("space", "metric", "direction", "seeds"):
            if old.get(k) != new.get(k):
                parts.append(f"{k}: stored {json.dumps(old.get(k))[:400]} vs now {json.dumps(new.get(k))[:400]}")
        return (f"study {self.s['name']!r} already exists in {self._safe_url()} with a different search space; "
                f"use another `sweep.name` or the same definition. Differences: " + "; ".join(parts))

    def _safe_url(self) -> str:
        from src.tracking import redact

        return redact(self.url)

    def recover_stale(self) -> list[int]:
        """RUNNING trials whose worker is gone: marked FAIL (their MLflow runs KILLED) and retried."""
        import optuna
        from optuna.trial import TrialState

        from src.sweep import tracking as sweep_tracking

        now = time.time()
        stale = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
            beat = t.user_attrs.get("heartbeat") or (t.datetime_start.timestamp() if t.datetime_start else now)
            if host == HOST and pid is not None:
                dead = not pid_alive(int(pid))
            else:
                dead = now - float(beat or 0) > float(self.s["stale_after"])
            if not dead:
                continue
            storage = self.study._storage
            try:
                storage.set_trial_user_attr(t._trial_id, "failure", "worker died while the trial ran (stale, "
                                                                    "recovered by the next start or worker)")
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # finished meanwhile, or recovered by another worker
            sweep_tracking.kill_runs(t.user_attrs.get("mlflow_run_ids", []), "worker died")
            retried = any(o.user_attrs.get("retry_of") == t.number for o in self.study.get_trials(deepcopy=False))
            if t.params and not retried:
                self.study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            stale.append(t.number)
        return stale

    def enqueue_grid(self) -> None:
        from optuna.trial import TrialState

        seen = {json.dumps(t.params, sort_keys=True) for t in self.study.get_trials(deepcopy=False)
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)}
        for point in self.grid:
            if json.dumps(point, sort_keys=True) not in seen:
                self.study.enqueue_trial(point)
        if self.s["trials"] > len(self.grid):
            print(f"note: the grid has {len(self.grid)} configurations; sweep.trials={self.s['trials']} "
                  f"samples the rest at random")

    # -- running ---------------------------------------------------------------
    def counts(self) -> dict:
        from collections import Counter

        c = Counter(t.state.name for t in self.study.get_trials(deepcopy=False))
        return {"finished": c["COMPLETE"] + c["PRUNED"], "complete": c["COMPLETE"], "pruned": c["PRUNED"],
                "failed": c["FAIL"], "running": c["RUNNING"], "waiting": c["WAITING"]}

    def run(self) -> int:
        from src.sweep import report as sweep_report
        from src.sweep import worker as sweep_worker

        c = self.counts()
        target = self.s["trials"]
        state = (f"resuming study {self.s['name']!r}: {c['finished']} of {target} trials finished"
                 if self.resumed else f"new study {self.s['name']!r}: {target} trials")
        if self.recovered:
            state += f"; trials {self.recovered} had a dead worker: marked failed, their configs queued again"
        print(f"{state} ({self.s['sampler']} sampler, {self.s['pruner']} pruner, {self.s['workers']} worker(s), "
              f"storage {self._safe_url()})", flush=True)
        if c["finished"] >= target:
            print(f"the study already holds {c['finished']} finished trials (sweep.trials={target}); "
                  f"raise sweep.trials to run more")
        else:
            outcome = sweep_worker.run_workers(self)
            if outcome.get("error"):
                try:
                    sweep_report.finish(self, failed=outcome["error"])
                except Exception as e:  # noqa: BLE001 - e.g. the tracking server is the thing that is down
                    from src.tracking import redact

                    print(f"error: {outcome['error']}\n(the report could not be written: "
                          f"{redact(str(e)).splitlines()[0][:300]})")
                return 1
        sweep_report.finish(self)
        return 0

    def job(self, worker: int) -> dict:
        """What a worker process needs (picklable)."""
        return {"definition": self.definition, "url": self.url, "parent_run_id": self.parent_run_id,
                "worker": worker, "started": time.time(), "epochs": self.epochs}
