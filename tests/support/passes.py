"""The test suite's passes, each run whatever the others did, with one summary line per pass.

    python -m tests.support.passes [pytest arguments ...]          (make test; ARGS are the pytest arguments)

1. tensorflow: the whole suite (tests/), slow end-to-end tests included, but the Ray tests, on two
   pytest-xdist workers;
2. jax: the layer and model tests again on the JAX backend (KERAS_BACKEND=jax), on two workers;
3. ray: the Ray launcher's tests (tests/cluster/), in a loopback-only network namespace (Ray binds
   beyond loopback anywhere else; src/tools/netns.py), with a PostgreSQL server started inside it
   and Ray's usage reporting off.

Every pass runs even when an earlier one has failures. The exit status is 0 only when all
passed. Counts come from each pass's JUnit XML report, not from its terminal output. Each pass
ends with its 15 slowest tests.

Why the passes run as they do (the measurements: docs/benchmarks.md, "Test passes"):
- the TensorFlow pass on two pytest-xdist workers: its tests leave a core idle much of the time
  (TensorFlow trains on one intra-op thread; end-to-end tests wait on servers and child processes).
  Each worker takes the next test when it frees (`--dist load --maxschedchunk 1`), in the order
  tests/conftest.py sets, the minutes-long tests first, so that both workers end together;
- the JAX pass's time is mostly XLA compiling each test's model: it compiles with LLVM's optimisation
  off (`--xla_backend_optimization_level=0`: the same XLA programs, turned into machine code with less
  optimisation; nothing of it is timed) and keeps a compilation cache of its own for the pass; with
  less to optimise, XLA leaves a core free for a second worker. The TensorFlow pass's tests that run
  JAX in processes of their own use the same flag;
- the Ray pass runs after the others: beside them it gains nothing on a machine with no core to spare.
`make test ARGS="-n 0"` runs every pass one test at a time.
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

# XLA turns its programs into machine code with LLVM's optimisation off (see the docstring): the JAX pass's
# models, and in the TensorFlow pass the tests that run JAX in a process of their own (the JAX run and its
# reproduction, the device check) and the XLA run on TensorFlow
XLA_QUICK = "--xla_backend_optimization_level=0"

PASSES = (  # (name, environment, test paths and options, in a loopback-only network namespace); in the
    # environment, {tmp} is the passes' temporary folder and XLA_FLAGS adds to the caller's
    ("tensorflow", {"KERAS_BACKEND": "tensorflow", "XLA_FLAGS": XLA_QUICK},
     ["tests", "--ignore=tests/cluster", "-n", "2", "--dist", "load", "--maxschedchunk", "1"], False),
    ("jax", {"KERAS_BACKEND": "jax", "XLA_FLAGS": XLA_QUICK,
             "JAX_COMPILATION_CACHE_DIR": "{tmp}/jax-cache", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"},
     ["tests/layers", "tests/models", "-n", "2"], False),
    # DIL_TEST_PG_URL names a server outside the namespace: the tests start their own inside it
    ("ray", {"KERAS_BACKEND": "tensorflow", "RAY_USAGE_STATS_ENABLED": "0", "DIL_TEST_PG_URL": ""},
     ["tests/cluster"], True),
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


def environment(env: dict, tmp: Path) -> dict:
    """The caller's environment with a pass's: {tmp} filled in, XLA_FLAGS after the caller's own."""
    out = {**os.environ, **{k: v.format(tmp=tmp) for k, v in env.items()}}
    if "XLA_FLAGS" in env and os.environ.get("XLA_FLAGS"):
        out["XLA_FLAGS"] = f"{os.environ['XLA_FLAGS']} {out['XLA_FLAGS']}"
    return out


def run_pass(name: str, env: dict, paths: list[str], isolated: bool, args: list[str], tmp: Path) -> dict:
    """One pytest pass; its counts, exit status and wall time."""
    report = tmp / f"{name}.xml"
    if not any(a.startswith("--durations") for a in args):
        args = ["--durations=15", *args]  # where the time goes, at the end of each pass
    print(f"== {name} pass: pytest {' '.join(paths + args)}", flush=True)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", *paths, *args, f"--junitxml={report}"]
    rc = subprocess.call(netns.wrap(cmd) if isolated else cmd, cwd=ROOT, env=environment(env, tmp))
    return {"name": name, "rc": rc, "seconds": time.perf_counter() - t, **counts(report)}


def line(name: str, c: dict) -> str:
    """'name: N passed, N failed' (then ', N skipped'): the closing form that CI reads."""
    return f"{name}: {c['passed']} passed, {c['failed']} failed" + (f", {c['skipped']} skipped" if c["skipped"] else "")


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_pass(*spec, args, Path(tmp)) for spec in PASSES]
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
