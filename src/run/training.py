"""One training run, fully tracked: the code path of `src.train`, `src.reproduce` and every sweep trial.

Trains on the data set's training split, evaluates every epoch on validation
(log-loss, AUC, GAUC), keeps the best epoch by the validation metric, reports
test metrics once for that epoch, and logs everything to MLflow.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.config.validate import check_names, validate
from src.data.dataset import filtering_lines
from src.metrics import HIGHER_IS_BETTER, evaluate


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class Pruned(Exception):
    """Raised by a reporter to stop a run early (a sweep's pruner); the run ends KILLED."""

    def __init__(self, epoch: int, value: float | None = None):
        super().__init__(f"pruned at epoch {epoch}")
        self.epoch, self.value = epoch, value


@dataclass
class RunResult:
    run_id: str
    status: str
    best_epoch: int
    valid: dict  # validation metrics of the best epoch
    test: dict
    history: list = field(default_factory=list)  # per epoch: {"epoch", "loss", "valid_auc", ...}
    seconds: float = 0.0
    attention: dict = field(default_factory=dict)  # attention summary of the best and (last_*) the last epoch


def _progress_verbose(setting) -> int:
    if setting == "auto":
        return 1 if sys.stdout.isatty() else 0
    return 1 if setting else 0


def _predict(model, ds) -> np.ndarray:
    return model.predict(ds, verbose=0).reshape(-1).astype(np.float64)


def _improved(metric: str, value: float, best: float | None) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value > best if HIGHER_IS_BETTER[metric] else value < best


def describe_run(plain: dict) -> str:
    m = plain["model"]
    bits = [m["name"]]
    act = m.get("activation")
    bits.append(act["name"] if isinstance(act, dict) else str(act))
    if "evolution" in m and m["name"] == "dien":
        bits.append(m["evolution"]["cell"] + ("" if m["evolution"].get("convention", "paper") == "paper"
                                              else f"({m['evolution']['convention']})"))
    return " ".join(bits)


@dataclass
class Prepared:
    """Everything a run trains and evaluates, before any tracking: config, data, model, inputs."""

    plain: dict
    data: object
    model: object
    train_ds: object
    valid_ds: object
    test_ds: object
    probe: object
    device: str

    @property
    def train(self) -> dict:
        return self.plain["train"]


def prepare(cfg, log=print) -> Prepared:
    """Validates the config, sets seeds and threads, loads the data and builds and compiles the model.

    Raises:
        ConfigError, DataError, ValueError: the config or the data is wrong (nothing tracked yet).
    """
    plain = validate(cfg)  # before TensorFlow loads
    import keras

    from src.data import load_data
    from src.data.pipeline import make_dataset
    from src.models import build_model
    from src.run import probe as probe_mod
    from src.run import runtime
    from src.run.optim import make_optimizer

    tr = plain["train"]
    seed = int(plain.get("seed", 0))
    keras.backend.clear_session()
    keras.config.set_dtype_policy(tr.get("precision", "float32"))  # set on every run: one process, many runs
    device = runtime.configure(seed, tr["deterministic"], tr["threads"]["intra_op"], tr["threads"]["inter_op"])
    check_names(plain)  # registry names, before any data is read
    data = load_data(plain["data"], progress=log)
    model = build_model(plain["model"], data.vocab, data.max_len)
    opt = dict(tr["optimizer"])
    model.compile(make_optimizer(opt.pop("name"), opt.pop("lr"), **opt), loss="binary_crossentropy",
                  jit_compile=bool(tr.get("jit_compile", False)))
    inputs = list(model.input)
    for split in ("train", "valid", "test"):
        if data.size(split) == 0:
            raise ValueError(f"data set {data.name!r} has an empty {split} split; check `data.split`")
    shuffle_seed = seed if tr.get("shuffle_seed") is None else int(tr["shuffle_seed"])
    return Prepared(
        plain=plain, data=data, model=model, device=device,
        train_ds=make_dataset(data, "train", tr["batch_size"], shuffle=True, seed=shuffle_seed, inputs=inputs),
        valid_ds=make_dataset(data, "valid", tr["eval_batch_size"], inputs=inputs),
        test_ds=make_dataset(data, "test", tr["eval_batch_size"], inputs=inputs),
        probe=probe_mod.AttentionProbe(data, model, inputs, tr["probe"]["size"], tr["probe"]["metrics_size"], seed))


def fit(p: Prepared, on_epoch=None, log=print) -> tuple[list, int, dict]:
    """The epoch loop: one Keras `fit` over `train.epochs`, a callback per epoch that evaluates on
    validation, keeps the best weights and stops early; the best weights are restored at the end.

    Epochs are Keras' own (1-based in what this returns), so schedules and callbacks see the true epoch.

    Args:
        p: the prepared run.
        on_epoch: called as on_epoch(row, is_best) after each epoch's validation (row: "epoch", "loss",
            "valid_auc", ..., "epoch_seconds"); may raise (Pruned) to stop the run.
        log: where progress lines go.

    Returns:
        (history rows, best epoch, validation metrics of the best epoch)

    Raises:
        Diverged: the loss became NaN/inf, or validation was never a number.
    """
    import keras

    tr = p.train
    metric = tr["early_stopping"]["metric"]
    patience = tr["early_stopping"]["patience"]
    valid_users, valid_y = p.data.splits["valid"]["user"], p.data.splits["valid"]["label"]
    state = {"history": [], "best": None, "best_epoch": 0, "weights": None, "stale": 0}

    class EpochEnd(keras.callbacks.Callback):
        bad_batch = None

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.bad_batch = (batch, float(loss))
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            epoch += 1
            loss = float((logs or {}).get("loss", float("nan")))
            if self.bad_batch is not None or not math.isfinite(loss):
                batch, bad = self.bad_batch or (None, loss)
                where = f" at batch {batch + 1}" if batch is not None else ""
                raise Diverged(f"training loss became {bad} in epoch {epoch}{where}; lower "
                               f"`train.optimizer.lr` (now {tr['optimizer']['lr']}) or check the data")
            m = evaluate(valid_users, valid_y, _predict(self.model, p.valid_ds))
            row = {"epoch": epoch, "loss": loss, **{f"valid_{k}": v for k, v in m.items()},
                   "epoch_seconds": time.perf_counter() - self.t0}
            state["history"].append(row)
            is_best = _improved(metric, m[metric], state["best"])
            if is_best:
                state.update(best=m[metric], best_epoch=epoch, weights=self.model.get_weights(), stale=0)
            else:
                state["stale"] += 1
            log(f"epoch {epoch}/{tr['epochs']}  loss {loss:.4f}  valid auc {m['auc']:.4f}  "
                f"gauc {m['gauc']:.4f}  logloss {m['logloss']:.4f}  ({row['epoch_seconds']:.1f}s)"
                + ("  *" if is_best else ""))
            if on_epoch is not None:
                on_epoch(row, is_best)
            if patience and state["stale"] >= patience and epoch < tr["epochs"]:
                log(f"early stop: no better validation {metric} for {patience} epochs")
                self.model.stop_training = True

    p.model.fit(p.train_ds, epochs=tr["epochs"], shuffle=False, verbose=_progress_verbose(tr["progress"]),
                callbacks=[EpochEnd()])
    if state["weights"] is None:
        raise Diverged(f"validation {metric} was never a number; nothing to select")
    p.model.set_weights(state["weights"])
    best_epoch = state["best_epoch"]
    valid_best = {k[len("valid_"):]: v for k, v in state["history"][best_epoch - 1].items()
                  if k.startswith("valid_")}
    return state["history"], best_epoch, valid_best


def test_metrics(p: Prepared) -> dict:
    """Test metrics of the model as it stands (after `fit`: the best epoch's weights)."""
    return evaluate(p.data.splits["test"]["user"], p.data.splits["test"]["label"], _predict(p.model, p.test_ds))


@contextmanager
def tracked_run(experiment_id: str, run_name=None, parent_run_id=None, tags=None):
    """An MLflow run's lifecycle: FINISHED when the block ends, KILLED when pruned or interrupted,
    FAILED (with the reason as a tag) on any other exception, which propagates."""
    import mlflow

    from src.run import logger as tracking

    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, parent_run_id=parent_run_id,
                           nested=parent_run_id is not None, tags=tags)
    try:
        yield run
    except Pruned as e:
        mlflow.set_tags({"pruned_at_epoch": str(e.epoch), "end_reason": "pruned"})
        mlflow.end_run("KILLED")
        raise
    except KeyboardInterrupt:
        mlflow.set_tag("end_reason", "interrupted")
        mlflow.end_run("KILLED")
        raise
    except BaseException as e:
        mlflow.set_tags({"end_reason": "failed", "failure": tracking.redact(f"{type(e).__name__}: {e}")[:5000]})
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")


def _log_epoch(p: Prepared, row: dict, tmp: Path) -> None:
    """An epoch's metrics and, for models with attention, the probe's arrays, picture and summary."""
    import mlflow

    from src.run import probe as probe_mod

    if p.probe.active:
        p.probe.update()
        row.update(p.probe.summary())
        arrays = p.probe.snapshot()
        epoch = row["epoch"]
        path = tmp / f"epoch_{epoch:03d}.npz"
        path.write_bytes(probe_mod.npz_bytes(arrays))
        mlflow.log_artifact(str(path), "attention")
        fig = probe_mod.heatmap(arrays, f"attention weights, epoch {epoch} ({describe_run(p.plain)})")
        mlflow.log_figure(fig, f"attention/epoch_{epoch:03d}.png")
        import matplotlib.pyplot as plt

        plt.close(fig)
    mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch" and
                        v is not None and math.isfinite(float(v))}, step=row["epoch"])


def train_run(cfg, overrides=(), tags: dict | None = None, parent_run_id: str | None = None,
              run_name: str | None = None, reporter=None, on_start=None, log=print) -> RunResult:
    """Trains one config and tracks it; returns the result. See the module docstring.

    Args:
        cfg: the composed config (DictConfig).
        overrides: the command-line overrides, logged as given.
        tags: extra MLflow tags.
        parent_run_id: nest the run under this MLflow run (sweeps).
        run_name: the MLflow run name.
        reporter: called as reporter(epoch, valid_metrics) after each epoch; may raise Pruned.
        on_start: called with the MLflow run id once the run exists.
        log: where progress lines go.

    Raises:
        ConfigError, DataError, ValueError: before any MLflow run exists.
        Diverged: the loss became NaN/inf (the run ends FAILED).
        Pruned: from the reporter (the run ends KILLED).
    """
    import mlflow

    from src.run import logger as tracking

    p = prepare(cfg, log)
    tracking.setup(p.plain["tracking"])
    exp_id = tracking.experiment_id(p.plain["tracking"], p.data.name)
    all_tags = tracking.run_tags(p.data, p.device, {"model": describe_run(p.plain), **(tags or {})})
    metric = p.train["early_stopping"]["metric"]
    with tracked_run(exp_id, run_name, parent_run_id, all_tags) as run, tempfile.TemporaryDirectory() as tmp:
        run_id = run.info.run_id
        if on_start is not None:
            on_start(run_id)
        t_start = time.perf_counter()
        tracking.log_config(cfg, list(overrides), data_used=p.data.meta.get("protocol"))
        tracking.log_dataset(p.data)
        data = p.data
        log(f"run {run_id}: {describe_run(p.plain)} on {data.name} ({data.size('train'):,} train / "
            f"{data.size('valid'):,} valid / {data.size('test'):,} test) on {p.device}")
        for line in filtering_lines(data.meta):
            log(line)

        def on_epoch(row, is_best):
            _log_epoch(p, row, Path(tmp))
            if reporter is not None:
                reporter(row["epoch"], {k[len("valid_"):]: v for k, v in row.items() if k.startswith("valid_")})

        history, best_epoch, valid_best = fit(p, on_epoch, log)
        test = test_metrics(p)
        final = {"best_epoch": best_epoch, **{f"best_valid_{k}": v for k, v in valid_best.items()},
                 **{f"test_{k}": v for k, v in test.items()}}
        mlflow.log_metrics({k: float(v) for k, v in final.items() if math.isfinite(float(v))})
        if p.train["save_model"]:
            path = Path(tmp) / "model.keras"
            p.model.save(path)
            mlflow.log_artifact(str(path), "model")
        seconds = time.perf_counter() - t_start
        log(f"best epoch {best_epoch}: valid {metric} {valid_best[metric]:.4f}; test auc {test['auc']:.4f}  "
            f"gauc {test['gauc']:.4f}  logloss {test['logloss']:.4f}  ({seconds:.0f}s)")
        log(tracking.browse_hint(exp_id, run_id, mlflow.get_tracking_uri()))
    attention = {k: v for k, v in history[best_epoch - 1].items() if k.startswith("attention_")}
    attention.update({f"last_{k}": v for k, v in history[-1].items() if k.startswith("attention_")})
    return RunResult(run_id, "FINISHED", best_epoch, valid_best, test, history, seconds, attention)
