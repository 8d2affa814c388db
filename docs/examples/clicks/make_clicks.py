"""Writes the example click log of docs/your-data.md (clicks.csv, items.csv): 300 users, 400 items in 16
categories; each user prefers one category, and clicks its items more often. Deterministic (seed 7).

    python docs/examples/clicks/make_clicks.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def main(out: Path = HERE) -> None:
    rng = np.random.default_rng(7)
    items = pd.DataFrame({"item_id": [f"it{k:04d}" for k in range(400)],
                          "category": [f"cat{k % 16:02d}" for k in range(400)]})
    rows = []
    for u in range(300):
        fav = rng.integers(0, 16)
        t = 1_700_000_000 + int(rng.integers(0, 86400 * 30))
        for _ in range(int(rng.integers(8, 30))):
            k = int(rng.integers(0, 400)) if rng.random() < 0.5 else int(fav + 16 * rng.integers(0, 25))
            clicked = int(rng.random() < (0.6 if k % 16 == fav else 0.15))
            t += int(rng.integers(30, 7200))
            when = pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
            rows.append((f"user{u:03d}", f"it{k:04d}", when, clicked))
    pd.DataFrame(rows, columns=["user_id", "item_id", "time", "clicked"]).to_csv(out / "clicks.csv", index=False)
    items.to_csv(out / "items.csv", index=False)


if __name__ == "__main__":
    main()
