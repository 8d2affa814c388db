"""Taobao UserBehavior.csv (Tianchi): `user_id,item_id,category_id,behavior_type,timestamp`,
no header, behavior_type in {pv, buy, cart, fav}, about 100M rows.

The file is read in chunks; rows of other behaviour types or outside the time
window [`window.start`, `window.end`) are dropped as they are read, so only the
kept rows' four integer columns stay in memory. Next-click samples: each kept
event with enough history is a positive (the user's last `samples_per_user`
positions), with one sampled negative target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.data.dataset import DataError, filtering_step
from src.data.protocol import Events
from src.data.readers import find_one, read_delimited

HOW_TO_GET = (
    "UserBehavior.csv comes from the Tianchi data set 'User Behavior Data from Taobao for Recommendation' "
    "(https://tianchi.aliyun.com/dataset/649): unpack it and set `data.path` to the folder holding it."
)
BEHAVIOURS = ("pv", "buy", "cart", "fav")
COLUMNS = ["user", "item", "cat", "behavior", "time"]


def files(cfg, folder: Path) -> list[Path]:
    return [find_one(folder, [cfg.get("file", "UserBehavior.csv"), cfg.get("file", "UserBehavior.csv") + ".gz"],
                     HOW_TO_GET)]


def _behaviour(v):
    if v not in BEHAVIOURS:
        raise ValueError(v)


def implicit(cfg) -> bool:
    """Clicks are positives: each sample gets a sampled negative."""
    return True


def load_events(cfg, paths: list[Path], progress=None):
    (path,) = paths
    keep = list(cfg.get("behaviors", ["pv"]))
    bad = [b for b in keep if b not in BEHAVIOURS]
    if bad or not keep:
        raise DataError(f"`data.behaviors` must be a non-empty subset of {list(BEHAVIOURS)}, got {keep}")
    window = cfg.get("window", {}) or {}
    start, end = int(window.get("start", 0)), int(window.get("end", 2**62))
    parts, rows, out_of_window, other = [], 0, 0, 0
    types = {"user": np.int64, "item": np.int64, "cat": np.int64, "behavior": "category", "time": np.int64}
    checks = [int, int, int, _behaviour, int]
    for chunk in read_delimited(path, COLUMNS, types, checks, header=False,
                                chunksize=int(cfg.get("chunk_rows", 5_000_000))):
        behaviour = chunk["behavior"]
        unknown = ~behaviour.isin(BEHAVIOURS)
        if unknown.any():
            i = int(np.flatnonzero(unknown.to_numpy())[0])
            raise DataError(f"{path}:{rows + i + 1}: unknown behavior_type {behaviour.iloc[i]!r} "
                            f"(expected one of {list(BEHAVIOURS)})")
        t = chunk["time"].to_numpy()
        in_window = (t >= start) & (t < end)
        wanted = behaviour.isin(keep).to_numpy()
        sel = wanted & in_window
        parts.append(np.stack([chunk[c].to_numpy()[sel] for c in ("user", "item", "cat", "time")]).astype(np.int64))
        rows += len(chunk)
        out_of_window += int((~in_window).sum())
        other += int((in_window & ~wanted).sum())
        if progress:
            progress(rows)
    if rows == 0:
        raise DataError(f"{path}: the file is empty (no rows)")
    user, item, cat, time = np.concatenate(parts, axis=1)
    steps = [filtering_step("rows_read", rows, f"rows read from {path.name}"),
             filtering_step("dropped_out_of_window", -out_of_window, f"outside the time window [{start}, {end})"),
             filtering_step("dropped_other_behaviours", -other, f"behaviour types other than {keep} "
                                                                f"(data.behaviors)")]
    if len(user) == 0:
        raise DataError(f"{path}: no events left after filtering: {rows:,} rows read, {out_of_window:,} outside the "
                        f"time window [{start}, {end}), {other:,} of behaviour types other than {keep}")
    meta = {"source": "taobao", "rows": rows, "rows_out_of_window": out_of_window, "rows_other_behaviours": other,
            "behaviors": keep, "window": [start, end], "filtering": steps}
    return Events(user, item, cat, time), meta


def protocol_overrides(cfg) -> dict:
    """Nothing: the config's protocol values apply as they are."""
    return {}
