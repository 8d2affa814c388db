"""The test suite's passes, each run whatever the others did, with one summary line per pass.

    python -m src.tools.passes [pytest arguments ...]          (make test; ARGS are the pytest arguments)

1. tensorflow: the whole suite (tests/), slow end-to-end tests included, but the Ray tests, on two
   pytest-xdist workers;
2. jax: the layer and model tests again on the JAX backend (KERAS_BACKEND=jax), on two workers;
3. ray: the Ray launcher's tests (tests/cluster/), in a loopback-only network namespace (Ray binds
   beyond loopback anywhere else; src/tools/netns.py), with a PostgreSQL server started inside it
   and Ray's usage reporting off.

Every pass runs even when an earlier one has failures. The exit status is 0 only when all
passed. Counts come from each pass's JUnit XML report, not from its terminal output. Each pass
ends with its 15 slowest tests.

Two workers for the TensorFlow pass, measured on this project's 2-core machine: its tests
leave a core idle much of the time (TensorFlow trains on one intra-op thread; the end-to-end
tests wait on servers, heartbeats and child processes), so two workers ran its 335 tests in
22 min against 37 to 47 min one after another (1.6 cores busy on average). Each worker takes
the next test when it frees (`--dist load --maxschedchunk 1`), in the order tests/conftest.py
sets: the minutes-long tests first, the short ones last, so that both workers end together.
Three workers: once slower (1588 s for the pass, the cores 98% busy, against 1159 to 1263 s
with two in the fresh-clone runs of that code), once faster after the suite was trimmed (339
tests: 687 s against 750 s, 1.64 and 1.58 cores busy, back to back on an idle machine): a
difference within the spread of repeated runs (the same code's fresh-clone pass took 699 s
with two), so two stay until more pairs say otherwise.
The JAX pass's time is mostly XLA compiling each test's model, so it compiles with LLVM's
optimisation off (`--xla_backend_optimization_level=0`: the same XLA programs, fused and laid out
as before, turned into machine code with less optimisation; nothing of it is timed) and keeps what
it compiled in a compilation cache of its own for the pass (a program an earlier test compiled at
the same shapes is loaded, not compiled again). Measured with `KERAS_BACKEND=jax pytest
tests/models` alone on this machine (load under 1.5): 377 s as users compile, 337 s with the
cache, 203 s with both. Compiling at full optimisation, XLA kept both cores busy and two workers
made the pass slower (4:44 against 3:01); with less to optimise it leaves one idle, and two
workers ran the pass (tests/layers and tests/models, both changes in) in 211 s against 322 s one
after another, measured back to back on a quiet machine.
The TensorFlow pass compiles with the same flag: its two tests that run JAX in processes of their
own (a JAX run and its reproduction, the device check) took 198 s and 239 CPU-s with it against
245 s and 330 CPU-s without, run alone one after the other on an idle machine, XLA's cache cold
both times (the flags are part of its key), on a venv whose modules were not yet byte-compiled: both
sides also compiled every module in each of their processes, so the difference is XLA's and the
absolute figures are higher than on the venv `make install` builds.
The Ray pass runs after the others: started beside them, it gained nothing
(its nodes train too, and the machine has no core to spare), all three ending after 1718 s against
1711 s one after another, in two fresh-clone runs of `make test`.
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
