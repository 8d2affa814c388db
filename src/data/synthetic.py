"""A synthetic data set with planted structure whose truth is known.

Items belong to categories and come in partner pairs within a category (item 2k
and 2k+1 of a category go together). Each user's interest is a category that
drifts: at every step it moves to another category with probability `drift`.
A behaviour is an item of the current interest, or with probability `noise` any
item. A sample at step p shows the user a target (from the current interest with
probability `target_current`, else from any category) and the click follows

    logit = bias + current * [target's category == current interest]
                 + partner * [the target's partner is in the history]

So the click depends on a few history items relevant to the target (the
partner's positions, recorded per sample as `relevant`, so that attention can be
scored against the truth) and on the current interest, which only the order of
the history reveals. Sum pooling sees neither well, attention finds the partner,
and an interest-evolution model also tracks the current interest.
"""

from __future__ import annotations

import numpy as np

from src.data.dataset import PAD, SPLITS, DataError, SequenceData
from src.data.protocol import _take

DEFAULTS = dict(users=4000, items=1000, cats=20, seq_len=60, samples_per_user=16, drift=0.1, noise=0.1,
                target_current=0.5, bias=-2.0, current=3.0, partner=3.0, max_len=50, seed=0)


def _param(cfg, key):
    return cfg.get(key, DEFAULTS[key])


def build(cfg) -> SequenceData:
    p = {k: _param(cfg, k) for k in DEFAULTS}
    n_users, n_items, n_cats = int(p["users"]), int(p["items"]), int(p["cats"])
    seq_len, per_user, max_len = int(p["seq_len"]), int(p["samples_per_user"]), int(p["max_len"])
    for key in ("users", "items", "cats", "seq_len", "samples_per_user", "max_len"):
        if int(p[key]) < 1:
            raise DataError(f"`data.{key}` must be >= 1, got {p[key]}")
    if n_items < 2 * n_cats:
        raise DataError(f"`data.items` ({n_items}) must be at least twice `data.cats` ({n_cats})")
    if per_user >= seq_len:
        raise DataError(f"`data.samples_per_user` ({per_user}) must be below `data.seq_len` ({seq_len})")
    for key in ("drift", "noise", "target_current"):
        if not 0 <= float(p[key]) <= 1:
            raise DataError(f"`data.{key}` must be in [0, 1], got {p[key]}")
    rng = np.random.default_rng(int(p["seed"]))

    # items: category by block, partner = the neighbour within the block
    cat_of = np.arange(n_items) * n_cats // n_items
    first = np.searchsorted(cat_of, np.arange(n_cats))
    size = np.bincount(cat_of, minlength=n_cats)
    rank = np.arange(n_items) - first[cat_of]
    partner = np.where(rank ^ 1 < size[cat_of], first[cat_of] + (rank ^ 1), np.arange(n_items))

    def item_of(cats):
        return first[cats] + rng.integers(0, size[cats])

    steps = seq_len
    jumps = rng.random((n_users, steps)) < float(p["drift"])
    interest = np.empty((n_users, steps), np.int64)
    interest[:, 0] = rng.integers(0, n_cats, n_users)
    for t in range(1, steps):
        moved = (interest[:, t - 1] + rng.integers(1, n_cats, n_users)) % n_cats
        interest[:, t] = np.where(jumps[:, t], moved, interest[:, t - 1])
    behaviour = item_of(interest)
    noisy = rng.random((n_users, steps)) < float(p["noise"])
    behaviour = np.where(noisy, rng.integers(0, n_items, (n_users, steps)), behaviour)

    # samples at the user's last `per_user` steps: history = behaviours before step p
    pos = np.arange(steps - per_user, steps)
    users = np.repeat(np.arange(n_users), per_user)
    at = np.tile(pos, n_users)
    current = interest[users, at]
    from_current = rng.random(len(users)) < float(p["target_current"])
    target_cat = np.where(from_current, current, rng.integers(0, n_cats, len(users)))
    target = item_of(target_cat)
    length = np.minimum(at, max_len)
    offs = np.arange(max_len)
    hist_pos = at[:, None] - length[:, None] + offs[None, :]
    valid = offs[None, :] < length[:, None]
    hist = np.where(valid, behaviour[users[:, None], np.where(valid, hist_pos, 0)], -1)
    relevant = valid & (hist == partner[target][:, None]) & (partner[target] != target)[:, None]
    logit = (float(p["bias"]) + float(p["current"]) * (target_cat == current)
             + float(p["partner"]) * relevant.any(1))
    label = (rng.random(len(users)) < 1 / (1 + np.exp(-logit))).astype(np.float32)

    # events: users' behaviours back to back; ids shifted past PAD and OOV
    ev_item = (behaviour.reshape(-1) + 2).astype(np.int32)
    neg = (behaviour.reshape(-1) + rng.integers(1, n_items, n_users * steps)) % n_items
    events = {"item": ev_item, "cat": (cat_of[behaviour.reshape(-1)] + 2).astype(np.int32),
              "neg_item": (neg + 2).astype(np.int32), "neg_cat": (cat_of[neg] + 2).astype(np.int32)}
    cols = {"user": (users + 2).astype(np.int32), "target_item": (target + 2).astype(np.int32),
            "target_cat": (target_cat + 2).astype(np.int32), "hist_end": users * steps + at,
            "hist_len": length.astype(np.int32), "label": label, "relevant": relevant}
    split_cfg = cfg.get("split", {}) or {}
    counts = np.full(n_users, per_user)
    n_test = _take(counts, split_cfg.get("test", 1), "test")
    n_valid = np.minimum(_take(counts, split_cfg.get("valid", 1), "valid"), counts - n_test)
    from_end = np.tile(np.arange(per_user)[::-1], n_users)
    which = np.where(from_end < n_test[users], 2, np.where(from_end < (n_test + n_valid)[users], 1, 0))
    splits = {s: {k: v[which == i] for k, v in cols.items()} for i, s in enumerate(SPLITS)}
    vocab = {"item": n_items + 2, "cat": n_cats + 2, "user": n_users + 2}
    meta = {"source": "synthetic", "params": {k: (float(v) if isinstance(v, float) else v) for k, v in p.items()},
            "positive_rate": float(label.mean()), "samples_with_partner": float(relevant.any(1).mean())}
    assert PAD == 0
    return SequenceData(str(cfg.get("name", "synthetic")), max_len, vocab, events, splits, meta)
