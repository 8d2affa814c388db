"""The base model: sum pooling of the behaviour embeddings (the control)."""

from __future__ import annotations

from src.layers import MaskedSumPooling
from src.models.common import embed_inputs, head


def build_base(cfg, vocab: dict, max_len: int, features=()):
    """Embedding & MLP with sum-pooled history (DIN paper, section 4.2)."""
    f = embed_inputs(cfg, vocab, max_len, features=features)
    interest = MaskedSumPooling(name="sum_pooling")(f.history, mask=f.mask)
    return head(f, interest, cfg, name="base")
