"""Training throughput of the project's DIN and DIEN beside the plain Keras baseline.

    python -m src.bench [--models din,dien] [--rounds 6] [--samples 50000]

Each measurement is a fresh process that trains one epoch to warm up and times the
second, on random data of the baseline's shapes (history 50, embedding 18, batch
256, 50k samples, 20k items). The project is measured twice: fed by its own input
pipeline (as `src.train` runs it) and fed NumPy arrays through `fit` (as the
baseline is), so that the model's own share of the speed-up shows. Rounds
interleave project and baseline, and ratios are taken within a round, so that the
machine's slow and fast phases hit both sides alike; the summary gives median,
min and max of every column.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = ROOT.parent / "shared" / "bench" / "plain_keras_baseline.py"


def bench_config(model: str, dim: int) -> dict:
    """The project's model with the baseline's architecture."""
    cfg = {
        "name": model,
        "embedding": {"item": dim, "cat": 0, "user": 0},
        "attention": {"hidden_units": [36], "activation": "sigmoid", "scale": True, "softmax": True},
        "mlp": {"depth": 2, "width": 200, "taper": 0.4},
        "activation": "relu",
    }
    if model == "dien":
        cfg["evolution"] = {"cell": "augru", "convention": "paper"}
    return cfg


def random_data(samples: int, history: int, items: int, seed: int = 0):
    """The baseline's random data: lengths 1..T, ids 1..items-1, padding after the valid steps."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, history + 1, (samples,))
    hist = rng.integers(1, items, (samples, history))
    hist = hist * (np.arange(history)[None, :] < lengths[:, None])
    target = rng.integers(1, items, (samples,))
    y = rng.integers(0, 2, (samples,)).astype("float32")
    x = {"hist_item": hist.astype("int32"), "target_item": target.astype("int32"),
         "hist_len": lengths.astype("int32")}
    return x, y


def measure_project(model: str, feed: str, history: int, dim: int, batch: int, samples: int,
                    items: int) -> dict:
    """Trains the project's model for two epochs; returns the second epoch's throughput.

    feed "pipeline": the project's input pipeline (shuffled tf.data batches,
    prefetched); feed "numpy": arrays handed to `fit` as the baseline does.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from src.data.pipeline import make_dataset
    from src.determinism import set_determinism
    from src.models import build_model

    set_determinism(0)
    x, y = random_data(samples, history, items)
    m = build_model(bench_config(model, dim), {"item": items}, history)
    m.compile("adam", "binary_crossentropy")
    if feed == "pipeline":
        ds = make_dataset(x, y, batch, shuffle=True, seed=0)
        fit = lambda: m.fit(ds, epochs=1, verbose=0)  # noqa: E731
    else:
        fit = lambda: m.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # noqa: E731
    fit()
    t = time.perf_counter()
    fit()
    dt = time.perf_counter() - t
    return {"impl": f"project_{feed}", "model": model, "samples_per_s": round(samples / dt)}


def _run_json(cmd: list[str]) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{' '.join(cmd)} printed no result:\n{out.stderr[-2000:]}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="din,dien")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--history", type=int, default=50)
    p.add_argument("--dim", type=int, default=18)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--samples", type=int, default=50000)
    p.add_argument("--items", type=int, default=20000)
    p.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE,
                   help="plain Keras baseline script (default: ../shared/bench/plain_keras_baseline.py)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one model in this process
    p.add_argument("--feed", default="pipeline", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    shape = dict(history=a.history, dim=a.dim, batch=a.batch, samples=a.samples, items=a.items)
    if a.one:
        print(json.dumps(measure_project(a.one, a.feed, **shape)))
        return
    shape_args = [f"--{k}={v}" for k, v in shape.items()]
    have_baseline = a.baseline.is_file()
    if not have_baseline:
        print(f"baseline {a.baseline} not found: measuring the project alone", file=sys.stderr)
    summary = {}
    for model in a.models.split(","):
        rows = []
        for r in range(a.rounds):
            row = {"round": r + 1}
            for feed in ("pipeline", "numpy"):
                res = _run_json([sys.executable, "-m", "src.bench", f"--one={model}", f"--feed={feed}",
                                 *shape_args])
                row[f"project_{feed}"] = res["samples_per_s"]
            if have_baseline:
                base = _run_json([sys.executable, str(a.baseline), f"--model={model}", *shape_args])
                row["baseline"] = base["samples_per_s"]
                for feed in ("pipeline", "numpy"):
                    row[f"ratio_{feed}"] = round(row[f"project_{feed}"] / row["baseline"], 3)
            rows.append(row)
            print(json.dumps({"model": model, **row}), flush=True)
        s = {}
        for key in rows[0]:
            if key == "round":
                continue
            vals = [r[key] for r in rows]
            s[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
        summary[model] = s
        print(json.dumps({"model": model, "summary": s}), flush=True)
    return summary


if __name__ == "__main__":
    main()
