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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.metrics import HIGHER_IS_BETTER, evaluate
from src.validate import validate


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


def _loss_guard():
    """A Keras callback that stops training as soon as a batch loss is NaN or infinite."""
    import keras

    class LossGuard(keras.callbacks.Callback):
        bad_batch = None

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.bad_batch = (batch, float(loss))
                self.model.stop_training = True

    return LossGuard()


def describe_run(plain: dict) -> str:
    m = plain["model"]
    bits = [m["name"]]
    act = m.get("activation")
    bits.append(act["name"] if isinstance(act, dict) else str(act))
    if "evolution" in m and m["name"] == "dien":
        bits.append(m["evolution"]["cell"] + ("" if m["evolution"].get("convention", "paper") == "paper"
                                              else f"({m['evolution']['convention']})"))
    return " ".join(bits)


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
    import keras
    import mlflow

    from src import probe as probe_mod
    from src import runtime, tracking
    from src.data import load_data
    from src.data.pipeline import make_dataset
    from src.models import build_model
    from src.optim import make_optimizer

    plain = validate(cfg)
    tr = plain["train"]
    seed = int(plain.get("seed", 0))
    keras.backend.clear_session()
    device = runtime.configure(seed, tr["deterministic"], tr["threads"]["intra_op"], tr["threads"]["inter_op"])
    data = load_data(plain["data"], progress=log)
    model = build_model(plain["model"], data.vocab, data.max_len)
    opt = dict(tr["optimizer"])
    model.compile(make_optimizer(opt.pop("name"), opt.pop("lr"), **opt), loss="binary_crossentropy")
    inputs = list(model.input)
    for split in ("train", "valid", "test"):
        if data.size(split) == 0:
            raise ValueError(f"data set {data.name!r} has an empty {split} split; check `data.split`")
    train_ds = make_dataset(data, "train", tr["batch_size"], shuffle=True, seed=seed, inputs=inputs)
    valid_ds = make_dataset(data, "valid", tr["eval_batch_size"], inputs=inputs)
    test_ds = make_dataset(data, "test", tr["eval_batch_size"], inputs=inputs)
    probe = probe_mod.AttentionProbe(data, model, inputs, tr["probe"]["size"], tr["probe"]["metrics_size"], seed)
    metric = tr["early_stopping"]["metric"]

    tracking.setup(plain["tracking"])
    exp_id = tracking.experiment_id(plain["tracking"], data.name)
    all_tags = tracking.run_tags(data, device, {"model": describe_run(plain), **(tags or {})})
    run = mlflow.start_run(experiment_id=exp_id, run_name=run_name, parent_run_id=parent_run_id,
                           nested=parent_run_id is not None, tags=all_tags)
    run_id = run.info.run_id
    if on_start is not None:
        on_start(run_id)
    t_start = time.perf_counter()
    history, best, best_epoch, best_weights, stale = [], None, 0, None, 0
    try:
        tracking.log_config(cfg, list(overrides))
        tracking.log_dataset(data)
        log(f"run {run_id}: {describe_run(plain)} on {data.name} ({data.size('train'):,} train / "
            f"{data.size('valid'):,} valid / {data.size('test'):,} test) on {device}")
        valid_users, valid_y = data.splits["valid"]["user"], data.splits["valid"]["label"]
        with tempfile.TemporaryDirectory() as tmp:
            for epoch in range(1, tr["epochs"] + 1):
                t0 = time.perf_counter()
                guard = _loss_guard()
                fit = model.fit(train_ds, epochs=1, shuffle=False, verbose=_progress_verbose(tr["progress"]),
                                callbacks=[guard])
                loss = float(fit.history["loss"][-1]) if fit.history.get("loss") else float("nan")
                if guard.bad_batch is not None or not math.isfinite(loss):
                    batch, bad = guard.bad_batch or (None, loss)
                    where = f" at batch {batch + 1}" if batch is not None else ""
                    raise Diverged(f"training loss became {bad} in epoch {epoch}{where}; lower "
                                   f"`train.optimizer.lr` (now {tr['optimizer']['lr']}) or check the data")
                m = evaluate(valid_users, valid_y, _predict(model, valid_ds))
                row = {"epoch": epoch, "loss": loss, **{f"valid_{k}": v for k, v in m.items()},
                       "epoch_seconds": time.perf_counter() - t0}
                if probe.active:
                    probe.update()
                    row.update(probe.summary())
                    arrays = probe.snapshot()
                    path = Path(tmp) / f"epoch_{epoch:03d}.npz"
                    path.write_bytes(probe_mod.npz_bytes(arrays))
                    mlflow.log_artifact(str(path), "attention")
                    fig = probe_mod.heatmap(arrays, f"attention weights, epoch {epoch} ({describe_run(plain)})")
                    mlflow.log_figure(fig, f"attention/epoch_{epoch:03d}.png")
                    import matplotlib.pyplot as plt

                    plt.close(fig)
                mlflow.log_metrics({k: float(v) for k, v in row.items() if k != "epoch" and
                                    v is not None and math.isfinite(float(v))}, step=epoch)
                history.append(row)
                is_best = _improved(metric, m[metric], best)
                if is_best:
                    best, best_epoch, best_weights, stale = m[metric], epoch, model.get_weights(), 0
                else:
                    stale += 1
                log(f"epoch {epoch}/{tr['epochs']}  loss {loss:.4f}  valid auc {m['auc']:.4f}  "
                    f"gauc {m['gauc']:.4f}  logloss {m['logloss']:.4f}  ({row['epoch_seconds']:.1f}s)"
                    + ("  *" if is_best else ""))
                if reporter is not None:
                    reporter(epoch, m)
                patience = tr["early_stopping"]["patience"]
                if patience and stale >= patience:
                    log(f"early stop: no better validation {metric} for {patience} epochs")
                    break
            if best_weights is None:
                raise Diverged(f"validation {metric} was never a number; nothing to select")
            model.set_weights(best_weights)
            test = evaluate(data.splits["test"]["user"], data.splits["test"]["label"], _predict(model, test_ds))
            valid_best = {k[len("valid_"):]: v for k, v in history[best_epoch - 1].items() if k.startswith("valid_")}
            final = {"best_epoch": best_epoch, **{f"best_valid_{k}": v for k, v in valid_best.items()},
                     **{f"test_{k}": v for k, v in test.items()}}
            mlflow.log_metrics({k: float(v) for k, v in final.items() if math.isfinite(float(v))})
            if tr["save_model"]:
                path = Path(tmp) / "model.keras"
                model.save(path)
                mlflow.log_artifact(str(path), "model")
        seconds = time.perf_counter() - t_start
        log(f"best epoch {best_epoch}: valid {metric} {best:.4f}; test auc {test['auc']:.4f}  "
            f"gauc {test['gauc']:.4f}  logloss {test['logloss']:.4f}  ({seconds:.0f}s)")
        mlflow.end_run("FINISHED")
        return RunResult(run_id, "FINISHED", best_epoch, valid_best, test, history, seconds)
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
