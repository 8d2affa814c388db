"""Data sources (MovieLens, Amazon, Taobao, synthetic) and the one input pipeline.

`load_data(cfg)` returns a `SequenceData` for a data config, from the cache
under data/cache/ when the config and the source files' contents are unchanged.
"""

from __future__ import annotations

from src.data.cache import load_data
from src.data.dataset import DataError, SequenceData

__all__ = ["DataError", "SequenceData", "load_data"]
