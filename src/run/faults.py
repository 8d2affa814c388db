"""Named points in a cell's life where the interrupt tests stop it, deterministically (no timing guesses).

With DIL_FAULT=POINT and DIL_FAULT_DIR=DIR in the environment, the first process to reach POINT creates
DIR/POINT (holding its pid) and waits there until a signal stops it (or ten minutes pass); every other
process, and every later arrival, goes on. Without DIL_FAULT a point does nothing.

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


def point(name: str) -> None:
    """Pauses here if this is the point DIL_FAULT names (see the module docstring)."""
    if os.environ.get("DIL_FAULT") != name:
        return
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}; the points are {', '.join(POINTS)}")
    from src.run import interrupts

    path = os.path.join(os.environ["DIL_FAULT_DIR"], name)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # another process (or this one, earlier) stopped here already
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    deadline = time.time() + WAIT_S
    while time.time() < deadline and not interrupts.pending():
        time.sleep(0.05)
