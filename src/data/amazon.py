"""Amazon reviews in the published raw format (docs/data.md).

`reviews_<Cat>_5.json[.gz]`: one review per line (reviewerID, asin, overall,
unixReviewTime, ...); `meta_<Cat>.json[.gz]`: one item per line (asin,
categories: a list of category paths). Lines are strict JSON or, as in the older
dumps, Python literals. An item's category is the last element of its first
category path; items without meta fall into category "unknown".

Every review is a click. Protocols (`data.protocol`):
- `din`: every position of a user's review sequence is a sample (history = the
  reviews before it) with one sampled negative target; the user's last sample is
  test, the one before validation (`data.split`).
- `dien`: only the user's last three positions, one each for train, validation
  and test, each with its negative; histories up to `max_len` (100 in the paper).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

from src.data.dataset import DataError, filtering_step
from src.data.protocol import Events, paper_overrides
from src.data.readers import find_one, item_table_coverage, open_text

HOW_TO_GET = (
    "The Amazon review data (5-core reviews and item metadata, e.g. reviews_Electronics_5.json.gz and "
    "meta_Electronics.json.gz) comes from https://jmcauley.ucsd.edu/data/amazon/ : download both files of "
    "one category into a folder and set `data.path` to it and `data.category` to the category name."
)


def files(cfg, folder: Path) -> list[Path]:
    cat = cfg.get("category", "Electronics")
    reviews = find_one(folder, [f"reviews_{cat}_5.json", f"reviews_{cat}_5.json.gz"], HOW_TO_GET)
    meta = find_one(folder, [f"meta_{cat}.json", f"meta_{cat}.json.gz"], HOW_TO_GET)
    return [reviews, meta]


def _parse(line: str, path: Path, lineno: int) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        try:
            obj = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataError(f"{path}:{lineno}: neither JSON nor a Python literal: {line[:200]!r}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}:{lineno}: expected an object, got {type(obj).__name__}")
    return obj


def _lines(path: Path):
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if line:
                yield lineno, line


def read_meta(path: Path) -> dict[str, str]:
    """asin -> category (last element of the first category path)."""
    out = {}
    for lineno, line in _lines(path):
        obj = _parse(line, path, lineno)
        asin = obj.get("asin")
        if not isinstance(asin, str):
            raise DataError(f"{path}:{lineno}: missing 'asin'")
        cats = obj.get("categories") or []
        first = cats[0] if cats and isinstance(cats[0], list) else cats
        out[asin] = first[-1] if first else "unknown"
    return out


def read_reviews(path: Path):
    """Columns (user codes, item codes, times) and the code tables, streamed line by line."""
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    u, i, t = [], [], []
    for lineno, line in _lines(path):
        obj = _parse(line, path, lineno)
        try:
            reviewer, asin, time = obj["reviewerID"], obj["asin"], int(obj["unixReviewTime"])
        except KeyError as e:
            raise DataError(f"{path}:{lineno}: missing field {e.args[0]!r}") from None
        except (TypeError, ValueError):
            raise DataError(f"{path}:{lineno}: unixReviewTime is not an integer") from None
        u.append(users.setdefault(reviewer, len(users)))
        i.append(items.setdefault(asin, len(items)))
        t.append(time)
    return np.array(u, np.int64), np.array(i, np.int64), np.array(t, np.int64), items


def implicit(cfg) -> bool:
    """Reviews are positives: each sample gets a sampled negative."""
    return True


def load_events(cfg, paths: list[Path], progress=None):
    """Review events with their categories, and their provenance (`progress` is not called)."""
    reviews_path, meta_path = paths
    protocol = cfg.get("protocol", "din")
    if protocol not in ("din", "dien"):
        raise DataError(f"`data.protocol` must be 'din' or 'dien', got {protocol!r}")
    cat_of = read_meta(meta_path)
    if not cat_of:
        raise DataError(f"{meta_path}: the file is empty (no item metadata)")
    user, item, time, item_codes = read_reviews(reviews_path)
    if len(user) == 0:
        raise DataError(f"{reviews_path}: the file is empty (no reviews)")
    names = np.empty(len(item_codes), dtype=object)
    for asin, code in item_codes.items():
        names[code] = cat_of.get(asin, "unknown")
    covered = sum(a in cat_of for a in item_codes)
    found = item_table_coverage(covered, len(item_codes), meta_path, cfg,
                                f": is it the meta file of another category (data.category={cfg.get('category')!r})?",
                                "reviewed items")
    cat_names, cat_codes = np.unique(names.astype(str), return_inverse=True)
    steps = [filtering_step("reviews_read", len(user), f"reviews read from {reviews_path.name}"),
             filtering_step("items_without_meta", len(item_codes) - covered,
                            f"of {len(item_codes):,} items have no metadata (category 'unknown'; kept)")]
    meta = {"source": "amazon", "category": cfg.get("category", "Electronics"), "protocol": protocol,
            "reviews": int(len(user)), **found, "filtering": steps}
    return Events(user, item, cat_codes[item], time), meta


def protocol_overrides(cfg) -> dict:
    return paper_overrides(cfg)
