"""The common protocol: raw events -> time-ordered histories, per-user time splits,
training vocabularies, sampled negatives. Every source ends here.

Ordering: a user's events are sorted by (timestamp, item id as read), so equal
timestamps break ties by the item's raw id, the same on every run and platform.

Splits: a user's samples, in time order, end with `split.test` test samples,
preceded by `split.valid` validation samples; the rest is training. A count
(int >= 1) takes that many, a fraction (< 1) takes floor(fraction * n) of the
user's samples. Histories are the user's events strictly before the sample, the
most recent `max_len` of them, so no history holds a later event and no training
sample holds a validation or test event.

Vocabularies: ids 0 (padding) and 1 (out of vocabulary) are reserved; items,
categories and users seen in the training period (a user's events before their
first validation or test sample) get 2, 3, ...; everything else maps to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from src.data import features as side
from src.data.dataset import OOV, PAD, SPLITS, DataError, SequenceData, filtering_step


@dataclass
class Events:
    """Raw events, one row each: integer codes for user, item and category, a timestamp
    and, for explicit feedback, a label. Codes are arbitrary non-negative ints. `features` holds the
    declared side features' raw values, one per event (src/data/features.py). With `kind`, an impression
    is a sample whose history is the user's behaviours strictly before it, and a behaviour is history only."""

    user: np.ndarray
    item: np.ndarray
    cat: np.ndarray
    time: np.ndarray
    label: np.ndarray | None = None
    features: list = field(default_factory=list)
    kind: np.ndarray | None = None  # True: an impression (a sample, never history); None: every event is both

    def __len__(self):
        return len(self.user)


def _take(n: int, spec, what: str) -> np.ndarray:
    """Per-user counts from a count (int) or fraction (float < 1) spec; n is [U]."""
    if isinstance(spec, bool) or spec is None:
        raise DataError(f"`data.split.{what}` must be a count or a fraction, got {spec!r}")
    if isinstance(spec, int) or (isinstance(spec, float) and spec >= 1 and float(spec).is_integer()):
        if spec < 0:
            raise DataError(f"`data.split.{what}` must be >= 0, got {spec}")
        return np.minimum(int(spec), n)
    if not 0 <= spec < 1:
        raise DataError(f"`data.split.{what}` as a fraction must be in [0, 1), got {spec}")
    return np.floor(spec * n).astype(np.int64)


def _sample_excluding(rng, pool: np.ndarray, probs, avoid: np.ndarray, what: str) -> np.ndarray:
    """Draws from `pool` (with `probs` or uniformly) one value per entry of `avoid`, never equal to it."""
    if len(np.unique(pool)) < 2:
        raise DataError(f"cannot sample {what}: the training vocabulary has fewer than two items")
    out = rng.choice(pool, size=len(avoid), p=probs)
    clash = out == avoid
    while clash.any():
        out[clash] = rng.choice(pool, size=int(clash.sum()), p=probs)
        clash = out == avoid
    return out


class Vocab:
    """Maps raw codes seen in training to 2.., anything else to OOV."""

    def __init__(self, train_codes: np.ndarray):
        self.codes = np.unique(train_codes)

    def __len__(self):
        return len(self.codes) + 2

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.codes, codes)
        pos = np.minimum(pos, max(len(self.codes) - 1, 0))
        known = (self.codes[pos] == codes) if len(self.codes) else np.zeros(len(codes), bool)
        return np.where(known, pos + 2, OOV).astype(np.int32)


@dataclass
class _Sorted:
    """The events sorted by (user, time, item), with each event's user index and position in its history."""

    user: np.ndarray
    item: np.ndarray
    cat: np.ndarray
    label: np.ndarray | None
    extra: dict
    features: list       # side.Raw, in this order
    starts: np.ndarray   # first event of each user
    counts: np.ndarray   # events per user
    user_of: np.ndarray  # user index of each event
    pos: np.ndarray      # position of each event in its user's events
    kind: np.ndarray | None = None  # impressions (samples only); None: every event is a sample and a behaviour
    seen: np.ndarray | None = None  # behaviours of its user before each event (the history it can have)
    end: np.ndarray | None = None   # where each event's history ends in the behaviours' arrays

    def __len__(self) -> int:
        return len(self.user)

    @property
    def behaviours(self) -> np.ndarray | slice:
        """The events that are history (all, without kinds)."""
        return slice(None) if self.kind is None else ~self.kind


def _sort(events: Events, extra: dict | None) -> _Sorted:
    """Events by (user, time, item); with kinds an impression comes before its time's behaviours, which are
    not its history."""
    keys = (events.item, events.time, events.user) if events.kind is None else \
        (events.item, np.where(events.kind, 0, 1), events.time, events.user)
    order = np.lexsort(keys)
    user = events.user[order]
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    counts = np.diff(np.r_[starts, len(user)])
    user_of = np.repeat(np.arange(len(starts)), counts)
    pos = np.arange(len(user)) - starts[user_of]
    kind, seen, end = None, pos, np.arange(len(user))
    if events.kind is not None:
        kind = events.kind[order]
        end = np.cumsum(~kind) - ~kind  # behaviours before each event, over all users
        seen = end - end[starts][user_of]
    return _Sorted(user, events.item[order], events.cat[order], None if events.label is None else events.label[order],
                   {k: v[order] for k, v in (extra or {}).items()},
                   [replace(f, values=np.asarray(f.values)[order]) for f in events.features], starts, counts, user_of,
                   pos, kind, seen, end)


def _samples(ev: _Sorted, min_history: int, per_user) -> tuple[np.ndarray, list]:
    """The sample events (every event, or every impression, with enough history; optionally only a user's
    last k) and the filtering record of that choice."""
    candidate = np.ones(len(ev), bool) if ev.kind is None else ev.kind
    steps = [filtering_step("events", len(ev), "events")]
    if ev.kind is not None:
        steps.append(filtering_step("not_samples_behaviours", -int((~candidate).sum()), "behaviours (history only)"))
    is_sample = candidate & (ev.seen >= min_history)
    short = int((candidate & ~is_sample).sum())
    steps.append(filtering_step("not_samples_short_history", -short,
                                f"events with fewer than data.min_history={min_history} earlier events (history only)"))
    if per_user:
        # rank of each candidate within its user's candidates, from the end
        n_u = np.bincount(ev.user_of[candidate], minlength=len(ev.starts))
        before = np.cumsum(candidate) - candidate
        rank_from_end = n_u[ev.user_of] - 1 - (before - before[ev.starts][ev.user_of])
        kept = is_sample & (rank_from_end < int(per_user))
        steps.append(filtering_step("not_samples_beyond_per_user", -int((is_sample & ~kept).sum()),
                                    f"events before each user's last data.samples_per_user={per_user} "
                                    f"(history only)"))
        is_sample = kept
    sample_idx = np.flatnonzero(is_sample)
    steps.append(filtering_step("samples", len(sample_idx), "events that are samples (train, valid and test)"))
    return sample_idx, steps


def _assign_splits(ev: _Sorted, sample_idx: np.ndarray, split_cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """(split code of each sample: 0 train, 1 valid, 2 test; whether each event is in its user's training
    period, before their first validation or test sample)."""
    n_samples_u = np.bincount(ev.user_of[sample_idx], minlength=len(ev.starts))
    n_test = _take(n_samples_u, split_cfg.get("test", 1), "test")
    n_valid = np.minimum(_take(n_samples_u, split_cfg.get("valid", 1), "valid"), n_samples_u - n_test)
    # rank of each sample within its user, from the end
    s_user = ev.user_of[sample_idx]
    s_first = np.r_[0, np.cumsum(n_samples_u)[:-1]]
    rank_from_end = n_samples_u[s_user] - 1 - (np.arange(len(sample_idx)) - s_first[s_user])
    which = np.where(rank_from_end < n_test[s_user], 2, np.where(rank_from_end < n_test[s_user] + n_valid[s_user],
                                                                 1, 0))
    held_out_pos = np.full(len(ev.starts), np.iinfo(np.int64).max)
    ho = sample_idx[which > 0]
    np.minimum.at(held_out_pos, ev.user_of[ho], ev.pos[ho])
    return which, ev.pos < held_out_pos[ev.user_of]


@dataclass
class _Negatives:
    """Where sampled negatives come from: the item pool, its probabilities (None: uniform), item -> category."""

    pool: np.ndarray
    probs: np.ndarray | None
    cat_of_item: np.ndarray


def _negative_pool(item_vocab, train_items: np.ndarray, train_cats: np.ndarray, neg_cfg: dict) -> _Negatives:
    """Items to sample negatives from, uniformly or by training popularity; an item's category is the
    first one seen in training."""
    cat_of_item = np.full(len(item_vocab), OOV, np.int32)
    cat_of_item[PAD] = PAD
    rev = slice(None, None, -1)  # assign in reverse so the first occurrence wins
    cat_of_item[train_items[rev]] = train_cats[rev]
    mode = neg_cfg.get("sampling", "uniform")
    if mode not in ("uniform", "popularity"):
        raise DataError(f"`data.negatives.sampling` must be 'uniform' or 'popularity', got {mode!r}")
    probs = None
    if mode == "popularity":
        freq = np.bincount(train_items, minlength=len(item_vocab))[2:].astype(np.float64)
        probs = freq / freq.sum()
    return _Negatives(np.arange(2, len(item_vocab)), probs, cat_of_item)


def _split_columns(e: np.ndarray, ev: _Sorted, ids: dict, max_len: int, implicit: bool, neg: _Negatives, rng):
    """One split's sample columns; with implicit feedback each positive is followed by a sampled negative."""
    cols = {
        "user": ids["user"](ev.user[e]),
        "target_item": ids["item"][e],
        "target_cat": ids["cat"][e],
        "hist_end": ev.end[e].astype(np.int64),
        "hist_len": np.minimum(ev.seen[e], max_len).astype(np.int32),
        "label": (np.ones(len(e)) if implicit else ev.label[e]).astype(np.float32),
    }
    cols.update({k: v[e] for k, v in ev.extra.items()})
    if not implicit:
        return cols
    targets = _sample_excluding(rng, neg.pool, neg.probs, cols["target_item"], "negative targets").astype(np.int32)
    neg_cols = dict(cols, target_item=targets, target_cat=neg.cat_of_item[targets], label=np.zeros(len(e), np.float32))
    # positive and its negative side by side, in time order
    return {k: np.stack([cols[k], neg_cols[k]], axis=1).reshape((-1,) + cols[k].shape[1:]) for k in cols}


def build(events: Events, cfg, name: str, implicit: bool, meta: dict | None = None,
          extra: dict | None = None) -> SequenceData:
    """Samples, splits, vocabularies and negatives from raw events.

    Args:
        events: all events of the source.
        cfg: the data config (`max_len`, `min_history`, `split`, `negatives`,
            `samples_per_user`, `seed`).
        name: the data set's name.
        implicit: events are positives (clicks, reviews): each sample gets a
            sampled negative target with label 0. Otherwise events carry labels.
        meta: provenance to keep.
        extra: per-event arrays to carry into the samples (the sample's own event).
    """
    if len(events) == 0:
        raise DataError(f"data set {name!r} has no events after filtering")
    max_len = int(cfg["max_len"])
    if max_len < 1:
        raise DataError(f"`data.max_len` must be >= 1, got {max_len}")
    min_history = int(cfg.get("min_history", 1))
    rng = np.random.default_rng(int(cfg.get("seed", 0)))
    if events.kind is not None and implicit:
        raise DataError(f"data set {name!r}: a log of impressions and behaviours needs each impression's label")
    ev = _sort(events, extra)
    per_user = cfg.get("samples_per_user")
    sample_idx, steps = _samples(ev, min_history, per_user)
    split_cfg = cfg.get("split", {}) or {}
    which, in_train_period = _assign_splits(ev, sample_idx, split_cfg)

    item_vocab, cat_vocab, user_vocab = (Vocab(a[in_train_period]) for a in (ev.item, ev.cat, ev.user))
    ev_item, ev_cat = item_vocab(ev.item), cat_vocab(ev.cat)
    neg_cfg = cfg.get("negatives", {}) or {}
    neg = _negative_pool(item_vocab, ev_item[in_train_period], ev_cat[in_train_period], neg_cfg)
    neg_rng = np.random.default_rng(int(neg_cfg.get("seed", cfg.get("seed", 0))))
    hist_item, hist_cat = ev_item[ev.behaviours], ev_cat[ev.behaviours]
    neg_item = _sample_excluding(neg_rng, neg.pool, neg.probs, hist_item, "negative behaviours").astype(np.int32)
    arrays = {"item": hist_item, "cat": hist_cat, "neg_item": neg_item, "neg_cat": neg.cat_of_item[neg_item]}
    tables, columns, specs = side.encode(ev.features, in_train_period, ev_item, len(item_vocab))
    ev.extra.update({side.input_name(k): v for k, v in columns.items()})

    ids = {"user": user_vocab, "item": ev_item, "cat": ev_cat}
    splits = {split: _split_columns(sample_idx[which == code], ev, ids, max_len, implicit, neg, rng)
              for code, split in enumerate(SPLITS)}
    info = dict(meta or {})
    info["filtering"] = list(info.get("filtering") or []) + steps
    info["warnings"] = list(info.get("warnings") or []) + side.warnings(ev.features, in_train_period)
    info.update(
        events=int(len(ev)), behaviours=int(len(hist_item)), users=int(len(ev.starts)), items=len(item_vocab) - 2,
        cats=len(cat_vocab) - 2,
        users_in_vocab=len(user_vocab) - 2, implicit=implicit, features=specs,
        protocol={"max_len": max_len, "min_history": min_history, "split": dict(split_cfg),
                  "samples_per_user": per_user, "negatives": dict(neg_cfg)},
    )
    vocab = {"item": len(item_vocab), "cat": len(cat_vocab), "user": len(user_vocab)}
    return SequenceData(name, max_len, vocab, arrays, splits, info, tables)


def paper_overrides(cfg) -> dict:
    """The implicit-feedback protocols of the papers (`data.protocol`): din keeps the config's values (every
    position with history a sample); dien keeps each user's last three positions, one per split."""
    if cfg.get("protocol", "din") == "dien":
        return {"samples_per_user": 3, "split": {"valid": 1, "test": 1}}
    return {}
