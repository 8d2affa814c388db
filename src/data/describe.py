"""Describe a data set: `python -m src.data.describe data=<name> [data.key=value ...]`.

Prints users, items, categories, samples and positive rate per split, and the
distribution of history lengths, building (and caching) the data set if needed.
"""

from __future__ import annotations

import sys

import numpy as np

from src.data.dataset import SPLITS, DataError, SequenceData, filtering_lines


def summary(data: SequenceData) -> dict:
    out = {
        "name": data.name,
        "users": data.meta.get("users", data.vocab["user"] - 2),
        "items": data.meta.get("items", data.vocab["item"] - 2),
        "categories": data.meta.get("cats", data.vocab["cat"] - 2),
        "events": int(len(data.events["item"])),
        "impressions": data.meta.get("impressions"),  # a log with row kinds: its events are its behaviours
        "max_len": data.max_len,
        "features": [{k: f[k] for k in ("name", "of", "kind", "size")} for f in data.features],
        "splits": {},
    }
    for split in SPLITS:
        s = data.splits[split]
        n = len(s["label"])
        lengths = s["hist_len"]
        out["splits"][split] = {
            "samples": n,
            "positive_rate": round(float(s["label"].mean()), 4) if n else None,
            "history_length": (
                {q: int(np.percentile(lengths, p)) for q, p in
                 (("min", 0), ("p25", 25), ("median", 50), ("p75", 75), ("max", 100))}
                | {"mean": round(float(lengths.mean()), 2), "full": round(float((lengths == data.max_len).mean()), 4)}
                if n else None
            ),
        }
    return out


def render(info: dict, data: SequenceData) -> str:
    events = f"{info['events']:,} events"
    if info.get("impressions") is not None:
        events = f"{info['events']:,} behaviours and {info['impressions']:,} impressions"
    lines = [f"data set {info['name']}: {info['users']:,} users, {info['items']:,} items, "
             f"{info['categories']:,} categories, {events}, histories up to {info['max_len']}"]
    lines.append(f"{'split':<6} {'samples':>10} {'positive':>9} {'hist min':>8} {'p25':>5} {'median':>6} "
                 f"{'p75':>5} {'max':>5} {'mean':>6} {'at T':>6}")
    for split, s in info["splits"].items():
        h = s["history_length"]
        if h is None:
            lines.append(f"{split:<6} {0:>10}")
            continue
        lines.append(f"{split:<6} {s['samples']:>10,} {s['positive_rate']:>9.3f} {h['min']:>8} {h['p25']:>5} "
                     f"{h['median']:>6} {h['p75']:>5} {h['max']:>5} {h['mean']:>6.1f} {h['full']:>6.1%}")
    filtering = filtering_lines(data.meta)
    if filtering:
        lines += ["filtering (- dropped):", *filtering]
    if info["features"]:
        lines.append("side features (data.features; the model sees each):")
        for f in info["features"]:
            coded = (f"{f['size'] - 2:,} values seen in training (+ padding, unseen)" if f["kind"] == "categorical"
                     else "standardised by the training period")
            where = {"item": "joins each item's embedding", "user": "joins the MLP's input",
                     "event": "joins the MLP's input"}[f["of"]]
            lines.append(f"  {f['name']:<12} {f['of']:<5} {f['kind']:<11} {coded}; {where}")
    lengths = data.splits["train"]["hist_len"]
    if len(lengths):
        edges = np.unique(np.linspace(0, data.max_len, 11).astype(int))
        counts, _ = np.histogram(lengths, bins=np.r_[edges[:-1], data.max_len + 1])
        lines.append("train history lengths:")
        top = max(counts.max(), 1)
        for lo, hi, c in zip(edges[:-1], np.r_[edges[1:-1], data.max_len + 1], counts):
            lines.append(f"  {lo:>4}-{hi - 1:<4} {'#' * int(40 * c / top):<40} {c:,}")
    return "\n".join(lines)


def main(argv=None):
    from src.config.validate import ConfigError, composed
    from src.data import load_data

    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = composed(argv)  # refused as `python -m src.train` refuses it, before any file is read or cached
        data = load_data(cfg.data, progress=lambda m: print(m, file=sys.stderr))
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(render(summary(data), data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
