"""Benchmarks, printed as numbers and ratios measured in one run.

    python -m src.bench [models] [--models din,dien] [--rounds 6]
        training throughput of the project's DIN and DIEN beside the plain Keras
        baseline (src/tools/yardstick.py)
    python -m src.bench pipeline [--data movielens]
        input pipeline throughput beside DIEN's training throughput
    python -m src.bench preprocess --source taobao --rows 100000000
    python -m src.bench preprocess --source events --rows 100000000
        writes a file of that size in the source's real format and times its
        preprocessing, with peak memory
    python -m src.bench sweep-overhead [--rounds 2]
        the same short trials (DIN, MovieLens, one epoch) bare and through the
        sweep machinery, interleaved in one process: the framework's cost per trial
    python -m src.bench bookkeeping [--workers 4 --trials 40]
        time per trial in study-storage and tracking calls under load: PostgreSQL +
        MLflow tracking server against the local default store
    python -m src.bench ray [--nodes 1,2,4] [--seeds 3]
        the Ray launcher on simulated clusters of 1, 2, 4 one-CPU nodes: cells per
        minute of a tiny synthetic sweep, start-up, and each cell's bookkeeping
        beside its training (src/tools/raybench.py; in a loopback-only namespace)
    python -m src.bench shutdown [--rounds 6]
        how long a process that has trained a model takes to exit, with the
        garbage collector as Python leaves it and as the project's entry points
        set it (runtime.py), fresh processes alternating
    python -m src.bench cache [--users 10000 --items 12000]
        the example click log of docs/your-data.md at about Amazon Beauty's size, its side features brand and
        age_band switched on and off (4 combinations): the cache's size for one combination, for the four
        in one cache, and for the four stored as full copies each
    python -m src.bench evaluation [--fractions 0.05,0.1,0.2]
        the evaluation part of the default sweep's noise against the size of the validation split: its
        reference configuration trained once per `data.split.valid` fraction (seed 0), and the SD of its
        validation AUC over the bootstrap resamples of the validation users

    python -m src.bench decisions [--sims 2000]
        the verdicts on simulated sweeps of the default shape (src/answer/simulate.py): false calls, coverage,
        power and trainings, with the first budget and under a user who raises it whenever a question is
        undecided; the boundary against the fixed-sample one; how often following a price decides
    python -m src.bench backends [--backend tensorflow,tensorflow-xla,jax] [--precision float32]
    python -m src.bench --backend jax,tensorflow          (the same: a --backend list compares backends)
        training throughput of the project's DIN and DIEN on each Keras backend (and
        TensorFlow with XLA, op determinism off), one process per backend, epochs
        interleaved round by round; ratios against the first backend of each round

`models`: random data of the baseline's shapes (history 50, embedding 18, batch
256, 50k samples, 20k items). Both models are built in one process, the
baseline by the yardstick's `build` (src/tools/yardstick.py, or --baseline FILE); each round trains one epoch of the
project (fed by its input pipeline) and one of the baseline (fed NumPy arrays
through `fit`, as its script does), so a round's ratio compares the two under
the same machine state and the same TensorFlow settings (one intra-op thread, op
determinism on, as `src.train` runs; `--intra-op 0` for TensorFlow's default).
This machine switches between a slow and a fast level for seconds at a time: the
summary gives the median and spread of the per-round ratios and the ratio of
each side's best epoch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from src.config.paths import ROOT  # noqa: E402

DEFAULT_BASELINE = None  # src/tools/yardstick.py


ADAM = {"name": "adam", "lr": 1e-3}  # Keras' default Adam, as the baseline uses


def bench_config(model: str, dim: int) -> dict:
    """The project's model with the baseline's architecture (a whole model config, as the schema wants it)."""
    cfg = {
        "name": model,
        "embedding": {"item": dim, "cat": 0, "user": 0},
        "attention": {"hidden_units": [36], "activation": "sigmoid", "scale": True, "softmax": True,
                      "query_projection": False},
        "mlp": {"depth": 2, "width": 200, "taper": 0.4, "batch_norm": False, "dropout": 0.0},
        "activation": "relu",
    }
    if model == "dien":
        cfg.update(evolution={"cell": "augru", "convention": "paper"}, extractor={"units": None},
                   aux_loss={"alpha": 0.0, "hidden_units": [100, 50], "activation": "sigmoid"})
    return cfg


def random_data(samples: int, history: int, items: int, seed: int = 0):
    """The baseline's random data: lengths 1..T, ids 1..items-1, padding after the valid steps."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, history + 1, (samples,))
    hist = rng.integers(1, items, (samples, history))
    hist = hist * (np.arange(history)[None, :] < lengths[:, None])
    target = rng.integers(1, items, (samples,))
    y = rng.integers(0, 2, (samples,)).astype("float32")
    x = {"hist_item": hist.astype("int32"), "target_item": target.astype("int32"),
         "hist_len": lengths.astype("int32")}
    return x, y


def _load_baseline(path: Path | None):
    """The yardstick module: the project's (src/tools/yardstick.py), or a file with the same `build`."""
    if path is None:
        from src.tools import yardstick

        return yardstick
    if not path.is_file():
        raise SystemExit(f"baseline not found: {path} (give a file with a `build` like src/tools/yardstick.py's)")
    spec = importlib.util.spec_from_file_location("plain_keras_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(fn, samples: int) -> int:
    t = time.perf_counter()
    fn()
    return round(samples / (time.perf_counter() - t))


def _summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": min(values), "max": max(values)}


def bench_models(a) -> dict:
    from src.data.dataset import SequenceData
    from src.run.runtime import configure
    from src.run.training import build, dataset

    device = configure(0, deterministic=a.determinism, intra_op=a.intra_op)
    print(json.dumps({"device": device, "intra_op_threads": a.intra_op, "op_determinism": a.determinism}))
    baseline = _load_baseline(a.baseline)
    x, y = random_data(a.samples, a.history, a.items)
    summary = {}
    for model in a.models.split(","):
        project = build(bench_config(model, a.dim), {"item": a.items}, a.history, ADAM)
        data = SequenceData.from_histories(x["hist_item"], x["hist_len"], x["target_item"], y)
        ds = dataset(data, "train", project, a.batch, seed=0)
        base = baseline.build(model, a.items, a.history, a.dim, False)
        runs = {
            "project": lambda p=project, d=ds: p.fit(d, epochs=1, verbose=0, shuffle=False),
            "baseline": lambda b=base: b.fit([x["hist_item"], x["target_item"]], y, batch_size=a.batch,
                                             epochs=1, verbose=0),
        }
        for fn in runs.values():  # first epoch pays for tracing
            fn()
        rows = []
        for r in range(a.rounds):
            row = {"model": model, "round": r + 1}
            row.update({k: _timed(fn, a.samples) for k, fn in runs.items()})
            row["ratio"] = round(row["project"] / row["baseline"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
        s = {k: _summary([r[k] for r in rows]) for k in ("project", "baseline", "ratio")}
        s["best_epoch_ratio"] = round(s["project"]["max"] / s["baseline"]["max"], 3)
        summary[model] = s
        print(json.dumps({"model": model, "samples_per_s": "median", "summary": s}), flush=True)
    return summary


BACKENDS = {  # name -> (KERAS_BACKEND, jit_compile, op determinism)
    "tensorflow": ("tensorflow", False, True),
    "tensorflow-xla": ("tensorflow", True, False),
    "jax": ("jax", True, True),
}


def _backend_child(a) -> None:
    """One backend's side of `backends`: builds the models, trains a warm-up epoch each, then trains one
    timed epoch per model name read from stdin and answers with samples/s."""
    from src.data.dataset import SequenceData
    from src.run.runtime import configure
    from src.run.training import build, dataset

    _, jit, determinism = BACKENDS[a.backend]
    import keras

    keras.config.set_dtype_policy(a.precision)
    device = configure(0, deterministic=determinism, intra_op=a.intra_op)
    x, y = random_data(a.samples, a.history, a.items)
    data = SequenceData.from_histories(x["hist_item"], x["hist_len"], x["target_item"], y)
    runs = {}
    for model in a.models.split(","):
        net = build(bench_config(model, a.dim), {"item": a.items}, a.history, ADAM, jit_compile=jit)
        ds = dataset(data, "train", net, a.batch, seed=0)
        runs[model] = lambda n=net, d=ds: n.fit(d, epochs=1, verbose=0, shuffle=False)
        runs[model]()  # the first epoch pays for tracing and compiling
    print(json.dumps({"ready": a.backend, "device": device}), flush=True)
    for line in sys.stdin:
        print(json.dumps({"samples_per_s": _timed(runs[line.strip()], a.samples)}), flush=True)


def bench_backends(a) -> dict:
    import subprocess

    names = (a.backend or ",".join(BACKENDS)).split(",")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise SystemExit(f"unknown backend(s) {unknown}; known: {', '.join(BACKENDS)}")
    children = {}
    for name in names:
        env = {**os.environ, "KERAS_BACKEND": BACKENDS[name][0]}
        cmd = [sys.executable, "-m", "src.bench", "backend-child", "--backend", name, "--models", a.models,
               "--precision", a.precision, "--samples", str(a.samples), "--history", str(a.history),
               "--items", str(a.items), "--dim", str(a.dim), "--batch", str(a.batch), "--intra-op", str(a.intra_op)]
        child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = json.loads(child.stdout.readline())
        print(json.dumps({"backend": name, "device": ready["device"], "jit_compile": BACKENDS[name][1],
                          "op_determinism": BACKENDS[name][2], "precision": a.precision}), flush=True)
        children[name] = child
    summary = {}
    try:
        for model in a.models.split(","):
            rows = []
            for r in range(a.rounds):
                row = {"model": model, "round": r + 1}
                for name, child in children.items():
                    child.stdin.write(model + "\n")
                    child.stdin.flush()
                    row[name] = json.loads(child.stdout.readline())["samples_per_s"]
                for name in names[1:]:
                    row[f"{name}/{names[0]}"] = round(row[name] / row[names[0]], 3)
                rows.append(row)
                print(json.dumps(row), flush=True)
            summary[model] = {k: _summary([r[k] for r in rows]) for k in rows[0] if k not in ("model", "round")}
            print(json.dumps({"model": model, "samples_per_s": "median", "summary": summary[model]}), flush=True)
    finally:
        for child in children.values():
            child.stdin.close()
            child.wait(timeout=60)
    return summary


def bench_pipeline(a) -> dict:
    """Batches per second of the input pipeline alone, beside DIEN training on the same data."""
    from src.config import compose
    from src.run.training import prepare

    p = prepare(compose([f"data={a.data}", "model=dien", f"train.batch_size={a.batch}", "train.probe.size=0",
                         f"train.threads.intra_op={a.intra_op}"]), log=lambda m: None)
    model, ds, n = p.model, p.train_ds, p.data.size("train")
    for _ in ds:  # warm up
        pass
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    rows = []
    for r in range(a.rounds):
        pipe = _timed(lambda: [None for _ in ds], n)
        train = _timed(lambda: model.fit(ds, epochs=1, verbose=0, shuffle=False), n)
        rows.append({"round": r + 1, "pipeline": pipe, "dien_training": train,
                     "ratio": round(pipe / train, 2)})
        print(json.dumps(rows[-1]), flush=True)
    s = {k: _summary([r[k] for r in rows]) for k in ("pipeline", "dien_training", "ratio")}
    print(json.dumps({"data": a.data, "samples": n, "samples_per_s": "median", "summary": s}), flush=True)
    return s


OVERHEAD_FIXED = ["data=movielens", "model=din", "train.epochs=1"]
OVERHEAD_GRID = {"model/activation": ["sigmoid", "dice"], "model.attention.scale": ["true", "false"]}


def _bare_trial(overrides: list[str]) -> float:
    """The same training work as a trial, without the framework: no MLflow, no Optuna, no artifacts."""
    from src.config import compose
    from src.run.training import fit, prepare, test_metrics

    cfg = compose(overrides)  # composed outside the timing: composition is framework cost
    t = time.perf_counter()
    p = prepare(cfg, log=lambda m: None)
    fit(p, log=lambda m: None)
    test_metrics(p)
    return time.perf_counter() - t


def bench_sweep_overhead(a) -> dict:
    """Per-trial time of the same short trials bare and through the sweep machinery (composition,
    MLflow run and artifacts, study bookkeeping), interleaved in one process: bare, swept, bare, ..."""
    import itertools
    import tempfile

    from src.sweep import driver
    from src.sweep import study as studies
    from src.sweep.definition import load
    from src.sweep.study import quiet
    from src.sweep.worker import one_trial

    quiet()
    combos = [[f"{k}={v}" for k, v in zip(OVERHEAD_GRID, vals)]
              for vals in itertools.product(*OVERHEAD_GRID.values())]
    search_args = [f"{k}=choice({','.join(v)})" for k, v in OVERHEAD_GRID.items()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trials = len(combos) * a.rounds + 1
        definition = load(["sweep=none", *OVERHEAD_FIXED, *search_args, "sweep.sampler=random",
                                      f"sweep.trials={trials}", "sweep.pruner=none", "sweep.name=overhead",
                                      f"sweep.storage=journal:{tmp}/o.journal", f"tracking.uri=sqlite:///{tmp}/m.db",
                                      f"tracking.artifact_root={tmp}/artifacts"])
        sweep = driver.prepare(definition)
        job = sweep.job()
        storage = studies.open_storage(job.url)
        study = studies.load(definition, job.url, storage, job.epochs)
        points = [dict(c.split("=", 1) for c in combo) for combo in combos]
        order = [points[0]] + points * a.rounds  # the first pair warms both paths up and is not counted
        for i, point in enumerate(order):
            overrides = OVERHEAD_FIXED + [f"{k}={v}" for k, v in point.items()]
            bare = _bare_trial(overrides)
            study.enqueue_trial({k: (v == "true") if v in ("true", "false") else v for k, v in point.items()})
            t = time.perf_counter()
            one_trial(job, study, storage, tag="  ")
            swept = time.perf_counter() - t
            if i == 0:
                continue
            rows.append({"trial": i, "config": " ".join(overrides[len(OVERHEAD_FIXED):]), "bare_s": round(bare, 2),
                         "sweep_s": round(swept, 2), "overhead": round(swept / bare - 1, 3)})
            print(json.dumps(rows[-1]), flush=True)
    s = {k: _summary([r[k] for r in rows]) for k in ("bare_s", "sweep_s", "overhead")}
    s["overhead_of_means"] = round(statistics.fmean(r["sweep_s"] for r in rows) /
                                   statistics.fmean(r["bare_s"] for r in rows) - 1, 3)
    print(json.dumps({"trials": len(rows), "fixed": OVERHEAD_FIXED, "summary": s}), flush=True)
    return s


SHUTDOWN_CHILD = """
import atexit, sys, time
from src.run import runtime
if sys.argv[1] == "project":
    runtime.entry_point()
else:  # the collector as Python leaves it: no import hook (its freeze), no freeze at the first run
    runtime.freeze_the_stack = lambda: None
import mlflow, optuna  # noqa: F401  (what a sweep worker holds besides its model)
from src.config import compose
from src.run.training import fit, prepare
fit(prepare(compose(sys.argv[2:]), log=lambda m: None), log=lambda m: None)
atexit.register(lambda: print(f"script-done {time.time()!r}", flush=True))  # registered last: runs first
"""
SHUTDOWN_RUN = ["data=synthetic", "data.users=60", "data.items=80", "data.cats=4", "data.seq_len=25",
                "data.samples_per_user=8", "data.max_len=20", "data.cache=false", "model=dien", "train.epochs=1"]


def bench_shutdown(a) -> dict:
    """How long a process that has trained a model takes to end, from the end of its script to its exit,
    with the garbage collector as Python leaves it and as the project's entry points set it (the freezes
    and `runtime.short_shutdown`): one fresh process each, alternating, `--rounds` pairs."""
    import subprocess

    rows = []
    for i in range(a.rounds):
        for mode in ("usual", "project"):
            proc = subprocess.run([sys.executable, "-c", SHUTDOWN_CHILD, mode, *SHUTDOWN_RUN], cwd=ROOT,
                                  capture_output=True, text=True, timeout=600)
            ended = time.time()
            marks = [line for line in proc.stdout.splitlines() if line.startswith("script-done ")]
            if proc.returncode != 0 or not marks:
                raise RuntimeError(f"the {mode} child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            rows.append({"round": i, "shutdown": mode, "exit_s": round(ended - float(marks[-1].split()[1]), 3)})
            print(json.dumps(rows[-1]), flush=True)
    s = {mode: _summary([r["exit_s"] for r in rows if r["shutdown"] == mode]) for mode in ("usual", "project")}
    s["ratio_of_medians"] = round(s["project"]["median"] / s["usual"]["median"], 3)
    print(json.dumps({"rounds": a.rounds, "run": SHUTDOWN_RUN, "summary": s}), flush=True)
    return s


BOOKKEEPING_DATA = SimpleNamespace(name="bookkeeping", meta={"fingerprint": "bookkeeping", "files": []}, vocab={},
                                   max_len=0, size=lambda split: 0)


def _bookkeeping_worker(job: dict) -> list[dict]:
    """One worker's trials with the storage and tracking calls of a real trial, timed, and no training:
    the run logger (src/run/logger.py) and the sweep's tracking calls as a trial makes them."""
    import numpy as np
    import optuna
    from omegaconf import OmegaConf

    from src.run.logger import RunLogger
    from src.sweep import attrs
    from src.sweep.study import open_storage, quiet
    from src.sweep.tracking import tag_state

    quiet()
    study = optuna.load_study(study_name="bookkeeping", storage=open_storage(job["storage"]),
                              sampler=optuna.samplers.RandomSampler(seed=job["worker"]))
    # a resolved config flattens to about 90 params
    cfg = OmegaConf.create({"section": {f"key_{i}": i for i in range(90)}})
    arrays = {"weights": np.random.rand(16, 50).astype("float32")}
    out = []
    for _ in range(job["trials"]):
        t_store = t_track = 0.0
        t = time.perf_counter()
        trial = study.ask()
        for k, v in ((attrs.HOST, "bench"), (attrs.PID, os.getpid()), (attrs.HEARTBEAT, time.time()),
                     (attrs.OVERRIDES, ["model/activation=dice"])):  # what a worker writes as a trial starts
            k.set(trial, v)
        trial.suggest_categorical("model/activation", ["sigmoid", "dice"])
        trial.suggest_int("model.mlp.depth", 1, 3)
        trial.suggest_float("train.optimizer.lr", 1e-4, 1e-2, log=True)
        t_store += time.perf_counter() - t
        t = time.perf_counter()
        runlog = RunLogger({"uri": job["tracking"], "experiment": "bookkeeping"}, BOOKKEEPING_DATA, "cpu", "bench")
        with runlog.run(f"trial-{trial.number}", job["parent"], {"trial": str(trial.number), "study": "bookkeeping"}):
            runlog.config(cfg, [])
            t_track += time.perf_counter() - t
            for epoch in range(1, job["epochs"] + 1):
                t = time.perf_counter()
                runlog.epoch({"epoch": epoch, **{k: 0.5 for k in ("loss", "valid_auc", "valid_gauc", "valid_logloss",
                                                                   "epoch_seconds", "attention_entropy")}}, arrays)
                t_track += time.perf_counter() - t
                t = time.perf_counter()
                trial.report(0.5 + 0.01 * epoch, epoch)
                trial.should_prune()
                attrs.HEARTBEAT.set(trial, time.time())
                t_store += time.perf_counter() - t
            t = time.perf_counter()
            runlog.final({k: 0.5 for k in ("best_valid_auc", "test_auc", "test_gauc", "test_logloss")})
        tag_state([runlog.run_id], "COMPLETE")
        t_track += time.perf_counter() - t
        t = time.perf_counter()
        study.tell(trial, 0.5)
        study.get_trials(deepcopy=False)  # the worker's loop reads the study once per trial
        t_store += time.perf_counter() - t
        out.append({"storage_s": t_store, "tracking_s": t_track})
    return out


def _bookkeeping_run(storage: str, tracking: str, workers: int, trials: int, epochs: int) -> dict:
    import multiprocessing as mp

    import optuna

    from src.run.logger import experiment_id, setup
    from src.sweep.study import open_storage
    from src.sweep.tracking import create_parent

    optuna.create_study(study_name="bookkeeping", storage=open_storage(storage), direction="maximize")
    tracking_cfg = {"uri": tracking, "experiment": "bookkeeping"}
    setup(tracking_cfg)
    parent = create_parent(experiment_id(tracking_cfg, "bookkeeping"), "sweep bookkeeping", {"study": "bookkeeping"})
    jobs = [{"storage": storage, "tracking": tracking, "parent": parent, "worker": w,
             "trials": trials // workers, "epochs": epochs} for w in range(workers)]
    t = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        rows = [r for rs in pool.map(_bookkeeping_worker, jobs) for r in rs]
    wall = time.perf_counter() - t
    return {"trials": len(rows), "wall_s": round(wall, 1),
            "storage_ms_per_trial": round(1000 * statistics.fmean(r["storage_s"] for r in rows), 1),
            "tracking_ms_per_trial": round(1000 * statistics.fmean(r["tracking_s"] for r in rows), 1),
            "storage_ms_p90": round(1000 * sorted(r["storage_s"] for r in rows)[int(0.9 * len(rows))], 1),
            "tracking_ms_p90": round(1000 * sorted(r["tracking_s"] for r in rows)[int(0.9 * len(rows))], 1)}


def bench_bookkeeping(a) -> dict:
    """Time per trial in study-storage and tracking calls, N workers at once: PostgreSQL + an MLflow
    tracking server (PostgreSQL backend) against the local default (journal file + SQLite)."""
    import tempfile

    from src.tools.services import free_port, postgres, start_mlflow_server, stop_process

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["local"] = _bookkeeping_run(f"journal:{tmp}/optuna.journal", f"sqlite:///{tmp}/mlflow.db",
                                        a.workers, a.trials, a.epochs)
        print(json.dumps({"backend": "local (journal file + SQLite)", "workers": a.workers, **out["local"]}),
              flush=True)
        with postgres() as url:
            port = free_port()
            server = start_mlflow_server(url.format(db="mlflow"), Path(tmp) / "server-artifacts", port)
            try:
                out["postgresql"] = _bookkeeping_run(url.format(db="optuna"), f"http://127.0.0.1:{port}",
                                                     a.workers, a.trials, a.epochs)
            finally:
                stop_process(server)
        print(json.dumps({"backend": "PostgreSQL + mlflow server", "workers": a.workers, **out["postgresql"]}),
              flush=True)
    ratio = {k: round(out["postgresql"][k] / out["local"][k], 2) for k in ("storage_ms_per_trial",
                                                                          "tracking_ms_per_trial")}
    print(json.dumps({"postgresql_over_local": ratio}), flush=True)
    return out


def bench_preprocess(a) -> dict:
    from src.data.scale import run_scale_benchmark

    return run_scale_benchmark(a.source, a.rows, Path(a.workdir) if a.workdir else None, keep=a.keep)


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_cache(a) -> dict:
    """Cache sizes of the example log's four on/off combinations of two side features."""
    import tempfile

    from omegaconf import OmegaConf

    from src.config.paths import CONF_DIR
    from src.data import load_data

    spec = importlib.util.spec_from_file_location("make_clicks", ROOT / "docs/examples/clicks/make_clicks.py")
    make_clicks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_clicks)
    with tempfile.TemporaryDirectory(prefix="dil-cache-bench-") as tmp:
        tmp = Path(tmp)
        make_clicks.main(tmp, a.users, a.items)
        cfg = {**OmegaConf.to_container(OmegaConf.load(CONF_DIR / "data" / "events.yaml")),
               **OmegaConf.to_container(OmegaConf.load(CONF_DIR / "data" / "clicks_example.yaml"))}
        cfg.pop("defaults", None)
        cfg.update(path=str(tmp / "clicks.csv"), seed=0)
        cfg["items"]["path"], cfg["users"]["path"] = str(tmp / "items.csv"), str(tmp / "users.csv")
        combos = [(brand, age) for brand in (True, False) for age in (True, False)]
        alone, t = [], time.perf_counter()
        for i, (brand, age) in enumerate(combos):
            features = {**cfg["features"], "brand": {**cfg["features"]["brand"], "enabled": brand},
                        "age_band": {**cfg["features"]["age_band"], "enabled": age}}
            one = {**cfg, "features": features}
            load_data(one, cache_dir=tmp / f"alone-{i}", progress=lambda m: None)
            load_data(one, cache_dir=tmp / "shared", progress=lambda m: None)
            alone.append(_tree_bytes(tmp / f"alone-{i}"))
        shared = _tree_bytes(tmp / "shared")
        rows = sum(1 for _ in open(tmp / "clicks.csv")) - 1
    out = {"rows": rows, "users": a.users, "items": a.items, "combinations": len(combos),
           "one_combination_mb": round(alone[0] / 1e6, 2), "four_full_copies_mb": round(sum(alone) / 1e6, 2),
           "four_shared_mb": round(shared / 1e6, 2), "shared_over_one": round(shared / alone[0], 2),
           "full_copies_over_one": round(sum(alone) / alone[0], 2), "seconds": round(time.perf_counter() - t, 1)}
    print(json.dumps(out), flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", default="models",
                   choices=["models", "pipeline", "preprocess", "sweep-overhead", "bookkeeping", "backends",
                            "backend-child", "ray", "shutdown", "decisions", "cache", "evaluation"])
    p.add_argument("--backend", default=None,
                   help=f"backends: which to compare, the first is the reference ({', '.join(BACKENDS)})")
    p.add_argument("--precision", default="float32", help="backends: float32, mixed_float16, mixed_bfloat16")
    p.add_argument("--workers", type=int, default=4, help="bookkeeping: worker processes")
    p.add_argument("--trials", type=int, default=40, help="bookkeeping: trials in all")
    p.add_argument("--epochs", type=int, default=3, help="bookkeeping: epochs reported per trial")
    p.add_argument("--nodes", default="1,2,4", help="ray: simulated node counts, one CPU each")
    p.add_argument("--seeds", type=int, default=3, help="ray: seeds of the 4-configuration design")
    p.add_argument("--sims", type=int, default=2000, help="decisions: simulated sweeps per setting")
    p.add_argument("--fractions", default="0.05,0.1,0.2", help="evaluation: validation fractions (data.split.valid)")
    p.add_argument("--models", default="din,dien")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--history", type=int, default=50)
    p.add_argument("--dim", type=int, default=18)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--samples", type=int, default=50000)
    p.add_argument("--items", type=int, default=None, help="models: 20000; cache: 12000")
    p.add_argument("--users", type=int, default=10000, help="cache: users of the example log")
    p.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE,
                   help="a plain Keras baseline file with a `build` (default: src/tools/yardstick.py)")
    p.add_argument("--no-determinism", dest="determinism", action="store_false",
                   help="models: leave TensorFlow's op determinism off (on by default, as in training)")
    p.add_argument("--intra-op", type=int, default=1,
                   help="TensorFlow intra-op threads for both sides (1, as training uses; 0: one per core)")
    p.add_argument("--data", default="movielens", help="pipeline: the data config")
    p.add_argument("--source", default="taobao", choices=["taobao", "amazon", "events"],
                   help="preprocess: format (events: the Taobao rows as a log, beside the Taobao loader)")
    p.add_argument("--rows", type=int, default=100_000_000, help="preprocess: rows (events) to generate")
    p.add_argument("--workdir", help="preprocess: where to write the generated file (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="preprocess: keep the generated file")
    a = p.parse_args(argv)
    if a.items is None:
        a.items = 12000 if a.what == "cache" else 20000
    if a.what == "models" and a.backend:  # `python -m src.bench --backend jax,tensorflow` compares backends
        a.what = "backends"
    return {"models": bench_models, "pipeline": bench_pipeline, "preprocess": bench_preprocess,
            "sweep-overhead": bench_sweep_overhead, "bookkeeping": bench_bookkeeping, "backends": bench_backends,
            "backend-child": _backend_child, "ray": _ray, "shutdown": bench_shutdown,
            "decisions": bench_decisions, "cache": bench_cache, "evaluation": bench_evaluation}[a.what](a)


def bench_decisions(a) -> dict:
    """Simulated sweeps of the default shape: four two-level factors in a 2^(4-1) design, run noise 0.008 and
    seed luck 0.004, three seeds first and a budget of twelve, delta 0.002."""
    import numpy as np

    from src.answer import decision, simulate
    from src.sweep import space
    from src.sweep.design import fractional

    names = ("a", "b", "c", "d")
    levels = np.array([[int(c[k] == 1) for k in names] for c in fractional(
        {k: space.Param(k, "categorical", choices=(0, 1)) for k in names})])
    out = {"sims": a.sims, "widths": [], "sweeps": [], "prices": []}
    planned = simulate.Setting(levels, (0,) * 4, 0.002, plan=192).boundary
    for seeds in (3, 6, 12, 48, 192):
        f = simulate.fit(simulate.runs(simulate.Setting(levels, (0,) * 4, 0.002), 1, np.random.default_rng(0),
                                       seeds), levels)
        c = decision.multiplier(f["df"], float(f["n_eff"][0]), decision.ALPHA / 4)
        cp = decision.combined(f["df"], float(f["n_eff"][0]), seeds, decision.ALPHA / 4, planned)
        fixed = float(decision.stats.t.ppf(1 - decision.ALPHA / 8, f["df"]))
        out["widths"].append({"seeds": seeds, "trainings": 8 * seeds, "boundary": c, "planned_192": cp,
                              "fixed_sample": fixed, "ratio": c / fixed, "ratio_planned_192": cp / fixed})
        print(f"{8 * seeds:5d} trainings: boundary {c:.2f} se (with a plan of 192 seeds {cp:.2f}), fixed-sample "
              f"{fixed:.2f} se, ratio {c / fixed:.2f} ({cp / fixed:.2f})")
    budget = simulate.Setting(levels, (0.0,) * 4, 0.002).budget
    for plan, procedure in ((None, "no plan: the confidence sequence alone"),
                            (budget, "plan = the budget's seeds (sweep.plan's default)"),
                            (4 * budget, "plan = 4 times the budget's seeds")):
        for label, truth in (("null", (0.0,) * 4), ("one SD on a", (0.008, 0.0, 0.0, 0.0))):
            for raises in (0, 3):
                s = simulate.Setting(levels, truth, 0.002, raises=raises, plan=plan)
                row = {"procedure": procedure, "plan": plan, "truth": label, "raises": raises,
                       **simulate.summary(s, simulate.sweeps(s, a.sims, seed=1))}
                out["sweeps"].append(row)
                print(f"{procedure}, {label}, raises {raises}: false calls {row['false_call_rate']:.3f}, coverage "
                      f"{row['coverage']:.3f}, a called better {row['called_better'][0]:.3f}, trainings "
                      f"{row['trainings']:.0f}, a decided at {row['decided_at'][0]:.0f} (median "
                      f"{row['decided_at_median'][0]:.0f})", flush=True)
    for effect in (0.0, 0.001, 0.002, 0.004, 0.006):
        s = simulate.Setting(levels, (effect, 0.0, 0.0, 0.0), 0.002)
        row = {"effect": effect, **simulate.follow_price(s, min(a.sims, 1000), seed=5)}
        out["prices"].append(row)
        print(f"price followed, effect {effect}: {row['priced']} priced, stated chance {row['stated_chance']:.3f} "
              f"(at least {row['stated_least']:.3f}), decided {row['decided']:.3f}; decided by the seeds that "
              f"decide whatever the effect "
              f"{row['decided_by_certain']:.3f} (of {row['certain_priced']})", flush=True)
    out["default_prices"] = _default_prices()
    out["blocks"] = _block_rows(a.sims)
    print(json.dumps(out))
    return out


def bench_evaluation(a) -> list[dict]:
    """The evaluation-sample noise of one trained model (src/metrics.py `bootstrap`: its validation AUC over
    resamples of the validation users) at several validation fractions: the default sweep's fixed settings,
    the first level of each of its questions, seed 0."""
    import statistics

    import yaml

    from src.config import compose
    from src.config.paths import ROOT
    from src.run import training

    doc = yaml.safe_load((ROOT / "sweeps" / "default.yaml").read_text())
    reference = [f"{k}={v.split('(', 1)[1].split(',')[0]}" for k, v in doc["search"].items()]
    rows = []
    for fraction in (float(x) for x in a.fractions.split(",")):
        p = training.prepare(compose([*doc["fixed"], *reference, f"data.split.valid={fraction}", "seed=0"]),
                             log=lambda m: None)
        training.fit(p, log=lambda m: None)
        boot = training.eval_bootstrap(p)["auc"]
        valid = p.data.splits["valid"]
        row = {"valid_fraction": fraction, "valid_samples": int(len(valid["label"])),
               "valid_users": int(len(set(valid["user"].tolist()))), "auc_sd": statistics.stdev(boot)}
        rows.append(row)
        print(f"data.split.valid={fraction}: {row['valid_samples']} samples of {row['valid_users']} users, "
              f"validation AUC SD over {len(boot)} resamples of the users {row['auc_sd']:.4f}", flush=True)
    print(json.dumps(rows))
    return rows


def _default_prices() -> list[dict]:
    """The default sweep's four questions as they were before common random numbers (effects at 3 seeds of 8
    configurations, residual SD 0.00496: its plan was sized from them), priced as the report prices them with no
    plan and with plans of several lengths."""
    import math

    from src.answer import decision
    from src.answer.boundary import Plan

    rows = []
    for last in (None, 150, 170, 200, 250):
        plan = Plan(2, last) if last else None
        seeds = [decision.price({"effect": e, "se": 0.00496 / math.sqrt(6), "df": 17, "n_eff": 6.0, "seeds": 3},
                                "maximize", 24, 8, decision.ALPHA / 4, 0.001, None, plan=plan).seeds
                 for e in (0.0003, -0.0002, 0.0008, -0.0001)]
        rows.append({"plan": last, "seeds": seeds})
        print(f"default sweep's questions, {'no plan' if last is None else f'plan of {last} seeds'}: priced at "
              f"{min(seeds)}-{max(seeds)} seeds", flush=True)
    return rows


def _block_rows(sims: int) -> list[dict]:
    """Simulated block sweeps (src/answer/simulate.py's block_sweep: a two-level question crossed with
    blocks, a look after seeds 3, 5, 8 and 12): null effects in blocks whose noise differs fourfold, seeded
    to the end or per block (sweep.until=decided); and blocks drawn from a population of effects."""
    from src.answer import simulate

    noise = (0.004, 0.006, 0.008, 0.012, 0.016)
    rows = []
    for label, truths, kw in (
            ("null, 5 blocks, unequal noise", (0.0,) * 5, {"noise": noise, "delta": 0.02}),
            ("null, 5 blocks, unequal noise, per block", (0.0,) * 5,
             {"noise": noise, "delta": 0.02, "per_block": True}),
            ("3 blocks, effects 0.03 0 0.01", (0.03, 0.0, 0.01), {"noise": noise[::2], "delta": 0.02}),
            ("3 blocks, effects 0.03 0 0.01, per block", (0.03, 0.0, 0.01),
             {"noise": noise[::2], "delta": 0.02, "per_block": True}),
            ("same effect 0.01 in 5 blocks", (0.01,) * 5, {}),
            ("population N(0.01, 0.01), 3 blocks", (0.01,) * 3, {"tau": 0.01}),
            ("population N(0.01, 0.01), 5 blocks", (0.01,) * 5, {"tau": 0.01}),
            ("population N(0.01, 0.01), 8 blocks", (0.01,) * 8, {"tau": 0.01})):
        row = {"setting": label, **simulate.block_summary(truths, sims, seed=len(rows) + 11, **kw)}
        rows.append(row)
        print(f"{label:42s} wrong calls {row['wrong_call_rate']:.3f}, all intervals held {row['all_held']:.3f}, "
              f"random-effects coverage {row['random_effects_coverage']:.3f}, median I2 {row['median_i2']:.2f}, "
              f"depends {row['depends']:.3f}, trainings {row['trainings']:.1f}", flush=True)
    return rows


def _ray(a) -> dict:
    from src.tools import raybench

    return raybench.bench(a)


if __name__ == "__main__":
    from src.run.runtime import entry_point

    entry_point()
    sys.exit(0 if main() is not None else 1)
