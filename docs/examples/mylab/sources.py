"""A data source in a user's own code (docs/extending.md): session logs, one user per line,

    user<TAB>item:category:time item:category:time ...

named from the config as `data.source=docs.examples.mylab.sources:SessionLog` with `data.path` a file or a
folder of them. Every event is a click; samples get sampled negatives (the Amazon protocols)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from src.config.schema import RealData
from src.data.dataset import DataError
from src.data.protocol import Events, paper_overrides
from src.data.sources import EventSource


class SessionLogConfig(RealData):
    source: str
    protocol: Literal["din", "dien"] = "din"


class SessionLog(EventSource):
    Schema = SessionLogConfig

    def load_events(self, cfg, paths, progress=None):
        users: dict[str, int] = {}
        items: dict[str, int] = {}
        cats: dict[str, int] = {}
        rows = []
        for path in paths:
            with open(path) as f:
                for lineno, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    user, _, events = line.rstrip("\n").partition("\t")
                    for event in events.split():
                        try:
                            item, cat, time = event.split(":")
                            rows.append((users.setdefault(user, len(users)), items.setdefault(item, len(items)),
                                         cats.setdefault(cat, len(cats)), int(time)))
                        except ValueError:
                            raise DataError(f"{path}:{lineno}: {event!r} is not item:category:time") from None
        if not rows:
            raise DataError(f"{', '.join(map(str, paths))}: no sessions")
        user, item, cat, time = (np.array(c, np.int64) for c in zip(*rows))
        return Events(user, item, cat, time), {"source": "session log", "sessions": len(users)}

    def protocol_overrides(self, cfg) -> dict:
        return paper_overrides(cfg)
