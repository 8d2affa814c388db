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

Side features with known effects (declared in `data.features` to be seen by the model):
every user has a `segment` and a `mood`, every item a `style` (each one of `segments`
levels) and a `quality` (standard normal), and the logit gains

    segment_effect * [the user's segment == the target's style] + quality_effect * quality(target)

`mood` has no effect: a model that sees it should do no better. With both effects 0 (the
default) the labels are those of the data without side features: the features are drawn
from their own random stream.
"""

from __future__ import annotations

import numpy as np

from src.data import features as side
from src.data.dataset import OOV, PAD, SPLITS, DataError, SequenceData
from src.data.protocol import _take

DEFAULTS = dict(users=4000, items=1000, cats=20, seq_len=60, samples_per_user=16, drift=0.1, noise=0.1,
                target_current=0.5, bias=-2.0, current=3.0, partner=3.0, max_len=50, seed=0, segments=4,
                segment_effect=0.0, quality_effect=0.0)
PLANTED = {"segment": ("user", "categorical"), "mood": ("user", "categorical"), "style": ("item", "categorical"),
           "quality": ("item", "numeric")}


def _param(cfg, key):
    return cfg.get(key, DEFAULTS[key])


def _check(p: dict) -> None:
    for key in ("users", "items", "cats", "seq_len", "samples_per_user", "max_len", "segments"):
        if int(p[key]) < 1:
            raise DataError(f"`data.{key}` must be >= 1, got {p[key]}")
    if int(p["items"]) < 2 * int(p["cats"]):
        raise DataError(f"`data.items` ({p['items']}) must be at least twice `data.cats` ({p['cats']})")
    if int(p["samples_per_user"]) >= int(p["seq_len"]):
        raise DataError(f"`data.samples_per_user` ({p['samples_per_user']}) must be below `data.seq_len` "
                        f"({p['seq_len']})")
    for key in ("drift", "noise", "target_current"):
        if not 0 <= float(p[key]) <= 1:
            raise DataError(f"`data.{key}` must be in [0, 1], got {p[key]}")


class _Catalogue:
    """Items in category blocks; an item's partner is its neighbour within the block."""

    def __init__(self, n_items: int, n_cats: int, rng):
        self.cat_of = np.arange(n_items) * n_cats // n_items
        self.first = np.searchsorted(self.cat_of, np.arange(n_cats))
        self.size = np.bincount(self.cat_of, minlength=n_cats)
        rank = np.arange(n_items) - self.first[self.cat_of]
        self.partner = np.where(rank ^ 1 < self.size[self.cat_of], self.first[self.cat_of] + (rank ^ 1),
                                np.arange(n_items))
        self.rng = rng

    def item_of(self, cats):
        """A random item of each category."""
        return self.first[cats] + self.rng.integers(0, self.size[cats])


def _behaviours(p: dict, items: _Catalogue, rng) -> tuple[np.ndarray, np.ndarray]:
    """(interest, behaviour) [users, steps]: interests drift over categories, behaviours follow them (or noise)."""
    n_users, n_items, n_cats, steps = int(p["users"]), int(p["items"]), int(p["cats"]), int(p["seq_len"])
    jumps = rng.random((n_users, steps)) < float(p["drift"])
    interest = np.empty((n_users, steps), np.int64)
    interest[:, 0] = rng.integers(0, n_cats, n_users)
    for t in range(1, steps):
        moved = (interest[:, t - 1] + rng.integers(1, n_cats, n_users)) % n_cats
        interest[:, t] = np.where(jumps[:, t], moved, interest[:, t - 1])
    behaviour = items.item_of(interest)
    noisy = rng.random((n_users, steps)) < float(p["noise"])
    return interest, np.where(noisy, rng.integers(0, n_items, (n_users, steps)), behaviour)


def _planted(p: dict) -> dict:
    """The side features' values, from their own random stream: segment and mood per user, style and
    quality per item."""
    rng = np.random.default_rng([int(p["seed"]), 1])
    n_users, n_items, k = int(p["users"]), int(p["items"]), int(p["segments"])
    return {"segment": rng.integers(0, k, n_users), "mood": rng.integers(0, k, n_users),
            "style": rng.integers(0, k, n_items), "quality": rng.standard_normal(n_items)}


def _sample_columns(p: dict, items: _Catalogue, interest, behaviour, rng, planted: dict) -> dict:
    """Samples at each user's last `samples_per_user` steps (history = the behaviours before), with
    clicks that follow the target's partner in the history and the current interest."""
    n_users, n_cats, steps = int(p["users"]), int(p["cats"]), int(p["seq_len"])
    per_user, max_len = int(p["samples_per_user"]), int(p["max_len"])
    pos = np.arange(steps - per_user, steps)
    users = np.repeat(np.arange(n_users), per_user)
    at = np.tile(pos, n_users)
    current = interest[users, at]
    from_current = rng.random(len(users)) < float(p["target_current"])
    target_cat = np.where(from_current, current, rng.integers(0, n_cats, len(users)))
    target = items.item_of(target_cat)
    length = np.minimum(at, max_len)
    offs = np.arange(max_len)
    hist_pos = at[:, None] - length[:, None] + offs[None, :]
    valid = offs[None, :] < length[:, None]
    hist = np.where(valid, behaviour[users[:, None], np.where(valid, hist_pos, 0)], -1)
    partner = items.partner[target]
    relevant = valid & (hist == partner[:, None]) & (partner != target)[:, None]
    logit = (float(p["bias"]) + float(p["current"]) * (target_cat == current)
             + float(p["partner"]) * relevant.any(1))
    if float(p["segment_effect"]) or float(p["quality_effect"]):
        logit = (logit + float(p["segment_effect"]) * (planted["segment"][users] == planted["style"][target])
                 + float(p["quality_effect"]) * planted["quality"][target])
    label = (rng.random(len(users)) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return {"user": (users + 2).astype(np.int32), "target_item": (target + 2).astype(np.int32),
            "target_cat": (target_cat + 2).astype(np.int32), "hist_end": users * steps + at,
            "hist_len": length.astype(np.int32), "label": label, "relevant": relevant,
            **{side.input_name(k): v[users] for k, v in planted.items() if PLANTED[k][0] == "user"}}


def _split(cols: dict, n_users: int, per_user: int, split_cfg: dict) -> dict:
    """Each user's last samples to test, the ones before to validation, the rest to training."""
    counts = np.full(n_users, per_user)
    n_test = _take(counts, split_cfg.get("test", 1), "test")
    n_valid = np.minimum(_take(counts, split_cfg.get("valid", 1), "valid"), counts - n_test)
    users = cols["user"] - 2
    from_end = np.tile(np.arange(per_user)[::-1], n_users)
    which = np.where(from_end < n_test[users], 2, np.where(from_end < (n_test + n_valid)[users], 1, 0))
    return {s: {k: v[which == i] for k, v in cols.items()} for i, s in enumerate(SPLITS)}


def build(cfg) -> SequenceData:
    p = {k: _param(cfg, k) for k in DEFAULTS}
    _check(p)
    n_users, n_items, n_cats, steps = int(p["users"]), int(p["items"]), int(p["cats"]), int(p["seq_len"])
    rng = np.random.default_rng(int(p["seed"]))
    items = _Catalogue(n_items, n_cats, rng)
    interest, behaviour = _behaviours(p, items, rng)
    planted = _planted(p)
    cols = _sample_columns(p, items, interest, behaviour, rng, planted)
    # events: users' behaviours back to back; ids shifted past PAD and OOV
    neg = (behaviour.reshape(-1) + rng.integers(1, n_items, n_users * steps)) % n_items
    events = {"item": (behaviour.reshape(-1) + 2).astype(np.int32),
              "cat": (items.cat_of[behaviour.reshape(-1)] + 2).astype(np.int32),
              "neg_item": (neg + 2).astype(np.int32), "neg_cat": (items.cat_of[neg] + 2).astype(np.int32)}
    splits = _split(cols, n_users, int(p["samples_per_user"]), cfg.get("split", {}) or {})
    tables, specs = _features(cfg, planted, splits)
    vocab = {"item": n_items + 2, "cat": n_cats + 2, "user": n_users + 2}
    meta = {"source": "synthetic", "params": {k: (float(v) if isinstance(v, float) else v) for k, v in p.items()},
            "positive_rate": float(cols["label"].mean()), "samples_with_partner": float(cols["relevant"].any(1).mean()),
            "features": specs}
    assert PAD == 0
    return SequenceData(str(cfg.get("name", "synthetic")), int(p["max_len"]), vocab, events, splits, meta, tables)


def _features(cfg, planted: dict, splits: dict) -> tuple[dict, list]:
    """(item tables, specs) of the declared features, coded as every source's are (src/data/features.py);
    the user features' sample columns of those not declared are dropped."""
    wanted = side.declared(cfg)
    for name, f in wanted.items():
        if PLANTED.get(name) != (f["of"], f["kind"]):
            have = ", ".join(f"{k} (of: {o}, kind: {kd})" for k, (o, kd) in PLANTED.items())
            raise DataError(f"`data.features.{name}`: the synthetic data plants {have}; got of: {f['of']}, "
                            f"kind: {f['kind']}")
    tables, specs = {}, []
    train_items = np.ones(len(planted["style"]), bool)  # every item of the catalogue is known
    for name, f in wanted.items():
        if f["of"] == "item":
            raw = planted[name]
            coded, size = (side.categorical(raw, train_items) if f["kind"] == "categorical"
                           else (side.numeric(raw, train_items, name), None))
            first = [PAD, OOV] if size else [0, 0]  # ids 0 (padding) and 1 (unseen) come first
            tables[name] = np.r_[np.array(first, coded.dtype), coded]
        else:
            col = side.input_name(name)  # a vocabulary of the training split's values, as for user ids
            parts = [splits[s][col] for s in SPLITS]
            coded, size = side.categorical(np.concatenate(parts), np.arange(sum(map(len, parts))) < len(parts[0]))
            for s, part in zip(SPLITS, np.split(coded, np.cumsum([len(x) for x in parts])[:-1])):
                splits[s][col] = part
        specs.append(side.spec(name, f["of"], f["kind"], size))
    for s in splits.values():
        for name in PLANTED:
            if name not in wanted:
                s.pop(side.input_name(name), None)
    return tables, specs
