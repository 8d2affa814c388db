"""The config's names that live in code registries (activations, evolution cells, optimizers), checked
against those registries before any data is read: the second stage of src/config/validate.py, run
once Keras is loaded (the registries are Keras code)."""

from __future__ import annotations

from src.config import schema
from src.config.validate import ConfigError


def check_names(config: schema.Config) -> None:
    """Activation, cell and optimizer names against the registries that build them (with those that the
    config's `extensions`, the user's own modules, register as they are imported)."""
    from src.config import extensions
    from src.layers.activations import check_activation
    from src.layers.recurrent import cell_names
    from src.run.optim import OPTIMIZERS

    try:
        extensions.load(config.plain.get("extensions") or [])
    except extensions.ExtensionError as e:
        raise ConfigError(str(e)) from None
    model = config.model
    if model.target:
        try:
            extensions.model_builder(model.target)
        except extensions.ExtensionError as e:
            raise ConfigError(str(e)) from None
    specs = {"model.activation": model.activation}
    for section in ("attention", "aux_loss"):
        for key in ("activation", "projection_activation"):
            if hasattr(getattr(model, section, None), key):
                specs[f"model.{section}.{key}"] = getattr(getattr(model, section), key)
    for where, spec in specs.items():
        try:
            check_activation(schema.spec(spec), where)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    evolution = getattr(model, "evolution", None)
    if evolution is not None and evolution.cell not in cell_names():
        raise ConfigError(f"config key `model.evolution.cell` must be one of {cell_names()}, got {evolution.cell!r}")
    name = config.train.optimizer.name
    if name not in OPTIMIZERS:
        raise ConfigError(f"config key `train.optimizer.name` must be one of {sorted(OPTIMIZERS)}, got {name!r}")
