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
    f.parts("interest_extractor")  # each part from its own stream (common random numbers: src/models/common.py)
    extractor = InterestExtractor(units, name="interest_extractor")
    f.parts("interest_extractor/build")
    states = extractor(f.history, mask=f.mask)
    if alpha > 0:
        f.parts("auxiliary_loss")
        aux = AuxiliaryLoss(name="auxiliary_loss", **cfg.aux_loss.model_dump())
        f.parts("auxiliary_loss/build")
        states = aux([states, f.history, f.negatives], mask=f.mask)
    f.parts("interest_evolution")
    evolution = InterestEvolution(units, name="interest_evolution", **cfg.evolution.model_dump(),
                                  return_sequences=cfg.evolution.cell == "gru")
    f.parts("attention")
    attention = attention_layer(cfg)
    if evolution.cell.attention == "pool":
        f.parts("interest_evolution/build")
        seq = evolution(states, mask=f.mask)
        f.parts("attention/build")
        interest, _ = attention([f.target, seq], mask=f.mask, return_attention_scores=True)
    else:
        f.parts("attention/build")
        _, scores = attention([f.target, states], mask=f.mask, return_attention_scores=True)
        f.parts("interest_evolution/build")
        interest = evolution([states, scores], mask=f.mask)
    return head(f, interest, cfg, name="dien")
