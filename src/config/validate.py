"""Checks a composed config before anything runs: unknown keys, wrong types, unknown names.

Two stages, both before any data is read:
- `validate(cfg)`: every group against its schema (src/config/schema.py); no TensorFlow, so a wrong
  value is refused at once, naming the key and the expected type.
- `check_names(plain)`: the names that live in code registries (activations, evolution cells,
  optimizers) against those registries, once Keras is loaded.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from src.config import schema


class ConfigError(ValueError):
    """A config value or key is wrong; the message names it."""


def validate(cfg) -> dict:
    """Raises ConfigError for the first problem; returns the config as a plain dict."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        plain = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    except OmegaConfBaseException as e:  # interpolation errors name their key
        raise ConfigError(f"config cannot be resolved: {e}") from None
    try:
        schema.check(plain)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    tr = plain["train"]
    if tr.get("jit_compile") and tr["deterministic"] and backend() == "tensorflow":
        raise ConfigError("`train.jit_compile=true` needs `train.deterministic=false` on TensorFlow: its op "
                          "determinism turns XLA off (and Keras would drop jit_compile without a word)")
    return plain


def backend() -> str:
    """The Keras backend this process will use (KERAS_BACKEND, default tensorflow), without importing Keras."""
    import os

    return os.environ.get("KERAS_BACKEND", "tensorflow")


def check_names(plain: dict) -> None:
    """Activation, cell and optimizer names against the registries that build them."""
    from src.layers.activations import check_activation
    from src.layers.recurrent import cell_names
    from src.run.optim import OPTIMIZERS

    model = plain["model"]
    specs = {"model.activation": model.get("activation")}
    for section in ("attention", "aux_loss"):
        for key in ("activation", "projection_activation"):
            if key in (model.get(section) or {}):
                specs[f"model.{section}.{key}"] = model[section][key]
    for where, spec in specs.items():
        try:
            check_activation(spec, where)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    cell = (model.get("evolution") or {}).get("cell")
    if cell is not None and cell not in cell_names():
        raise ConfigError(f"config key `model.evolution.cell` must be one of {cell_names()}, got {cell!r}")
    name = plain["train"]["optimizer"]["name"]
    if name not in OPTIMIZERS:
        raise ConfigError(f"config key `train.optimizer.name` must be one of {sorted(OPTIMIZERS)}, got {name!r}")
