"""The configuration: composing the Hydra config tree outside a Hydra app (tests, sweeps, reproduce),
its paths (paths.py), the schema of every group (schema.py) and the checks before anything runs
(validate.py)."""

from __future__ import annotations

import copy
import functools

from omegaconf import DictConfig, OmegaConf

from src.config.paths import CONF_DIR


def compose(overrides=(), config_name: str = "config") -> DictConfig:
    """The composed config for `overrides`, as `python -m src.train overrides...` would see it.

    Cached (a sweep composes the same few configs over and over); each call returns its own copy.
    """
    return copy.deepcopy(_composed(tuple(overrides), config_name))


@functools.lru_cache(maxsize=512)
def _composed(overrides: tuple, config_name: str) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def to_plain(cfg):
    """A plain dict/list copy of a config node (resolved), for code that wants no OmegaConf."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_list(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def flatten(d, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
