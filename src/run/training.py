"""One training run, fully tracked: the code path of `src.train`, `src.reproduce` and every sweep trial.

Trains on the data set's training split, evaluates every epoch on validation
(log-loss, AUC, GAUC), keeps the best epoch by the validation metric, reports
test metrics once for that epoch, and logs everything to MLflow through the run logger
(src/run/logger.py), the run's one tracking seam: nothing here imports MLflow.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from src.config.schema import Config, Train
from src.config.validate import validate
from src.data.dataset import filtering_lines
from src.metrics import HIGHER_IS_BETTER, bootstrap, evaluate
from src.run import faults
from src.run.logger import Pruned, RunLogger
from src.run.registry import check_names

__all__ = ["Diverged", "Pruned", "RunResult", "prepare", "fit", "test_metrics", "train_run"]


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


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
    eval_bootstrap: dict = field(default_factory=dict)  # {metric: [value on each resample of validation users]}


def _progress_verbose(setting) -> int:
    if setting == "auto":
        return 1 if sys.stdout.isatty() else 0
    return 1 if setting else 0


def _predict(model, ds, check_interrupt=None) -> np.ndarray:
    """Click probabilities, float64; `check_interrupt` is called after every batch (see `fit`)."""
    callbacks = None
    if check_interrupt is not None:
        import keras

        class Check(keras.callbacks.Callback):
            def on_predict_batch_end(self, batch, logs=None):
                check_interrupt()

        callbacks = [Check()]
    return model.predict(ds, verbose=0, callbacks=callbacks).reshape(-1).astype(np.float64)


def _improved(metric: str, value: float, best: float | None) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value > best if HIGHER_IS_BETTER[metric] else value < best


def describe_run(model) -> str:
    """What a run trains, in a few words: model, activation and (DIEN) evolution cell, from the typed model config."""
    act = model.activation
    bits = [model.name, act if isinstance(act, str) else act.name]
    if model.name == "dien":
        convention = model.evolution.convention
        bits.append(model.evolution.cell + ("" if convention == "paper" else f"({convention})"))
    return " ".join(bits)


@dataclass
class Prepared:
    """Everything a run trains and evaluates, before any tracking: config, data, model, inputs."""

    config: Config
    data: object
    model: object
    train_ds: object
    valid_ds: object
    test_ds: object
    probe: object
    device: str

    @property
    def train(self) -> Train:
        return self.config.train


def build(model_cfg, vocab: dict, max_len: int, optimizer: dict, jit_compile: bool = False, features=()):
    """The model built from its config (typed, or a mapping the schema checks) and compiled by
    `compile_model` with the optimizer (`{"name", "lr", **kwargs}`); `features`: the data's side features."""
    from src.models import build_model

    return compile_model(build_model(model_cfg, vocab, max_len, features), optimizer, jit_compile)


def compile_model(model, optimizer: dict, jit_compile: bool = False):
    """`model` compiled with the optimizer (`{"name", "lr", **kwargs}`) and the log-loss, as every run
    compiles it; returns the model.

    `jit_compile` chooses XLA on TensorFlow. JAX always compiles its steps with XLA: Keras would
    otherwise run them op by op (each op compiled on first use), which is slower and not how JAX is
    meant to run.

    The optimizer's state (Adam's moments, the step counter) is created here, before the first step:
    on TensorFlow, Keras otherwise creates it inside the first trace of the train step, and
    `tf.function` then traces the whole step a second time, without creating variables. Built first,
    the step is traced once, with the same numbers (the state starts at zeros either way)."""
    import keras

    from src.run.optim import make_optimizer

    opt = dict(optimizer)
    jit = bool(jit_compile) or keras.backend.backend() == "jax"
    model.compile(make_optimizer(opt.pop("name"), opt.pop("lr"), **opt), loss="binary_crossentropy",
                  jit_compile=jit)
    model.optimizer.build(model.trainable_variables)
    return model


def dataset(data, split: str, model, batch_size: int, seed: int | None = None):
    """A split's batches with the model's inputs; the training split shuffled (seeded), the others in order."""
    from src.data.pipeline import make_dataset

    if split == "train":
        return make_dataset(data, split, batch_size, shuffle=True, seed=seed, inputs=list(model.input))
    return make_dataset(data, split, batch_size, inputs=list(model.input))


def prepare(cfg, log=print) -> Prepared:
    """Validates the config, sets seeds and threads, loads the data and builds and compiles the model.

    Raises:
        ConfigError, DataError, ValueError: the config or the data is wrong (nothing tracked yet).
    """
    config = validate(cfg)  # before TensorFlow loads
    import keras

    from src.data import load_data
    from src.run import probe as probe_mod
    from src.run import runtime

    tr, seed = config.train, config.seed
    keras.backend.clear_session()
    keras.config.set_dtype_policy(tr.precision)  # set on every run: one process, many runs
    device = runtime.configure(seed, tr.deterministic, tr.threads.intra_op, tr.threads.inter_op)
    check_names(config)  # registry names, before any data is read
    data = load_data(config.plain["data"], progress=log)
    model = build(config.model, data.vocab, data.max_len, tr.optimizer.model_dump(), tr.jit_compile, data.features)
    for split in ("train", "valid", "test"):
        if data.size(split) == 0:
            raise ValueError(f"data set {data.name!r} has an empty {split} split; check `data.split`")
    shuffle_seed = seed if tr.shuffle_seed is None else tr.shuffle_seed
    return Prepared(
        config=config, data=data, model=model, device=device,
        train_ds=dataset(data, "train", model, tr.batch_size, shuffle_seed),
        valid_ds=dataset(data, "valid", model, tr.eval_batch_size),
        test_ds=dataset(data, "test", model, tr.eval_batch_size),
        probe=probe_mod.AttentionProbe(data, model, list(model.input), tr.probe.size, tr.probe.metrics_size, seed))


class EpochEnd:
    """What happens after each epoch: the divergence check, validation, the best weights kept, early
    stopping, the progress line, the caller's `on_epoch`. A Keras callback (see `callback`)."""

    def __init__(self, p: Prepared, on_epoch=None, log=print, check_interrupt=lambda: None):
        tr = p.train
        self.p, self.on_epoch, self.log, self.check_interrupt = p, on_epoch, log, check_interrupt
        self.metric, self.patience, self.epochs = tr.early_stopping.metric, tr.early_stopping.patience, tr.epochs
        self.history, self.best, self.best_epoch, self.weights, self.stale = [], None, 0, None, 0
        self.bad_batch, self.t0 = None, 0.0

    def callback(self):
        """The Keras callback that calls this object's hooks."""
        import keras

        owner = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                owner.t0 = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                owner.batch_end(self.model, batch, logs)

            def on_epoch_end(self, epoch, logs=None):
                owner.epoch_end(self.model, epoch + 1, logs)

        return Callback()

    def batch_end(self, model, batch, logs) -> None:
        if batch == 1:
            faults.point("mid_epoch")
        self.check_interrupt()
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_batch = (batch, float(loss))
            model.stop_training = True

    def _check_finite(self, epoch: int, loss: float) -> None:
        if self.bad_batch is not None or not math.isfinite(loss):
            batch, bad = self.bad_batch or (None, loss)
            where = f" at batch {batch + 1}" if batch is not None else ""
            raise Diverged(f"training loss became {bad} in epoch {epoch}{where}; lower "
                           f"`train.optimizer.lr` (now {self.p.train.optimizer.lr}) or check the data")

    def epoch_end(self, model, epoch: int, logs) -> None:
        self.check_interrupt()
        loss = float((logs or {}).get("loss", float("nan")))
        self._check_finite(epoch, loss)
        valid = self.p.data.splits["valid"]
        m = evaluate(valid["user"], valid["label"], _predict(model, self.p.valid_ds, self.check_interrupt))
        row = {"epoch": epoch, "loss": loss, **{f"valid_{k}": v for k, v in m.items()},
               "epoch_seconds": time.perf_counter() - self.t0}
        self.history.append(row)
        is_best = _improved(self.metric, m[self.metric], self.best)
        if is_best:
            self.best, self.best_epoch, self.weights, self.stale = m[self.metric], epoch, model.get_weights(), 0
        else:
            self.stale += 1
        self.log(f"epoch {epoch}/{self.epochs}  loss {loss:.4f}  valid auc {m['auc']:.4f}  gauc {m['gauc']:.4f}  "
                 f"logloss {m['logloss']:.4f}  ({row['epoch_seconds']:.1f}s)" + ("  *" if is_best else ""))
        if self.on_epoch is not None:
            self.on_epoch(row, is_best)
        if self.patience and self.stale >= self.patience and epoch < self.epochs:
            self.log(f"early stop: no better validation {self.metric} for {self.patience} epochs")
            model.stop_training = True


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
        KeyboardInterrupt: Ctrl-C, raised after the training or validation batch it came in.
    """
    from src.run import interrupts

    tr = p.train
    with interrupts.at_checks() as check_interrupt:  # not raised where Python would drop it (src/run/interrupts.py)
        state = EpochEnd(p, on_epoch, log, check_interrupt)
        p.model.fit(p.train_ds, epochs=tr.epochs, shuffle=False, verbose=_progress_verbose(tr.progress),
                    callbacks=[state.callback()])
        check_interrupt()
    if state.weights is None:
        raise Diverged(f"validation {state.metric} was never a number; nothing to select")
    p.model.set_weights(state.weights)
    valid_best = {k[len("valid_"):]: v for k, v in state.history[state.best_epoch - 1].items()
                  if k.startswith("valid_")}
    return state.history, state.best_epoch, valid_best


def test_metrics(p: Prepared) -> dict:
    """Test metrics of the model as it stands (after `fit`: the best epoch's weights)."""
    return evaluate(p.data.splits["test"]["user"], p.data.splits["test"]["label"], _predict(p.model, p.test_ds))


def eval_bootstrap(p: Prepared) -> dict:
    """The validation metrics of the model as it stands on `train.eval_bootstrap` resamples of the validation
    users (the same resamples for every run on this data set): {metric: [values]}; {} when off."""
    if not p.train.eval_bootstrap:
        return {}
    valid = p.data.splits["valid"]
    boot = bootstrap(valid["user"], valid["label"], _predict(p.model, p.valid_ds), p.train.eval_bootstrap)
    return {k: [round(float(x), 6) for x in v] for k, v in boot.items()}


def probe_epoch(p: Prepared, row: dict) -> tuple[dict | None, object]:
    """For models with attention: the probe's summary added to `row`, and its arrays and heat map."""
    if not p.probe.active:
        return None, None
    from src.run import probe as probe_mod

    p.probe.update()
    row.update(p.probe.summary())
    arrays = p.probe.snapshot()
    title = f"attention weights, epoch {row['epoch']} ({describe_run(p.config.model)})"
    return arrays, probe_mod.heatmap(arrays, title)


def _announce(p: Prepared, run_id: str, log) -> None:
    data = p.data
    log(f"run {run_id}: {describe_run(p.config.model)} on {data.name} ({data.size('train'):,} train / "
        f"{data.size('valid'):,} valid / {data.size('test'):,} test) on {p.device}")
    for line in filtering_lines(data.meta):
        log(line)


def _result(run_id: str, history: list, best_epoch: int, valid_best: dict, test: dict, seconds: float,
            boot: dict) -> RunResult:
    attention = {k: v for k, v in history[best_epoch - 1].items() if k.startswith("attention_")}
    attention.update({f"last_{k}": v for k, v in history[-1].items() if k.startswith("attention_")})
    return RunResult(run_id, "FINISHED", best_epoch, valid_best, test, history, seconds, attention, boot)


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
    p = prepare(cfg, log)
    runlog = RunLogger(p.config.plain["tracking"], p.data, p.device, describe_run(p.config.model))
    metric = p.train.early_stopping.metric
    faults.point("before_run")
    with runlog.run(run_name, parent_run_id, tags) as run_id:
        if on_start is not None:
            on_start(run_id)
        t_start = time.perf_counter()
        runlog.config(cfg, overrides)
        faults.point("after_params")
        _announce(p, run_id, log)

        def on_epoch(row, is_best):
            runlog.epoch(row, *probe_epoch(p, row))
            if reporter is not None:
                reporter(row["epoch"], {k[len("valid_"):]: v for k, v in row.items() if k.startswith("valid_")})

        history, best_epoch, valid_best = fit(p, on_epoch, log)
        test, boot = test_metrics(p), eval_bootstrap(p)
        faults.point("after_test")
        runlog.final({"best_epoch": best_epoch, **{f"best_valid_{k}": v for k, v in valid_best.items()},
                      **{f"test_{k}": v for k, v in test.items()},
                      **{f"best_valid_{k}_eval_sd": float(np.nanstd(v, ddof=1)) for k, v in boot.items()}})
        if p.train.save_model:
            runlog.keras_model(p.model)
        seconds = time.perf_counter() - t_start
        log(f"best epoch {best_epoch}: valid {metric} {valid_best[metric]:.4f}; test auc {test['auc']:.4f}  "
            f"gauc {test['gauc']:.4f}  logloss {test['logloss']:.4f}  ({seconds:.0f}s)")
        log(runlog.browse_hint())
    return _result(run_id, history, best_epoch, valid_best, test, seconds, boot)
