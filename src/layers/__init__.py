"""Keras layers of the DIN family, written in keras.ops."""

from src.layers.activations import Dice, PReLU, get_activation, register_activation
from src.layers.attention import TargetAttention, mask_value
from src.layers.auxiliary import AuxiliaryLoss
from src.layers.mlp import MLP
from src.layers.recurrent import (
    EvolutionCell,
    InterestEvolution,
    InterestExtractor,
    get_cell,
    register_cell,
)
from src.layers.sequence import MaskedSumPooling, SequenceMask, TableLookup

__all__ = [
    "AuxiliaryLoss",
    "Dice",
    "EvolutionCell",
    "InterestEvolution",
    "InterestExtractor",
    "MLP",
    "MaskedSumPooling",
    "PReLU",
    "SequenceMask",
    "TableLookup",
    "TargetAttention",
    "get_activation",
    "get_cell",
    "mask_value",
    "register_activation",
    "register_cell",
]
