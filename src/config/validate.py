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


def backend() -> str:
    """The Keras backend this process will use (KERAS_BACKEND, default tensorflow), without importing Keras."""
    import os

    return os.environ.get("KERAS_BACKEND", "tensorflow")
