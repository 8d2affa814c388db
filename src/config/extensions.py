"""Extensions in the user's own code, named from the config, with no edit under src/ (docs/extending.md).

    extensions: [mylab.layers]            modules imported before the config's registry names are checked:
                                          their @register_activation and @register_cell classes join the
                                          built-in ones (src.run.registry.check_names imports them)
    data.source: mylab.sources:ClickLog   a data source: a class, `module:Class`, with a pydantic `Schema`
                                          of its data config and the event-source methods
                                          (src.data.sources.EventSource)
    model._target_: mylab.models.build    a model: a function (cfg, vocab, max_len, features) -> keras.Model,
                                          its config typed by the schema of `model.name` (src.models)

The modules are found on Python's path, the project's root included (run from it, as every command is).
"""

from __future__ import annotations

import importlib


class ExtensionError(ValueError):
    """An extension cannot be imported or is not what its key needs; the message names the key."""


def _module(name: str, key: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:  # the module, or something it imports, is not there
        raise ExtensionError(f"config key `{key}`: cannot import {name!r} ({type(e).__name__}: {e}); "
                             f"is it on Python's path (run from the project's root, or install it)?") from None


def load(names, key: str = "extensions") -> None:
    """Imports the modules a config names (their registrations run on import; twice is once)."""
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names or []):
        raise ExtensionError(f"config key `{key}` must be a list of module names, got {names!r}")
    for name in names or []:
        _module(name, key)


def is_named(source) -> bool:
    """Whether a `data.source` names a class in the user's code (`module:Class`) rather than a built-in."""
    return isinstance(source, str) and ":" in source


def source(name: str):
    """The data source a `data.source=module:Class` names: an instance of that class."""
    module_name, _, attr = name.partition(":")
    module = _module(module_name, "data.source")
    cls = getattr(module, attr, None)
    if cls is None:
        raise ExtensionError(f"config key `data.source`: {module_name!r} has no {attr!r} (it has "
                             f"{sorted(k for k in vars(module) if not k.startswith('_'))})")
    from pydantic import BaseModel

    schema = getattr(cls, "Schema", None)
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)) or not hasattr(cls, "load_events"):
        raise ExtensionError(f"config key `data.source`: {name} is not a data source: it needs a pydantic `Schema` "
                             f"of its data config and `load_events` (subclass src.data.sources.EventSource)")
    return cls()


def model_builder(target: str):
    """The function a `model._target_=module.function` names."""
    module_name, _, attr = target.rpartition(".")
    if not module_name:
        raise ExtensionError(f"config key `model._target_` must be `module.function`, got {target!r}")
    fn = getattr(_module(module_name, "model._target_"), attr, None)
    if not callable(fn):
        raise ExtensionError(f"config key `model._target_`: {module_name!r} has no function {attr!r}")
    return fn

