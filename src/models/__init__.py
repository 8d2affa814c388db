"""The models: base (sum pooling), DIN and DIEN, built from config values only."""

from __future__ import annotations

from src.config import to_plain
from src.models.base import build_base
from src.models.dien import build_dien
from src.models.din import build_din

BUILDERS = {"base": build_base, "din": build_din, "dien": build_dien}


def build_model(cfg, vocab: dict, max_len: int):
    """A Keras model from a model config (`cfg.name` in base, din, dien).

    Args:
        cfg: the `model` config node (a mapping).
        vocab: embedding table sizes {"item", "cat", "user"}; id 0 is padding.
        max_len: history length T.
    """
    cfg = to_plain(cfg)
    name = cfg.get("name")
    if name not in BUILDERS:
        raise ValueError(f"`model.name` must be one of {sorted(BUILDERS)}, got {name!r}")
    return BUILDERS[name](cfg, vocab, max_len)


def needs_negatives(cfg) -> bool:
    """Whether the model takes negative behaviour ids (DIEN with the auxiliary loss)."""
    aux = cfg.get("aux_loss", {}) or {}
    return cfg.get("name") == "dien" and float(aux.get("alpha", 0.0)) > 0
