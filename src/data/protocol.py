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

from dataclasses import dataclass

import numpy as np

from src.data.dataset import OOV, PAD, SPLITS, DataError, SequenceData, filtering_step


@dataclass
class Events:
    """Raw events, one row each: integer codes for user, item and category, a timestamp
    and, for explicit feedback, a label. Codes are arbitrary non-negative ints."""

    user: np.ndarray
    item: np.ndarray
    cat: np.ndarray
    time: np.ndarray
    label: np.ndarray | None = None

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

    order = np.lexsort((events.item, events.time, events.user))
    user, item, cat, time = (a[order] for a in (events.user, events.item, events.cat, events.time))
    label = None if events.label is None else events.label[order]
    extra = {k: v[order] for k, v in (extra or {}).items()}
    n_events = len(user)
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    counts = np.diff(np.r_[starts, n_events])
    user_of = np.repeat(np.arange(len(starts)), counts)
    pos = np.arange(n_events) - starts[user_of]

    # sample events: every event with enough history (optionally only a user's last k)
    is_sample = pos >= min_history
    short = int((~is_sample).sum())
    per_user = cfg.get("samples_per_user")
    if per_user:
        is_sample &= pos >= counts[user_of] - int(per_user)
    sample_idx = np.flatnonzero(is_sample)
    steps = [filtering_step("events", n_events, "events"),
             filtering_step("not_samples_short_history", -short,
                            f"events with fewer than data.min_history={min_history} earlier events (history only)")]
    if per_user:
        steps.append(filtering_step("not_samples_beyond_per_user", -(n_events - short - len(sample_idx)),
                                    f"events before each user's last data.samples_per_user={per_user} "
                                    f"(history only)"))
    steps.append(filtering_step("samples", len(sample_idx), "events that are samples (train, valid and test)"))
    n_samples_u = np.bincount(user_of[sample_idx], minlength=len(starts))
    split_cfg = cfg.get("split", {}) or {}
    n_test = _take(n_samples_u, split_cfg.get("test", 1), "test")
    n_valid = np.minimum(_take(n_samples_u, split_cfg.get("valid", 1), "valid"), n_samples_u - n_test)
    # rank of each sample within its user, from the end
    s_user = user_of[sample_idx]
    s_first = np.r_[0, np.cumsum(n_samples_u)[:-1]]
    rank_from_end = n_samples_u[s_user] - 1 - (np.arange(len(sample_idx)) - s_first[s_user])
    which = np.where(rank_from_end < n_test[s_user], 2, np.where(rank_from_end < n_test[s_user] + n_valid[s_user],
                                                                 1, 0))
    # training period: a user's events before their first validation or test sample
    held_out_pos = np.full(len(starts), np.iinfo(np.int64).max)
    ho = sample_idx[which > 0]
    np.minimum.at(held_out_pos, user_of[ho], pos[ho])
    in_train_period = pos < held_out_pos[user_of]

    item_vocab, cat_vocab, user_vocab = (Vocab(a[in_train_period]) for a in (item, cat, user))
    ev_item, ev_cat = item_vocab(item), cat_vocab(cat)

    # item -> category over the vocabulary, for sampled negatives (first category seen in training)
    train_items = ev_item[in_train_period]
    cat_of_item = np.full(len(item_vocab), OOV, np.int32)
    cat_of_item[PAD] = PAD
    rev = slice(None, None, -1)  # assign in reverse so the first occurrence wins
    cat_of_item[train_items[rev]] = ev_cat[in_train_period][rev]
    neg_cfg = cfg.get("negatives", {}) or {}
    mode = neg_cfg.get("sampling", "uniform")
    if mode not in ("uniform", "popularity"):
        raise DataError(f"`data.negatives.sampling` must be 'uniform' or 'popularity', got {mode!r}")
    pool = np.arange(2, len(item_vocab))
    probs = None
    if mode == "popularity":
        freq = np.bincount(train_items, minlength=len(item_vocab))[2:].astype(np.float64)
        probs = freq / freq.sum()
    neg_rng = np.random.default_rng(int(neg_cfg.get("seed", cfg.get("seed", 0))))
    neg_item = _sample_excluding(neg_rng, pool, probs, ev_item, "negative behaviours").astype(np.int32)
    ev = {"item": ev_item, "cat": ev_cat, "neg_item": neg_item, "neg_cat": cat_of_item[neg_item]}

    splits = {}
    for code, split in enumerate(SPLITS):
        e = sample_idx[which == code]
        cols = {
            "user": user_vocab(user[e]),
            "target_item": ev_item[e],
            "target_cat": ev_cat[e],
            "hist_end": e.astype(np.int64),
            "hist_len": np.minimum(pos[e], max_len).astype(np.int32),
            "label": (np.ones(len(e)) if implicit else label[e]).astype(np.float32),
        }
        cols.update({k: v[e] for k, v in extra.items()})
        if implicit:
            neg = _sample_excluding(rng, pool, probs, cols["target_item"], "negative targets").astype(np.int32)
            neg_cols = dict(cols, target_item=neg, target_cat=cat_of_item[neg],
                            label=np.zeros(len(e), np.float32))
            # positive and its negative side by side, in time order
            cols = {k: np.stack([cols[k], neg_cols[k]], axis=1).reshape((-1,) + cols[k].shape[1:])
                    for k in cols}
        splits[split] = cols

    info = dict(meta or {})
    info["filtering"] = list(info.get("filtering") or []) + steps
    info.update(
        events=int(n_events), users=int(len(starts)), items=len(item_vocab) - 2, cats=len(cat_vocab) - 2,
        users_in_vocab=len(user_vocab) - 2, implicit=implicit,
        protocol={"max_len": max_len, "min_history": min_history, "split": dict(split_cfg),
                  "samples_per_user": per_user, "negatives": dict(neg_cfg)},
    )
    vocab = {"item": len(item_vocab), "cat": len(cat_vocab), "user": len(user_vocab)}
    return SequenceData(name, max_len, vocab, ev, splits, info)
