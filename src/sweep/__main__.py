"""Hyperparameter sweeps: `python -m src.sweep [sweep=NAME] [overrides ...]`.

    python -m src.sweep                                   sweeps/default.yaml (the four questions)
    python -m src.sweep sweep=NAME                        sweeps/NAME.yaml
    python -m src.sweep sweep=none ...                    the command line alone, no sweep file
    python -m src.sweep model=din 'model/activation=choice(sigmoid,dice)' sweep.trials=8

Plain overrides (`data=movielens train.epochs=3`) fix the base config; sweep
expressions (`choice`, `range`, `interval`, `tag(log, ...)`; see src/sweep/space.py)
add or replace search dimensions (`~KEY` drops one of the sweep file's);
`sweep.*` keys set the study: name, metric,
direction, trials, timeout, sampler (tpe, random, grid, fractional), pruner
(median, hyperband, none), seed, seeds, workers, trials_per_gpu, storage, heartbeat, grace,
equivalence, until, race_top, budget, add_seeds, plan, block, launcher (local, ray), ray_address, ray_cpus.

A trial is exactly a `src.train` run, nested in MLflow under the study's parent
run. Running the same study again resumes it until it holds `sweep.trials`
finished (complete or pruned) trials.
"""

from __future__ import annotations

import os
import sys
import time

from src.sweep import SweepError
from src.sweep.definition import DEFAULTS, load


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("study settings (sweep.KEY=VALUE) and their defaults:")
        for k, v in DEFAULTS.items():
            print(f"  sweep.{k}={v!r}")
        return 0
    from src.data import DataError
    from src.run import interrupts
    from src.sweep import driver
    from src.sweep.study import quiet

    quiet()
    sweep = None
    with interrupts.stoppable():
        try:
            sweep = driver.prepare(load(argv))
            t = time.perf_counter()
            code = driver.run(sweep)
        except (SweepError, DataError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (a cluster scheduler's stop)
            what = "SIGTERM" if interrupts.terminated(e) else "Ctrl-C"
            line = driver.stopped(sweep, e) if sweep is not None else \
                f"{interrupts.reason(e)} before the sweep started: nothing was trained"
            print(f"\n{line} ({what})", file=sys.stderr, flush=True)
            return interrupts.exit_code(e)
    print(f"sweep took {time.perf_counter() - t:.0f}s")
    return code


if __name__ == "__main__":
    from src.run.runtime import entry_point

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    entry_point()
    sys.exit(main())
