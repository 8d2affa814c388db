"""DIEN: interest extractor GRU, target attention, interest evolution (DIEN paper, section 4)."""

from __future__ import annotations

from src.layers import AuxiliaryLoss, InterestEvolution, InterestExtractor
from src.models.common import embed_inputs, head
from src.models.din import attention_layer


def build_dien(cfg, vocab: dict, max_len: int, features=()):
    """Extractor states -> attention scores -> evolution layer -> head.

    `cfg.evolution` = {cell, convention}; a "gru" evolution layer runs over the
    extractor states and its outputs are pooled by attention (the paper's "two
    layer GRU attention"); AIGRU, AGRU and AUGRU take the attention scores of the
    extractor states and return their last valid state. `cfg.aux_loss.alpha` > 0
    adds the auxiliary loss, fed by the `neg_item`/`neg_cat` inputs.
    """
    alpha = cfg.aux_loss.alpha
    f = embed_inputs(cfg, vocab, max_len, with_negatives=alpha > 0, features=features)
    units = cfg.extractor.units or f.history.shape[-1]
    states = InterestExtractor(units, name="interest_extractor")(f.history, mask=f.mask)
    if alpha > 0:
        states = AuxiliaryLoss(name="auxiliary_loss", **cfg.aux_loss.model_dump())(
            [states, f.history, f.negatives], mask=f.mask
        )
    evolution = InterestEvolution(units, name="interest_evolution", **cfg.evolution.model_dump(),
                                  return_sequences=cfg.evolution.cell == "gru")
    attention = attention_layer(cfg)
    if evolution.cell.attention == "pool":
        seq = evolution(states, mask=f.mask)
        interest, _ = attention([f.target, seq], mask=f.mask, return_attention_scores=True)
    else:
        _, scores = attention([f.target, states], mask=f.mask, return_attention_scores=True)
        interest = evolution([states, scores], mask=f.mask)
    return head(f, interest, cfg, name="dien")
