"""The one shape every source produces: behaviour events plus samples that point into them.

A sample's history is not copied: it is the `hist_len` events before index
`hist_end` in the event arrays (events are grouped by user in time order), so a
data set of 100M events with 50-step histories stays O(events + samples) in
memory. The input pipeline cuts the [B, T] histories out batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "valid", "test")
SAMPLE_KEYS = ("user", "target_item", "target_cat", "hist_end", "hist_len", "label")
EVENT_KEYS = ("item", "cat", "neg_item", "neg_cat")
PAD, OOV = 0, 1  # id 0 pads histories; id 1 stands for anything unseen in training


class DataError(ValueError):
    """A data set cannot be read or built: the message says which file, line or setting."""


@dataclass
class SequenceData:
    """A preprocessed data set.

    Attributes:
        name: the data config's name.
        max_len: history length T.
        vocab: table sizes {"item", "cat", "user"}, counting PAD and OOV.
        events: EVENT_KEYS -> [E] int32; neg_* is a sampled non-clicked behaviour
            for each event (DIEN's auxiliary loss), never equal to the event's item.
        splits: "train"/"valid"/"test" -> SAMPLE_KEYS -> [N]; the synthetic source
            adds "relevant" [N, T] bool, the truly relevant history positions.
        meta: counts and provenance (source files, protocol), JSON-serialisable; meta["features"] lists
            the side features (src/data/features.py): user and event ones are sample columns f_<name>.
        items: item feature name -> [vocab["item"]] table, indexed by item id.
    """

    name: str
    max_len: int
    vocab: dict
    events: dict
    splits: dict
    meta: dict = field(default_factory=dict)
    items: dict = field(default_factory=dict)

    @property
    def features(self) -> list[dict]:
        """The side features as the models take them: [{name, of, kind, size, table}] (size: a categorical
        one's vocabulary; table: an item feature's values by item id, else None)."""
        return [{**f, "table": self.items.get(f["name"]) if f["of"] == "item" else None}
                for f in self.meta.get("features") or []]

    def feature_columns(self) -> list[str]:
        """The sample columns of the user and event features (model inputs of the same names)."""
        return [f"f_{f['name']}" for f in self.features if f["of"] != "item"]

    def size(self, split: str) -> int:
        return len(self.splits[split]["label"])

    def histories(self, split: str, index=None) -> dict:
        """Materialised [N, T] histories of a split (or of rows `index`): small sets, probes, tests."""
        s = self.splits[split]
        idx = np.arange(self.size(split)) if index is None else np.asarray(index)
        end, length = s["hist_end"][idx], s["hist_len"][idx]
        steps = np.arange(self.max_len)
        valid = steps[None, :] < length[:, None]
        pos = np.where(valid, end[:, None] - length[:, None] + steps[None, :], 0)
        out = {f"hist_{k}": np.where(valid, self.events[k][pos], PAD).astype("int32") for k in ("item", "cat")}
        out.update({f"neg_{k}": np.where(valid, self.events[f"neg_{k}"][pos], PAD).astype("int32")
                    for k in ("item", "cat")})
        for k in ("user", "target_item", "target_cat", "hist_len"):
            out[k] = s[k][idx].astype("int32")
        out.update({k: s[k][idx] for k in self.feature_columns()})
        return out

    # -- persistence (the cache) ---------------------------------------------------
    def arrays(self) -> dict:
        """Every array by "group/name" (events/item, train/label, items/brand, ...): what the cache stores."""
        out = {f"events/{k}": v for k, v in self.events.items()}
        out.update({f"items/{k}": v for k, v in self.items.items()})
        for split, cols in self.splits.items():
            out.update({f"{split}/{k}": v for k, v in cols.items()})
        return out

    def header(self) -> dict:
        """Everything that is not an array, JSON-serialisable."""
        return {"name": self.name, "max_len": self.max_len, "vocab": self.vocab, "meta": self.meta}

    @classmethod
    def from_arrays(cls, header: dict, arrays: dict) -> SequenceData:
        """The inverse of (header(), arrays())."""
        groups = {"events": {}, "items": {}, **{s: {} for s in SPLITS}}
        for key, value in arrays.items():
            group, name = key.split("/", 1)
            groups[group][name] = value
        return cls(header["name"], header["max_len"], header["vocab"], groups["events"],
                   {s: groups[s] for s in SPLITS}, header["meta"], groups["items"])

    @classmethod
    def from_histories(cls, hist_item, hist_len, target_item, label, hist_cat=None, target_cat=None,
                       name="arrays", split="train") -> SequenceData:
        """Wraps padded arrays (valid steps first) as a data set, e.g. random benchmark data."""
        hist_len = np.asarray(hist_len, dtype=np.int64)
        n, t = hist_item.shape
        valid = np.arange(t)[None, :] < hist_len[:, None]
        hist_cat = np.ones_like(hist_item) * valid if hist_cat is None else hist_cat
        target_cat = np.ones_like(target_item) if target_cat is None else target_cat
        item = hist_item[valid].astype("int32")
        top = int(max(item.max(initial=1), target_item.max()))
        cat = hist_cat[valid].astype("int32")
        events = {"item": item, "cat": cat, "neg_item": (item % top + 1).astype("int32"), "neg_cat": cat}
        cols = {"user": np.ones(n, "int32"), "target_item": target_item.astype("int32"),
                "target_cat": target_cat.astype("int32"), "hist_end": np.cumsum(hist_len).astype("int64"),
                "hist_len": hist_len.astype("int32"), "label": np.asarray(label, "float32")}
        empty = {k: v[:0] for k, v in cols.items()}
        splits = {s: (cols if s == split else dict(empty)) for s in SPLITS}
        vocab = {"item": int(max(item.max(initial=0), target_item.max()) + 1),
                 "cat": int(max(events["cat"].max(initial=0), target_cat.max()) + 1), "user": 2}
        return cls(name, t, vocab, events, splits, {})


def filtering_step(key: str, count: int, what: str) -> dict:
    """One line of a data set's filtering record: `count` rows or events read, kept (>= 0) or dropped (< 0)."""
    return {"key": key, "count": int(count), "what": what}


def filtering_lines(meta: dict) -> list[str]:
    """What each filtering step kept or dropped, in order, then the data's warnings, as lines for a terminal."""
    steps = meta.get("filtering") or []
    width = max((len(f"{abs(s['count']):,}") for s in steps), default=0)
    out = []
    for s in steps:
        sign = "-" if s["count"] < 0 else " "
        out.append(f"  {sign} {abs(s['count']):>{width},}  {s['what']}")
    return out + [f"  warning: {w}" for w in meta.get("warnings", [])]


def filtering_params(meta: dict) -> dict:
    """The filtering record as run params: data_filter.<step> = count (negative: dropped)."""
    return {f"data_filter.{s['key']}": s["count"] for s in meta.get("filtering") or []}
