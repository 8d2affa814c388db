"""Checks a composed config before anything runs: unknown keys, wrong types, unknown names.

Two stages, both before any data is read:
- `validate(cfg)`: every group against its schema (src/config/schema.py); no TensorFlow, so a wrong
  value is refused at once, naming the key and the expected type; returns the typed config.
- `src.run.registry.check_names(config)`: the names that live in code registries (activations,
  evolution cells, optimizers) against those registries, once Keras is loaded.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from src.config import schema


class ConfigError(ValueError):
    """A config value or key is wrong; the message names it."""


def validate(cfg) -> schema.Config:
    """Raises ConfigError for the first problem; returns the config typed (`schema.Config`)."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        plain = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    except OmegaConfBaseException as e:  # interpolation errors name their key
        raise ConfigError(f"config cannot be resolved: {e}") from None
    try:
        config = schema.check(plain)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if config.train.jit_compile and config.train.deterministic and backend() == "tensorflow":
        raise ConfigError("`train.jit_compile=true` needs `train.deterministic=false` on TensorFlow: its op "
                          "determinism turns XLA off (and Keras would drop jit_compile without a word)")
    return config


def composed(overrides: list[str]):
    """The config `overrides` compose to, checked as `validate` checks it (the checks `python -m src.train`
    makes before anything runs, for the commands that compose outside Hydra's app: describe); a refused
    override or value raises ConfigError in one line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from src.config import compose

    try:
        cfg = compose(overrides)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(one_line(e)) from None
    validate(cfg)
    return cfg


def one_line(e: Exception) -> str:
    """Hydra's and OmegaConf's several lines (what, how to fix it, the options) as one, without the object dumps
    and the search path."""
    noise = ("full_key:", "object_type=", "reference_type=", "Set the environment variable HYDRA_FULL_ERROR")
    text = str(e).split("Config search path:")[0]
    out, listing = "", False
    for ln in (ln.strip() for ln in text.splitlines()):
        if not ln or ln.startswith(noise):
            continue
        if not out:
            out = ln
        elif out.endswith(":") or listing:  # "Available options in 'data':" and the options under it
            out += (", " if listing else " ") + ln
            listing = True
        else:
            out += (" " if out.endswith(".") else "; ") + ln
    return out or type(e).__name__


def backend() -> str:
    """The Keras backend this process will use (KERAS_BACKEND, default tensorflow), without importing Keras."""
    import os

    return os.environ.get("KERAS_BACKEND", "tensorflow")
