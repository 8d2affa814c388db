"""DIN: the history pooled by target attention (DIN paper, section 4.3)."""

from __future__ import annotations

from src.layers import TargetAttention
from src.models.common import embed_inputs, head


def attention_layer(cfg, name="attention"):
    """TargetAttention from the typed `cfg.attention` (hidden_units, activation, scale, softmax, ...)."""
    return TargetAttention(name=name, **cfg.attention.model_dump())


def build_din(cfg, vocab: dict, max_len: int, features=()):
    f = embed_inputs(cfg, vocab, max_len, features=features)
    f.parts("attention")
    attention = attention_layer(cfg)
    f.parts("attention/build")
    interest, _ = attention([f.target, f.history], mask=f.mask, return_attention_scores=True)
    return head(f, interest, cfg, name="din")
