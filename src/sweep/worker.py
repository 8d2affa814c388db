"""Sweep workers: ask a trial, train it (once per seed) as a nested `src.train` run, tell the result.

`sweep.workers=N` spawns N processes (spawned, not forked) on one study, each
with its share of the CPU threads or its own GPU. A worker stops when the study
holds the requested number of finished trials, when the timeout passes, or when
the first trials all failed.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
import traceback

HEARTBEAT_S = 30
WAIT_S = 2


def _gpu_count() -> int:
    """GPUs TensorFlow sees, asked in a child process so this one stays free of CUDA state."""
    import subprocess

    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        return int(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return 0


def run_workers(sweep) -> dict:
    """Runs the workers to the end; returns {"error": message} if the sweep gave up."""
    n = sweep.s["workers"]
    if n == 1:
        return worker_main(sweep.job(0), sweep=sweep)
    import multiprocessing as mp

    gpus = os.environ.get("DIL_GPUS") or ",".join(str(i) for i in range(_gpu_count()))
    if gpus:
        print(f"{n} workers on GPUs {gpus} (one each, round robin)", flush=True)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    jobs = [dict(sweep.job(i), gpus=gpus) for i in range(n)]
    procs = [ctx.Process(target=_worker_entry, args=(job, queue), name=f"sweep-worker-{i}")
             for i, job in enumerate(jobs)]
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


def _worker_entry(job, queue):
    try:
        queue.put(worker_main(job))
    except KeyboardInterrupt:
        queue.put({"error": None})


def _configure_worker(job, n_workers: int) -> None:
    """Threads (CPU) or one GPU per worker, before TensorFlow starts."""
    w = job["worker"]
    if n_workers > 1:
        gpus = job.get("gpus")
        if gpus:
            ids = gpus.split(",")
            os.environ["CUDA_VISIBLE_DEVICES"] = ids[w % len(ids)]
        cores = os.cpu_count() or 1
        os.environ["DIL_INTER_OP"] = str(max(1, cores // n_workers))


class _Heartbeat:
    """Records that a trial's worker is alive: storage heartbeats (RDB) and a `heartbeat` user attribute."""

    def __init__(self, study, trial):
        self.study, self.trial = study, trial
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _beat(self):
        storage = self.study._storage
        try:
            if hasattr(storage, "record_heartbeat") and storage.is_heartbeat_enabled():
                storage.record_heartbeat(self.trial._trial_id)
            storage.set_trial_user_attr(self.trial._trial_id, "heartbeat", time.time())
        except Exception:  # noqa: BLE001 - a missed beat is not worth a trial
            pass

    def _run(self):
        while not self.stop.wait(HEARTBEAT_S):
            self._beat()

    def __enter__(self):
        self._beat()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def worker_main(job, sweep=None) -> dict:
    """One worker's loop on the study."""
    from src.sweep.study import Sweep, open_storage

    n_workers = job["definition"]["settings"]["workers"]
    _configure_worker(job, n_workers)
    import optuna
    from optuna.trial import TrialState

    if sweep is None:
        sweep = Sweep(job["definition"])
        sweep.parent_run_id = job["parent_run_id"]
        sweep.epochs = job["epochs"]
    s = sweep.s
    storage = open_storage(job["url"])
    from src.sweep.study import make_pruner, make_sampler

    study = optuna.load_study(study_name=s["name"], storage=storage, sampler=make_sampler(s),
                              pruner=make_pruner(s, job["epochs"]))
    sweep.study = study
    if not hasattr(sweep, "base_cfg"):
        from src import tracking
        from src.sweep import space as search

        sweep.base_cfg = sweep.compose(sweep.base + search.structural_combinations(sweep.params)[0])
        tracking.setup(sweep.base_cfg.tracking)
    from src.runtime import quiet

    quiet()
    import src.training  # noqa: F401  (TensorFlow and Keras load once per worker, not inside the first trial)

    tag = f"[w{job['worker']}] " if n_workers > 1 else ""
    deadline = job["started"] + float(s["timeout"]) if s["timeout"] else None
    while True:
        if hasattr(storage, "is_heartbeat_enabled") and storage.is_heartbeat_enabled():
            optuna.storages.fail_stale_trials(study)
        recovered = sweep.recover_stale()
        if recovered:
            print(f"{tag}trials {recovered} lost their worker: marked failed, their configs queued again", flush=True)
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if finished >= s["trials"]:
            break
        if finished + running >= s["trials"]:
            # the remaining slots are taken by other workers: wait for them, and step in if one dies
            if deadline and time.time() > deadline:
                break
            time.sleep(WAIT_S)
            continue
        if deadline and time.time() > deadline:
            print(f"{tag}timeout: no new trial after {s['timeout']}s", flush=True)
            break
        error = _initial_failures(trials, s["max_initial_failures"])
        if error:
            return {"error": error}
        try:
            if not one_trial(sweep, study, tag):
                break
        except TrackingOutage as e:
            return {"error": str(e)}
    return {}


def one_trial(sweep, study, tag: str = "") -> bool:
    """Asks one trial, runs it, tells the outcome; False if the trial turned out surplus."""
    import optuna
    from optuna.trial import TrialState

    from src.sweep.study import HOST

    s = sweep.s
    trial = study.ask()
    # two workers can ask for the last slot at once: the later trial number yields
    ahead = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and
             t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)]
    if len(ahead) >= s["trials"]:
        trial.set_user_attr("surplus", True)
        study.tell(trial, state=TrialState.FAIL)
        return False
    trial.set_user_attr("host", HOST)
    trial.set_user_attr("pid", os.getpid())
    try:
        with _Heartbeat(study, trial):
            value = run_trial(sweep, study, trial, tag)
        study.tell(trial, value)
        _report(study, trial, "COMPLETE", value, tag, s)
    except optuna.TrialPruned as e:
        study.tell(trial, state=TrialState.PRUNED)
        _report(study, trial, "PRUNED", None, tag, s, str(e))
    except KeyboardInterrupt:
        trial.set_user_attr("failure", "interrupted (Ctrl-C)")
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as e:  # noqa: BLE001 - a failing trial is recorded and the sweep goes on
        from src.sweep.tracking import outage
        from src.tracking import redact

        reason = redact(f"{type(e).__name__}: {e}")[:2000]
        lost_tracking = outage(e)
        if lost_tracking:
            import mlflow

            reason = (f"the MLflow tracking server {redact(mlflow.get_tracking_uri())} cannot be reached; this "
                      f"worker stops (start the sweep again once the server is back: it resumes). {reason}")
        trial.set_user_attr("failure", reason)
        trial.set_user_attr("traceback", redact(traceback.format_exc())[-4000:])
        study.tell(trial, state=TrialState.FAIL)
        _report(study, trial, "FAIL", None, tag, s, reason)
        if lost_tracking:
            raise TrackingOutage(reason) from None
    return True


class TrackingOutage(RuntimeError):
    """The tracking server is unreachable: stop the worker rather than fail trial after trial."""


def _initial_failures(trials, limit: int) -> str | None:
    """The first failure's reason when the study's first `limit` trials all failed."""
    from optuna.trial import TrialState

    done = [t for t in sorted(trials, key=lambda t: t.number)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and not t.user_attrs.get("surplus")]
    if len(done) >= limit and all(t.state == TrialState.FAIL for t in done) and not any(
            t.state == TrialState.COMPLETE for t in trials):
        first = done[0]
        return (f"the first {len(done)} trials all failed; stopping instead of spending the budget. "
                f"Trial {first.number} failed with: {first.user_attrs.get('failure', 'unknown error')}")
    return None


def _report(study, trial, state, value, tag, s, reason=""):
    from optuna.trial import TrialState

    from src.sweep.tracking import tag_state

    tag_state(study._storage.get_trial(trial._trial_id).user_attrs.get("mlflow_run_ids", []), state)

    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    best = ""
    try:
        bt = study.best_trial
        best = f", best {bt.value:.4f} (trial {bt.number})"
    except ValueError:
        pass
    what = f"{s['metric']} {value:.4f}" if value is not None else reason
    print(f"{tag}trial {trial.number} {state}: {what} | study {finished}/{s['trials']} finished{best}", flush=True)


def run_trial(sweep, study, trial, tag="") -> float:
    """Samples the trial's config and trains it once per seed; returns the mean best validation metric."""
    import optuna

    from src.sweep import space as search
    from src.sweep.tracking import trial_tags
    from src.training import Pruned, train_run

    s = sweep.s
    overrides = search.sample(trial, sweep.base, sweep.params, sweep.compose)
    sampled = overrides[len(sweep.base):]
    trial.set_user_attr("overrides", sampled)
    print(f"{tag}trial {trial.number} start: {' '.join(sampled) or '(base config)'}", flush=True)
    metric = s["metric"][len("valid_"):]
    values, run_ids = [], []
    inter_op = int(os.environ.get("DIL_INTER_OP", "0"))
    for k, seed in enumerate(s["seeds"]):
        run_overrides = overrides + [f"seed={seed}"] + ([f"train.threads.inter_op={inter_op}"] if inter_op else [])
        cfg = sweep.compose(run_overrides)

        def reporter(epoch, m, k=k):
            v = m.get(metric)
            if v is None or not math.isfinite(v):
                return
            trial.report(v, step=k * sweep.epochs + epoch)
            if trial.should_prune():
                raise Pruned(epoch, v)

        def started(run_id):
            run_ids.append(run_id)
            trial.set_user_attr("mlflow_run_ids", list(run_ids))

        try:
            result = train_run(cfg, run_overrides, tags=trial_tags(sweep, trial, seed),
                               parent_run_id=sweep.parent_run_id, run_name=f"trial-{trial.number}-seed-{seed}",
                               reporter=reporter, on_start=started, log=lambda m: None)
        except Pruned as e:
            trial.set_user_attr("pruned_at_epoch", e.epoch)
            raise optuna.TrialPruned(f"pruned at epoch {e.epoch} of seed {seed}") from None
        values.append(result.valid[metric])
        trial.set_user_attr("seed_values", dict(zip(map(str, s["seeds"]), values)))
        trial.set_user_attr("test_" + metric, result.test[metric])
    mean = statistics.fmean(values)
    trial.set_user_attr("spread", statistics.pstdev(values) if len(values) > 1 else 0.0)
    if not math.isfinite(mean):
        raise ValueError(f"validation {metric} is not a number")
    return mean
