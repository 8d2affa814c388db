"""Scale check: write a source file of full size in its real format, then preprocess it.

    python -m src.bench preprocess --source taobao --rows 100000000   (UserBehavior.csv, ~3.5 GB)
    python -m src.bench preprocess --source amazon --rows 9000000     (Books-sized reviews + meta)
    python -m src.bench preprocess --source events --rows 100000000   (the Taobao rows as a CSV log with a
        header, read by data=events; the Taobao loader preprocesses the same rows in the same run)

Generation runs in this process; preprocessing (read, protocol, cache write) runs
in a child process, whose peak resident memory is read from the OS afterwards.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from src.config.paths import ROOT

CHUNK = 2_000_000


def _zipf_ids(rng, n, size, a=1.2):
    """Ids in [0, n) with a long-tailed popularity, as item clicks have."""
    ranks = rng.zipf(a, size) - 1
    return np.where(ranks < n, ranks, rng.integers(0, n, size))


def generate_taobao(path: Path, rows: int, seed: int = 0, progress=print) -> None:
    """UserBehavior.csv: users in blocks (as the real file), 89% pv, 9 days plus a few stray timestamps."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_cats = max(1, rows // 101), max(2, rows // 24), max(2, rows // 10600)
    # ids spread over the real file's ranges (items and categories up to ~5.2M)
    item_ids = rng.choice(5_163_070, size=n_items, replace=False) + 1 if n_items < 5_163_070 else \
        np.arange(1, n_items + 1)
    cat_ids = rng.choice(5_162_429, size=n_cats, replace=False) + 1
    cat_of_item = cat_ids[rng.integers(0, n_cats, n_items)]
    start, end = 1511539200, 1512316800
    behaviours = np.array(["pv", "buy", "cart", "fav"])
    user_of_row = np.sort(rng.integers(0, n_users, rows))
    written = 0
    with open(path, "w") as f:
        while written < rows:
            n = min(CHUNK, rows - written)
            users = user_of_row[written:written + n] + 1
            items = _zipf_ids(rng, n_items, n)
            times = rng.integers(start, end, n)
            stray = rng.random(n) < 0.0005
            times[stray] = rng.integers(start - 86400 * 30, end + 86400 * 30, int(stray.sum()))
            kind = behaviours[np.searchsorted([0.894, 0.914, 0.97], rng.random(n))]
            block = np.char.add(np.char.add(users.astype(str), ","), item_ids[items].astype(str))
            block = np.char.add(np.char.add(block, ","), cat_of_item[items].astype(str))
            block = np.char.add(np.char.add(block, ","), kind)
            block = np.char.add(np.char.add(block, ","), times.astype(str))
            f.write("\n".join(block.tolist()))
            f.write("\n")
            written += n
            progress(f"  {written:,} / {rows:,} rows written")


def generate_amazon(folder: Path, reviews: int, category: str = "Books", seed: int = 0,
                    progress=print) -> None:
    """reviews_<Cat>_5.json (strict JSON lines) and meta_<Cat>.json (Python-literal lines, as the old dumps)."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_cats = max(1, reviews // 15), max(2, reviews // 24), 1000
    words = np.array("good great book read story author plot characters enjoyed recommend".split())
    user_of_row = np.sort(rng.integers(0, n_users, reviews))
    written = 0
    with open(folder / f"reviews_{category}_5.json", "w") as f:
        while written < reviews:
            n = min(CHUNK // 4, reviews - written)
            items = _zipf_ids(rng, n_items, n)
            times = rng.integers(946684800, 1406073600, n)
            stars = rng.integers(1, 6, n)
            text = [" ".join(words[rng.integers(0, len(words), 12)])] * n
            lines = [
                json.dumps({"reviewerID": f"A{u:013d}", "asin": f"{i:010d}", "reviewerName": "reader",
                            "helpful": [0, 0], "reviewText": t, "overall": float(s), "summary": "review",
                            "unixReviewTime": int(tm), "reviewTime": "01 1, 2014"})
                for u, i, t, s, tm in zip(user_of_row[written:written + n], items, text, stars, times)
            ]
            f.write("\n".join(lines) + "\n")
            written += n
            progress(f"  {written:,} / {reviews:,} reviews written")
    cats = rng.integers(0, n_cats, n_items)
    with open(folder / f"meta_{category}.json", "w") as f:
        for start in range(0, n_items, CHUNK):
            idx = range(start, min(n_items, start + CHUNK))
            f.write("\n".join(repr({"asin": f"{i:010d}", "title": "A book",
                                    "categories": [["Books", f"Genre {cats[i] // 50}", f"Topic {cats[i]}"]]})
                              for i in idx) + "\n")


def _measure(cfg_json: str) -> None:
    """Child process: preprocess one data config into a fresh cache; print timings as JSON."""
    from src.data.cache import load_data

    cfg = json.loads(cfg_json)
    cache = Path(cfg.pop("_cache_dir"))
    t = time.perf_counter()
    data = load_data(cfg, cache_dir=cache, progress=lambda m: print(m, file=sys.stderr, flush=True))
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"preprocess_s": round(seconds, 1), "peak_rss_gib": round(peak / 2**30, 2),
                      "events": int(len(data.events["item"])),
                      "samples": {s: data.size(s) for s in data.splits},
                      "cache_file_gib": round(sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
                                              / 2**30, 2)}))


TAOBAO_CFG = {"name": "taobao_scale", "source": "taobao", "file": "UserBehavior.csv", "behaviors": ["pv"],
              "window": {"start": 1511539200, "end": 1512316800}, "max_len": 50, "min_history": 1,
              "split": {"valid": 1, "test": 1}, "samples_per_user": 20,
              "negatives": {"sampling": "popularity", "seed": 0}, "chunk_rows": 5_000_000, "seed": 0}


def _child(cfg: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", "import sys; from src.data.scale import _measure; "
                          "_measure(sys.argv[1])", json.dumps(cfg)], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"preprocessing failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _events_beside_taobao(tmp: Path, rows: int, gen_s: float) -> dict:
    """The Taobao rows through both loaders: UserBehavior.csv (no header) and log.csv (the same rows under a
    header) read by data=events with all rows kept (no behaviour or window filter)."""
    log = tmp / "log.csv"
    with open(log, "w") as out, open(tmp / "UserBehavior.csv") as src:
        out.write("user_id,item_id,category_id,behavior,timestamp\n")
        shutil.copyfileobj(src, out, 1 << 24)
    events = {**{k: v for k, v in TAOBAO_CFG.items() if k not in ("file", "behaviors", "window")},
              "name": "events_scale", "source": "events", "path": str(log), "format": "csv", "time_format": "s",
              "columns": {"user": "user_id", "item": "item_id", "time": "timestamp", "category": "category_id"},
              "items": {"path": None, "columns": {"item": "item_id", "category": "category"}},
              "protocol": "din", "chunk_rows": 1_000_000, "_cache_dir": str(tmp / "cache-events")}
    taobao = {**TAOBAO_CFG, "path": str(tmp), "_cache_dir": str(tmp / "cache-taobao")}
    result = {"source": "events", "rows": rows, "file_gib": round(log.stat().st_size / 2**30, 2),
              "generate_s": round(gen_s, 1), "events": _child(events), "taobao": _child(taobao)}
    e, t = result["events"], result["taobao"]
    result["ratio_events_to_taobao"] = {"preprocess_s": round(e["preprocess_s"] / t["preprocess_s"], 2),
                                        "peak_rss": round(e["peak_rss_gib"] / max(t["peak_rss_gib"], 1e-9), 2)}
    return result


def run_scale_benchmark(source: str, rows: int, workdir: Path | None = None, keep: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"dil-scale-{source}-", dir=workdir))
    try:
        t = time.perf_counter()
        print(f"generating {rows:,} {source} rows in {tmp}", flush=True)
        if source in ("taobao", "events"):
            generate_taobao(tmp / "UserBehavior.csv", rows)
            cfg = {**TAOBAO_CFG, "path": str(tmp)}
        else:
            generate_amazon(tmp, rows)
            cfg = {"name": "amazon_scale", "source": "amazon", "path": str(tmp), "category": "Books",
                   "protocol": "din", "max_len": 100, "min_history": 1, "split": {"valid": 1, "test": 1},
                   "negatives": {"sampling": "uniform", "seed": 0}, "seed": 0}
        gen_s = time.perf_counter() - t
        if source == "events":
            result = _events_beside_taobao(tmp, rows, gen_s)
        else:
            size = sum(p.stat().st_size for p in tmp.iterdir() if p.is_file())
            result = {"source": source, "rows": rows, "file_gib": round(size / 2**30, 2),
                      "generate_s": round(gen_s, 1), **_child({**cfg, "_cache_dir": str(tmp / "cache")})}
        print(json.dumps(result), flush=True)
        return result
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
