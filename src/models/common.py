"""What every model of the family shares: inputs, embeddings, the prediction head."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from src.config.schema import spec
from src.layers import MLP, SequenceMask
from src.layers._checks import positive_int

INPUTS = ("target_item", "target_cat", "hist_item", "hist_cat", "hist_len", "user")
NEG_INPUTS = ("neg_item", "neg_cat")


def mlp_units(mlp) -> list[int]:
    """Hidden widths from the typed `model.mlp` (`depth`, `width`, `taper`): width * taper**i for i < depth."""
    return [max(1, round(mlp.width * mlp.taper**i)) for i in range(mlp.depth)]


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


def embed_inputs(cfg, vocab: dict, max_len: int, with_negatives: bool = False) -> Features:
    """Creates the model inputs and embeds them.

    Args:
        cfg: the typed model config; `cfg.embedding` gives widths `item`, `cat`, `user`
            (0 switches the feature off; `item` is positive, checked by the schema).
        vocab: table sizes {"item": n, "cat": n, "user": n}, id 0 = padding.
        max_len: history length T.
        with_negatives: add `neg_item`/`neg_cat` inputs (DIEN's auxiliary loss).
    """
    positive_int("max_len", max_len)
    d_item, d_cat, d_user = cfg.embedding.item, cfg.embedding.cat, cfg.embedding.user
    for key, width in (("item", d_item), ("cat", d_cat), ("user", d_user)):
        if width:
            positive_int(f"vocab['{key}']", vocab.get(key))

    inputs = {
        "target_item": keras.Input((), dtype="int32", name="target_item"),
        "hist_item": keras.Input((max_len,), dtype="int32", name="hist_item"),
        "hist_len": keras.Input((), dtype="int32", name="hist_len"),
    }
    item_table = keras.layers.Embedding(vocab["item"], d_item, name="item_embedding")
    cat_table = None
    if d_cat:
        inputs["target_cat"] = keras.Input((), dtype="int32", name="target_cat")
        inputs["hist_cat"] = keras.Input((max_len,), dtype="int32", name="hist_cat")
        cat_table = keras.layers.Embedding(vocab["cat"], d_cat, name="cat_embedding")

    def embed_behaviour(item, cat):
        e = item_table(item)
        if cat_table is None:
            return e
        return keras.layers.Concatenate(axis=-1)([e, cat_table(cat)])

    target = embed_behaviour(inputs["target_item"], inputs.get("target_cat"))
    history = embed_behaviour(inputs["hist_item"], inputs.get("hist_cat"))
    mask = SequenceMask(name="history_mask")([inputs["hist_len"], inputs["hist_item"]])
    user = None
    if d_user:
        inputs["user"] = keras.Input((), dtype="int32", name="user")
        user = keras.layers.Embedding(vocab["user"], d_user, name="user_embedding")(inputs["user"])
    negatives = None
    if with_negatives:
        inputs["neg_item"] = keras.Input((max_len,), dtype="int32", name="neg_item")
        if d_cat:
            inputs["neg_cat"] = keras.Input((max_len,), dtype="int32", name="neg_cat")
        negatives = embed_behaviour(inputs["neg_item"], inputs.get("neg_cat"))
    return Features(inputs, target, history, mask, user, negatives, embed_behaviour)


def head(features: Features, interest, cfg, name: str) -> keras.Model:
    """Concatenates [user, target, interest], runs the top MLP, outputs P(click) [B, 1]."""
    parts = ([features.user] if features.user is not None else []) + [features.target, interest]
    x = keras.layers.Concatenate(axis=-1, name="head_input")(parts)
    x = MLP(mlp_units(cfg.mlp), activation=spec(cfg.activation), batch_norm=cfg.mlp.batch_norm,
            dropout=cfg.mlp.dropout, name="top_mlp")(x)
    # the probability in float32 under mixed precision, for a stable log-loss
    mixed = keras.config.dtype_policy().name.startswith("mixed")
    out = keras.layers.Dense(1, activation="sigmoid", name="click_probability", dtype="float32" if mixed else None)(x)
    return keras.Model(features.inputs, out, name=name)
