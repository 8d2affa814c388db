"""The models: base (sum pooling), DIN and DIEN, built from a typed model config (src/config/schema.py)."""

from __future__ import annotations

from src.config import to_plain
from src.config.schema import BaseNet, model_section
from src.models.base import build_base
from src.models.dien import build_dien
from src.models.din import build_din

BUILDERS = {"base": build_base, "din": build_din, "dien": build_dien}


def build_model(cfg, vocab: dict, max_len: int, features=()):
    """A Keras model from a model config (`cfg.name` in base, din, dien).

    Args:
        cfg: the typed `model` config (`Config.model`), or a mapping, checked against its model's schema.
        vocab: embedding table sizes {"item", "cat", "user"}; id 0 is padding.
        max_len: history length T.
        features: the data set's side features (`SequenceData.features`, src/data/features.py).
    """
    cfg = typed(cfg)
    if cfg.target:  # a model of the user's own (src/config/extensions.py)
        import keras

        from src.config import extensions

        model = extensions.model_builder(cfg.target)(cfg, vocab, max_len, features)
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model._target_` {cfg.target} returned {type(model).__name__}, not a keras.Model")
        return model
    return BUILDERS[cfg.name](cfg, vocab, max_len, features)


def typed(cfg) -> BaseNet:
    """The typed model config: as it is, or a mapping checked against its model's schema."""
    return cfg if isinstance(cfg, BaseNet) else model_section(to_plain(cfg))


def needs_negatives(cfg) -> bool:
    """Whether the model takes negative behaviour ids (DIEN with the auxiliary loss)."""
    cfg = typed(cfg)
    return cfg.name == "dien" and cfg.aux_loss.alpha > 0
