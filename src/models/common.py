"""What every model of the family shares: inputs, embeddings, the prediction head."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import keras

from src.config.schema import spec
from src.layers import MLP, SequenceMask, TableLookup
from src.layers._checks import positive_int

INPUTS = ("target_item", "target_cat", "hist_item", "hist_cat", "hist_len", "user")
NEG_INPUTS = ("neg_item", "neg_cat")


def mlp_units(mlp) -> list[int]:
    """Hidden widths from the typed `model.mlp` (`depth`, `width`, `taper`): width * taper**i for i < depth."""
    return [max(1, round(mlp.width * mlp.taper**i)) for i in range(mlp.depth)]


@dataclass
class Parts:
    """Common random numbers across the configurations of one seed. Keras draws each initializer's (and
    dropout's) seed from Python's `random` when a layer is made or built, so a layer's initial values
    depended on every random layer made before it: two configurations of one seed that differ upstream (an
    MLP one layer deeper, an AUGRU for a GRU) started the parts they share from different values, and the
    difference between them carried that luck too. Reseeding before each part, from the build's base and the
    part's name, gives a part the same initial values in every configuration of a seed where it has the same
    shapes. The base is drawn from `random` as the build starts, which the run's seed has just set
    (src/run/runtime.py): the same in every configuration of that seed."""

    base: int = field(default_factory=lambda: random.getrandbits(64))

    def __call__(self, name: str) -> None:
        """Before a part is made, and again before it is built (`<name>/build`)."""
        random.seed(f"{self.base}/{name}")


@dataclass
class Features:
    """The embedded inputs of one batch, symbolic."""

    inputs: dict
    target: keras.KerasTensor  # [B, E]
    history: keras.KerasTensor  # [B, T, E]
    mask: keras.KerasTensor  # [B, T] bool
    user: keras.KerasTensor | None  # [B, U] or None
    negatives: keras.KerasTensor | None  # [B, T, E] or None
    embed_behaviour: object
    context: list  # the user and event side features, each [B, F]: the head's input beside `user`
    parts: Parts  # reseeds before each part (common random numbers)


def embed_inputs(cfg, vocab: dict, max_len: int, with_negatives: bool = False, features=()) -> Features:
    """Creates the model inputs and embeds them.

    Args:
        cfg: the typed model config; `cfg.embedding` gives widths `item`, `cat`, `user`
            (0 switches the feature off; `item` is positive, checked by the schema) and `feature`,
            that of each categorical side feature.
        vocab: table sizes {"item": n, "cat": n, "user": n}, id 0 = padding.
        max_len: history length T.
        with_negatives: add `neg_item`/`neg_cat` inputs (DIEN's auxiliary loss).
        features: side features (`SequenceData.features`): an item's join its embedding wherever the item
            appears (target, behaviours, negatives), as the category does; a user's or an event's are
            inputs `f_<name>` that join the head's input.
    """
    positive_int("max_len", max_len)
    parts = Parts()
    d_item, d_cat, d_user = cfg.embedding.item, cfg.embedding.cat, cfg.embedding.user
    for key, width in (("item", d_item), ("cat", d_cat), ("user", d_user)):
        if width:
            positive_int(f"vocab['{key}']", vocab.get(key))

    inputs = {
        "target_item": keras.Input((), dtype="int32", name="target_item"),
        "hist_item": keras.Input((max_len,), dtype="int32", name="hist_item"),
        "hist_len": keras.Input((), dtype="int32", name="hist_len"),
    }
    parts("item_embedding")
    item_table = keras.layers.Embedding(vocab["item"], d_item, name="item_embedding")
    cat_table = None
    if d_cat:
        inputs["target_cat"] = keras.Input((), dtype="int32", name="target_cat")
        inputs["hist_cat"] = keras.Input((max_len,), dtype="int32", name="hist_cat")
        parts("cat_embedding")
        cat_table = keras.layers.Embedding(vocab["cat"], d_cat, name="cat_embedding")
    item_features = [_item_feature(f, vocab["item"], cfg.embedding.feature, parts) for f in features
                     if f["of"] == "item"]

    def embed_behaviour(item, cat):
        parts = [item_table(item)] + ([cat_table(cat)] if cat_table is not None else [])
        parts += [embed(lookup(item)) for lookup, embed in item_features]
        return parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=-1)(parts)

    target = embed_behaviour(inputs["target_item"], inputs.get("target_cat"))
    history = embed_behaviour(inputs["hist_item"], inputs.get("hist_cat"))
    mask = SequenceMask(name="history_mask")([inputs["hist_len"], inputs["hist_item"]])
    user = None
    if d_user:
        inputs["user"] = keras.Input((), dtype="int32", name="user")
        parts("user_embedding")
        user = keras.layers.Embedding(vocab["user"], d_user, name="user_embedding")(inputs["user"])
    negatives = None
    if with_negatives:
        inputs["neg_item"] = keras.Input((max_len,), dtype="int32", name="neg_item")
        if d_cat:
            inputs["neg_cat"] = keras.Input((max_len,), dtype="int32", name="neg_cat")
        negatives = embed_behaviour(inputs["neg_item"], inputs.get("neg_cat"))
    context = [_context_feature(f, inputs, cfg.embedding.feature, parts) for f in features if f["of"] != "item"]
    return Features(inputs, target, history, mask, user, negatives, embed_behaviour, context, parts)


def _item_feature(f: dict, n_items: int, width: int, parts: Parts):
    """(lookup by item id, its embedding) of an item side feature; a numeric one is its value, [..., 1]."""
    if f.get("table") is None or len(f["table"]) != n_items:
        raise ValueError(f"item feature {f['name']!r} needs a table of {n_items} values, one per item id")
    numeric = f["kind"] == "numeric"
    lookup = TableLookup(n_items, numeric=numeric, name=f"item_{f['name']}_table")
    lookup.table.assign(f["table"])
    if numeric:
        return lookup, lambda x: x
    positive_int(f"embedding.feature (for item feature {f['name']!r})", width)
    parts(f"item_{f['name']}_embedding")
    return lookup, keras.layers.Embedding(f["size"], width, name=f"item_{f['name']}_embedding")


def _context_feature(f: dict, inputs: dict, width: int, parts: Parts):
    """A user or event side feature as the head's input: its embedding [B, width], or its value [B, 1]."""
    name = f"f_{f['name']}"
    if f["kind"] == "numeric":
        inputs[name] = keras.Input((), dtype="float32", name=name)
        return keras.ops.expand_dims(inputs[name], -1)
    positive_int(f"embedding.feature (for {f['of']} feature {f['name']!r})", width)
    inputs[name] = keras.Input((), dtype="int32", name=name)
    parts(f"{f['of']}_{f['name']}_embedding")
    return keras.layers.Embedding(f["size"], width, name=f"{f['of']}_{f['name']}_embedding")(inputs[name])


def head(features: Features, interest, cfg, name: str) -> keras.Model:
    """Concatenates [user, user and event side features, target, interest], runs the top MLP, outputs
    P(click) [B, 1]."""
    parts = ([features.user] if features.user is not None else []) + features.context + [features.target, interest]
    x = keras.layers.Concatenate(axis=-1, name="head_input")(parts)
    features.parts("top_mlp")
    mlp = MLP(mlp_units(cfg.mlp), activation=spec(cfg.activation), batch_norm=cfg.mlp.batch_norm,
              dropout=cfg.mlp.dropout, name="top_mlp")
    features.parts("top_mlp/build")
    x = mlp(x)
    # the probability in float32 under mixed precision, for a stable log-loss
    mixed = keras.config.dtype_policy().name.startswith("mixed")
    features.parts("click_probability")
    out = keras.layers.Dense(1, activation="sigmoid", name="click_probability", dtype="float32" if mixed else None)
    features.parts("click_probability/build")
    out = out(x)
    return keras.Model(features.inputs, out, name=name)
