"""The test suite's passes, each run whatever the others did, with one summary line per pass.

    python -m src.tools.passes [pytest arguments ...]          (make test; ARGS are the pytest arguments)

1. tensorflow: the whole suite (tests/), slow end-to-end tests included, but the Ray tests, on two
   pytest-xdist workers;
2. jax: the layer and model tests again on the JAX backend (KERAS_BACKEND=jax);
3. ray: the Ray launcher's tests (tests/cluster/), in a loopback-only network namespace (Ray binds
   beyond loopback anywhere else; src/tools/netns.py), with a PostgreSQL server started inside it
   and Ray's usage reporting off. It runs beside the other two, from the start: its three tests
   spend most of their time waiting on Ray nodes, heartbeats and worker processes. Its output goes
   to a file and is printed when it and the passes on the terminal have ended.

Every pass runs even when another has failures. The exit status is 0 only when all passed.
Counts come from each pass's JUnit XML report, not from its terminal output. Each pass ends
with its 15 slowest tests.

Two workers for the TensorFlow pass, measured on this project's 2-core machine: its tests
leave a core idle most of the time (TensorFlow trains on one intra-op thread; the end-to-end
tests wait on servers, heartbeats and child processes), so two workers ran its 335 tests in
22 min against 37 to 47 min one after another (1.6 cores busy on average). Each worker takes
the next test when it frees (`--dist load --maxschedchunk 1`), in the order tests/conftest.py
sets: the minutes-long tests first, the short ones last, so that both workers end together.
The JAX pass stays one after another: there XLA compiles on every core, and two workers made
it slower (4:44 against 3:01). `make test ARGS="-n 0"` runs every pass one test at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from src.config.paths import ROOT
from src.tools import netns

PASSES = (  # (name, environment, test paths and options, in a loopback-only network namespace, beside the others)
    ("tensorflow", {"KERAS_BACKEND": "tensorflow"},
     ["tests", "--ignore=tests/cluster", "-n", "2", "--dist", "load", "--maxschedchunk", "1"], False, False),
    ("jax", {"KERAS_BACKEND": "jax"}, ["tests/layers", "tests/models"], False, False),
    # DIL_TEST_PG_URL names a server outside the namespace: the tests start their own inside it
    ("ray", {"KERAS_BACKEND": "tensorflow", "RAY_USAGE_STATS_ENABLED": "0", "DIL_TEST_PG_URL": ""},
     ["tests/cluster"], True, True),
)


def counts(report: Path) -> dict:
    """{"passed", "failed", "skipped"} from a JUnit XML report (errors count as failed); all 0 if none."""
    if not report.is_file():
        return {"passed": 0, "failed": 0, "skipped": 0}
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = total["failures"] + total["errors"]
    return {"passed": total["tests"] - failed - total["skipped"], "failed": failed, "skipped": total["skipped"]}


class Pass:
    """One pytest pass, started: on the terminal, or (beside the others) into a log file printed when it ends."""

    def __init__(self, name: str, env: dict, paths: list[str], isolated: bool, beside: bool, args: list[str],
                 tmp: Path):
        self.name, self.beside, self.report = name, beside, tmp / f"{name}.xml"
        if not any(a.startswith("--durations") for a in args):
            args = ["--durations=15", *args]  # where the time goes, at the end of each pass
        self.title = f"== {name} pass: pytest {' '.join(paths + args)}"
        cmd = [sys.executable, "-m", "pytest", *paths, *args, f"--junitxml={self.report}"]
        if beside:
            print(f"{self.title}\n   (beside the other passes; its output follows when it ends)", flush=True)
            self.log = open(tmp / f"{name}.log", "w+")
        else:
            print(self.title, flush=True)
            self.log = None
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(netns.wrap(cmd) if isolated else cmd, cwd=ROOT, env={**os.environ, **env},
                                     stdout=self.log, stderr=subprocess.STDOUT if beside else None)

    def finish(self) -> dict:
        """Waits for the pass (printing a log kept aside); its counts, exit status and wall time."""
        rc = self.proc.wait()
        seconds = time.perf_counter() - self.t0
        if self.log is not None:
            self.log.seek(0)
            print(f"{self.title}   (ran beside the other passes; ended after {seconds:.0f}s)", flush=True)
            sys.stdout.write(self.log.read())
            sys.stdout.flush()
            self.log.close()
        return {"name": self.name, "rc": rc, "seconds": seconds, **counts(self.report)}


def line(name: str, c: dict) -> str:
    """'name: N passed, N failed' (then ', N skipped'): the closing form that CI reads."""
    return f"{name}: {c['passed']} passed, {c['failed']} failed" + (f", {c['skipped']} skipped" if c["skipped"] else "")


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    with tempfile.TemporaryDirectory() as tmp:
        aside = {spec[0]: Pass(*spec, args, Path(tmp)) for spec in PASSES if spec[4]}
        done = {spec[0]: Pass(*spec, args, Path(tmp)).finish() for spec in PASSES if not spec[4]}
        done.update({name: p.finish() for name, p in aside.items()})
        results = [done[spec[0]] for spec in PASSES]
    print()
    for r in results:
        state = "ok" if r["rc"] == 0 else f"FAILED (pytest exit {r['rc']})"
        print(f"{r['name']} pass: {state} in {r['seconds']:.0f}s", flush=True)
    for r in results:
        print(line(r["name"], r))
    total = {k: sum(r[k] for r in results) for k in ("passed", "failed", "skipped")}
    print(line("total", total), flush=True)
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
