"""Writes the example click log of docs/your-data.md (clicks.csv, items.csv, users.csv): 300 users, 400 items
in 16 categories; each user prefers one category, and clicks its items more often. Items have a brand and a
price, users an age band, each impression the device it was shown on. Deterministic (seeds 7 and 8).

    python docs/examples/clicks/make_clicks.py
    python docs/examples/clicks/make_clicks.py --users 10000 --items 12000 --out /tmp/beauty

The second writes a log of about Amazon Beauty's size (about 190,000 rows, 12,000 items), the same shape
otherwise; `python -m src.bench cache` builds its cache with the side features switched on and off.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def main(out: Path = HERE, n_users: int = 300, n_items: int = 400) -> None:
    rng = np.random.default_rng(7)
    side = np.random.default_rng(8)  # the side fields' own stream: the clicks are those of the log without them
    items = pd.DataFrame({"item_id": [f"it{k:04d}" for k in range(n_items)],
                          "category": [f"cat{k % 16:02d}" for k in range(n_items)],
                          "brand": [f"brand{k % 7}" for k in range(n_items)],
                          "price": np.round(side.lognormal(3, 0.5, n_items), 2)})
    users = pd.DataFrame({"user_id": [f"user{u:03d}" for u in range(n_users)],
                          "age_band": side.choice(["18-24", "25-34", "35-49", "50+"], n_users)})
    rows = []
    for u in range(n_users):
        fav = rng.integers(0, 16)
        t = 1_700_000_000 + int(rng.integers(0, 86400 * 30))
        for _ in range(int(rng.integers(8, 30))):
            k = int(rng.integers(0, n_items)) if rng.random() < 0.5 else int(fav + 16 * rng.integers(0, n_items // 16))
            clicked = int(rng.random() < (0.6 if k % 16 == fav else 0.15))
            t += int(rng.integers(30, 7200))
            when = pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append((f"user{u:03d}", f"it{k:04d}", when, clicked))
    log = pd.DataFrame(rows, columns=["user_id", "item_id", "time", "clicked"])
    log["device"] = side.choice(["mobile", "desktop"], len(log), p=[0.7, 0.3])
    log.to_csv(out / "clicks.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    users.to_csv(out / "users.csv", index=False)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--items", type=int, default=400)
    p.add_argument("--out", type=Path, default=HERE)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    main(a.out, a.users, a.items)
