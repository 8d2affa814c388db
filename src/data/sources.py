"""The data sources by name, and the base of a source in the user's own code.

Every event source offers files(cfg, path), load_events(cfg, paths, progress), protocol_overrides(cfg) and
implicit(cfg); a generated one (synthetic) offers build(cfg) instead. A source in the user's code is a
subclass of `EventSource`, named `data.source=module:Class` (src/config/extensions.py, docs/extending.md).
"""

from __future__ import annotations

from pathlib import Path

from src.data import amazon, events, movielens, synthetic, taobao
from src.data.dataset import DataError

BUILT_IN = {"movielens": movielens, "amazon": amazon, "taobao": taobao, "events": events, "synthetic": synthetic}


class EventSource:
    """A data source in the user's own code. Set `Schema` (a pydantic model of the source's data config,
    typically a subclass of src.config.schema.RealData with `source: str`) and write `load_events`; the
    rest has defaults. Everything after load_events (protocol, splits, vocabularies, cache) is shared."""

    Schema = None
    IMPLICIT = True  # events are clicks that get sampled negatives; False: their Events carry labels

    def files(self, cfg, path: Path) -> list[Path]:
        """The files read (and fingerprinted for the cache): `data.path` itself, or a folder's files."""
        if path.is_file():
            return [path]
        if path.is_dir() and any(path.iterdir()):
            return sorted(p for p in path.iterdir() if p.is_file())
        raise DataError(f"data file not found: {path} (data.path of source {cfg.get('source')!r})")

    def load_events(self, cfg, paths: list[Path], progress=None):
        """(src.data.protocol.Events, meta dict) of the files."""
        raise NotImplementedError

    def protocol_overrides(self, cfg) -> dict:
        return {}

    def implicit(self, cfg) -> bool:
        return self.IMPLICIT


def named(name):
    """The source a `data.source` names: a built-in one, or a class in the user's code (`module:Class`)."""
    from src.config import extensions

    if name in BUILT_IN:
        return BUILT_IN[name]
    if extensions.is_named(name):
        try:
            return extensions.source(name)
        except extensions.ExtensionError as e:
            raise DataError(str(e)) from None
    raise DataError(f"`data.source` must be one of {sorted(BUILT_IN)} or a class of your own (module:Class), "
                    f"got {name!r}")
