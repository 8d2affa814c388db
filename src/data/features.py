"""Side features declared in the data config (`data.features`), coded from their raw values.

    data.features:
      brand: {of: item, kind: categorical}    # an item's field: joins the target's and each behaviour's embedding
      price: {of: item, kind: numeric}
      age:   {of: user, kind: categorical}    # the user's profile: joins the top MLP's input
      hour:  {of: event, kind: categorical}   # the sample's own event (its context): joins the MLP's input

A feature is read from the column of its name (or `column:`) and switched off by `enabled: false`
(`data.features.age.enabled=false`), so that a sweep can ask whether it helps. As the item, category and
user ids do, features learn from the training period only: categorical values seen there get 2, 3, ...
(0 pads, 1 is anything unseen or missing); numeric values are standardised with the training period's
mean and standard deviation (missing values become 0, the mean).

Item features end as tables indexed by item id (`SequenceData.items`), so a model looks them up for the
target, every behaviour and every sampled negative alike; user and event features end as sample columns
`f_<name>` beside `user` and `target_item`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.data.dataset import OOV, PAD, DataError

OF = ("item", "user", "event")
KINDS = ("categorical", "numeric")


@dataclass
class Raw:
    """One declared feature's raw values: codes (int >= 0; < 0 is missing) or numbers (NaN is missing),
    one per event for every kind of feature (an item's or a user's value repeated on each of its events)."""

    name: str
    of: str
    kind: str
    values: np.ndarray


def declared(cfg) -> dict[str, dict]:
    """The enabled features of a data config, name -> {of, kind, column}, in the config's order."""
    out = {}
    for name, f in ((cfg or {}).get("features") or {}).items():
        f = dict(f or {})
        if not f.get("enabled", True):
            continue
        if f.get("of") not in OF or f.get("kind") not in KINDS:
            raise DataError(f"`data.features.{name}` needs of: {'|'.join(OF)} and kind: {'|'.join(KINDS)}, got {f}")
        out[name] = {"of": f["of"], "kind": f["kind"], "column": f.get("column") or name}
    return out


def spec(name: str, of: str, kind: str, size: int | None = None) -> dict:
    """A feature as the data set describes it to the models (meta["features"])."""
    return {"name": name, "of": of, "kind": kind, "size": size}


def categorical(values: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, int]:
    """(ids, table size): codes seen where `train` holds get 2, 3, ...; the rest, and missing (< 0), get 1."""
    seen = np.unique(values[train & (values >= 0)])
    pos = np.minimum(np.searchsorted(seen, values), max(len(seen) - 1, 0))
    known = (seen[pos] == values) & (values >= 0) if len(seen) else np.zeros(len(values), bool)
    return np.where(known, pos + 2, OOV).astype(np.int32), len(seen) + 2


def numeric(values: np.ndarray, train: np.ndarray, name: str) -> np.ndarray:
    """Values standardised by the training period's mean and standard deviation; missing ones are 0."""
    values = np.asarray(values, np.float64)
    ref = values[train & np.isfinite(values)]
    if len(ref) == 0:
        raise DataError(f"numeric feature {name!r} has no value in the training period")
    sd = ref.std()
    out = (values - ref.mean()) / (sd if sd > 0 else 1.0)
    return np.where(np.isfinite(out), out, 0.0).astype(np.float32)


def warnings(raw: list[Raw], train: np.ndarray) -> list[str]:
    """A line for each feature that cannot tell the training period's samples apart: one value there, or none
    (all missing). Such a feature is kept (a sweep may still switch it on and off), and said."""
    out = []
    for f in raw:
        v = np.asarray(f.values)[train]
        seen = np.unique(v[v >= 0]) if f.kind == "categorical" else np.unique(v[np.isfinite(v)])
        if len(seen) > 1:
            continue
        if not len(seen):
            what = "no value (all missing)"
        else:
            what = f"one value ({seen[0]:g})" if f.kind == "numeric" else "one value"
        out.append(f"feature {f.name!r} (of: {f.of}) has {what} in the training period: it cannot tell "
                   f"samples apart")
    return out


def encode(raw: list[Raw], train: np.ndarray, item_ids: np.ndarray, n_items: int) -> tuple[dict, dict, list]:
    """(item tables, per-event columns of user and event features, specs) from raw per-event values.

    `train` marks the training-period events; `item_ids` is each event's item id (0..n_items-1). An item's
    value is that of its first training event; items never seen in training get OOV (or 0 if numeric).
    """
    tables, columns, specs = {}, {}, []
    first = np.flatnonzero(train)[::-1]  # assigned in reverse, so that the first training event wins
    for f in raw:
        if f.kind == "categorical":
            coded, size = categorical(np.asarray(f.values, np.int64), train)
        else:
            coded, size = numeric(f.values, train, f.name), None
        if f.of == "item":
            table = np.full(n_items, OOV if size else 0, coded.dtype)
            table[PAD] = 0
            table[item_ids[first]] = coded[first]
            tables[f.name] = table
        else:
            columns[f.name] = coded
        specs.append(spec(f.name, f.of, f.kind, size))
    return tables, columns, specs


def input_name(name: str) -> str:
    """The model input (and sample column) of a user or event feature."""
    return f"f_{name}"
