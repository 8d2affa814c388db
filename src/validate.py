"""Checks a composed config before anything runs: unknown keys and wrong types.

Hydra already refuses unknown group options (listing the valid ones) and
unknown keys without `+`; this catches what it lets through: values of the wrong
type, and keys added with `+` that nothing reads. Every message names the key.
"""

from __future__ import annotations

import difflib

from omegaconf import OmegaConf

from src.config import flatten
from src.paths import CONF_DIR


class ConfigError(ValueError):
    """A config value or key is wrong; the message names it."""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


CHECKS = {
    "positive int": lambda v: _is_int(v) and v > 0,
    "non-negative int": lambda v: _is_int(v) and v >= 0,
    "positive number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "string or null": lambda v: v is None or isinstance(v, str),
    "int": _is_int,
    "int or null": lambda v: v is None or _is_int(v),
}

TRAIN = {
    "optimizer.name": ["adam", "adagrad", "sgd", "rmsprop"],
    "optimizer.lr": "positive number",
    "batch_size": "positive int",
    "eval_batch_size": "positive int",
    "epochs": "positive int",
    "shuffle_seed": "int or null",
    "early_stopping.metric": ["auc", "gauc", "logloss"],
    "early_stopping.patience": "non-negative int",
    "deterministic": "bool",
    "threads.intra_op": "non-negative int",
    "threads.inter_op": "non-negative int",
    "probe.size": "non-negative int",
    "probe.metrics_size": "non-negative int",
    "save_model": "bool",
    "progress": ["auto", True, False],
}
TRACKING = {"uri": "string or null", "artifact_root": "string or null", "experiment": "string or null"}
MODEL_KEYS = {
    "": {"name", "embedding", "mlp", "activation", "attention", "evolution", "extractor", "aux_loss"},
    "embedding": {"item", "cat", "user"},
    "mlp": {"depth", "width", "taper", "batch_norm", "dropout"},
    "attention": {"hidden_units", "activation", "scale", "softmax", "query_projection", "projection_activation"},
    "evolution": {"cell", "convention"},
    "extractor": {"units"},
    "aux_loss": {"alpha", "hidden_units", "activation"},
}
TOP = {"seed", "data", "model", "train", "tracking", "sweep", "experiment"}


def _unknown(section: str, key: str, known) -> ConfigError:
    near = difflib.get_close_matches(key.split(".")[-1], [k.split(".")[-1] for k in known], n=3)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    return ConfigError(f"unknown config key `{section}.{key}`.{hint} Valid keys in `{section}`: "
                       f"{', '.join(sorted(known))}")


def _check_section(section: str, values: dict, schema: dict, open_prefixes=()) -> None:
    flat = flatten(values)
    for key, value in flat.items():
        if key not in schema:
            if any(key.startswith(p) for p in open_prefixes):
                continue
            raise _unknown(section, key, schema)
        rule = schema[key]
        if isinstance(rule, list):
            if value not in rule:
                raise ConfigError(f"config key `{section}.{key}` must be one of {rule}, got {value!r}")
        elif not CHECKS[rule](value):
            raise ConfigError(f"config key `{section}.{key}` must be a {rule}, got {value!r} "
                              f"({type(value).__name__})")


def data_keys() -> set[str]:
    """Every key some shipped data config uses, plus the common ones."""
    keys = {"name", "source", "path", "cache"}
    for f in (CONF_DIR / "data").glob("*.yaml"):
        keys |= set(OmegaConf.to_container(OmegaConf.load(f)).keys())
    return keys


def validate(cfg) -> dict:
    """Raises ConfigError for the first problem; returns the config as a plain dict."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:  # interpolation errors name their key
        raise ConfigError(f"config cannot be resolved: {e}") from None
    for key in plain:
        if key not in TOP:
            raise _unknown("<root>", key, TOP)
    if not _is_int(plain.get("seed", 0)):
        raise ConfigError(f"config key `seed` must be an int, got {plain.get('seed')!r}")
    _check_section("train", plain.get("train", {}), TRAIN, open_prefixes=("optimizer.",))
    _check_section("tracking", plain.get("tracking", {}), TRACKING)
    model = plain.get("model", {})
    for section, allowed in MODEL_KEYS.items():
        node = model if not section else model.get(section)
        if section == "activation" or not isinstance(node, dict):
            continue
        for key in node:
            if key not in allowed:
                prefix = f"model.{section}" if section else "model"
                raise _unknown(prefix, key, allowed)
    data = plain.get("data", {})
    known = data_keys()
    for key in data:
        if key not in known:
            raise _unknown("data", key, known)
    return plain
