"""Named points in a cell's life where the interrupt tests stop it, deterministically (no timing guesses).

With DIL_FAULT=POINT and DIL_FAULT_DIR=DIR in the environment, the first process to reach POINT creates
DIR/POINT (holding its pid) and waits there until a signal stops it (or ten minutes pass); every other
process, and every later arrival, goes on. DIL_FAULT may name several points, comma-separated: each
pauses the first process to reach it, and a process pauses once at most, so that a sweep's workers wait
at as many points at once (one stop then covers them all). Without DIL_FAULT a point does nothing.

    before_run        the run's data and model are ready; no MLflow run exists yet
    in_run_creation   the run exists, its ending code not yet entered (interrupts are held here)
    after_params      the config, params and data set are logged
    mid_epoch         the first epoch's second batch
    after_test        the test metrics are computed, not yet logged
    in_artifacts      between an epoch's attention arrays and its picture
    after_run_end     the run ended FINISHED; the study does not know yet
"""

from __future__ import annotations

import os
import time

POINTS = ("before_run", "in_run_creation", "after_params", "mid_epoch", "after_test", "in_artifacts",
          "after_run_end")
WAIT_S = 600


_paused = False  # whether this process has paused at a point already (it pauses once at most)


def named() -> list[str]:
    """The points DIL_FAULT names, checked against POINTS."""
    names = [n for n in os.environ.get("DIL_FAULT", "").split(",") if n]
    unknown = [n for n in names if n not in POINTS]
    if unknown:
        raise ValueError(f"unknown fault point(s) {', '.join(map(repr, unknown))}; the points are {', '.join(POINTS)}")
    return names


def point(name: str) -> None:
    """Pauses here if DIL_FAULT names this point (see the module docstring)."""
    global _paused
    if _paused or name not in named():
        return
    from src.run import interrupts

    path = os.path.join(os.environ["DIL_FAULT_DIR"], name)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # another process (or this one, earlier) stopped here already
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    _paused = True
    deadline = time.time() + WAIT_S
    while time.time() < deadline and not interrupts.pending():
        time.sleep(0.05)
