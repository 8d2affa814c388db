"""Where a command's CPU time goes: one line per kind of Python process it started.

    python -m tests.support.cpu [--top N] -- COMMAND [ARGS ...]
    e.g.  python -m tests.support.cpu -- .venv/bin/python -m pytest -n 2 tests/sweep/test_sweep.py

Runs COMMAND with a site hook first on PYTHONPATH (a `sitecustomize` module in a temporary folder,
which then runs any `sitecustomize` that was there before): every Python process started under it
records, as it exits, what it ran, its user and system CPU seconds and its wall time. The table
groups them by what they ran (`-m module`, the script, a `-c` program, pytest-xdist's workers) with
the number of processes, their CPU seconds, their share of the command's CPU, and their longest and
total wall time; below it, the command's own CPU as the operating system counts it (every process it
waited for, Python or not). A process killed by a signal records nothing (its CPU is in that last
figure only), nor does one that ends by os._exit (a forked multiprocessing child; spawned ones record)
or was started with PYTHONPATH cleared or with `python -S` / `-I`.

The exit status is the command's.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOG_ENV = "DIL_CPU_LOG"
XDIST_WORKER = "import sys;exec(eval(sys.stdin.readline()))"  # pytest-xdist's workers are execnet gateways: -c this

# the site hook: written into the temporary folder as sitecustomize.py
HOOK = '''
import atexit, json, os, sys, time

_started = time.time()
_here = os.path.dirname(os.path.abspath(__file__))


def _record():
    t = os.times()
    argv = list(getattr(sys, "orig_argv", sys.argv))[1:]
    row = {"pid": os.getpid(), "argv": argv[:8], "user": t.user, "system": t.system, "wall": time.time() - _started}
    try:
        with open(os.environ["DIL_CPU_LOG"], "a") as f:
            f.write(json.dumps(row) + "\\n")
    except OSError as e:
        print(f"tests.support.cpu: could not record process {os.getpid()}: {e}", file=sys.stderr)


if os.environ.get("DIL_CPU_LOG"):
    atexit.register(_record)

# the sitecustomize this one shadows, if any, runs as it would have
for _d in sys.path:
    _p = os.path.join(_d or ".", "sitecustomize.py")
    if os.path.abspath(_d or ".") != _here and os.path.isfile(_p):
        with open(_p) as _f:
            exec(compile(_f.read(), _p, "exec"), {"__name__": "sitecustomize", "__file__": _p})
        break
'''


def what(row: dict) -> str:
    """What a recorded process ran, as the table groups it."""
    argv, i = row["argv"], 0
    if argv[-2:] == ["-c", XDIST_WORKER]:
        return "pytest-xdist worker"
    while i < len(argv):  # the interpreter's options, then what it runs
        a = argv[i]
        if a == "-m" and i + 1 < len(argv):
            return "-m " + argv[i + 1]
        if a == "-c" and i + 1 < len(argv):
            if argv[i + 1].startswith("from multiprocessing.spawn import"):
                return "multiprocessing child (spawn)"
            code = " ".join(argv[i + 1].split())
            return "-c " + (code[:40] + "..." if len(code) > 40 else code)
        if a in ("-W", "-X"):
            i += 2
        elif a.startswith("-") and a != "-":
            i += 1
        else:
            return Path(a).name
    return "(interactive)"


def table(rows: list[dict], command_cpu: float, top: int) -> str:
    """The per-kind lines, the heaviest first, then what was not recorded."""
    groups = collections.defaultdict(list)
    for r in rows:
        groups[what(r)].append(r)
    lines = [f"{'CPU s':>8} {'share':>6} {'procs':>5} {'wall s max':>10} {'wall s sum':>10}  what"]
    ranked = sorted(groups.items(), key=lambda kv: -sum(r["user"] + r["system"] for r in kv[1]))
    for name, rs in ranked[:top]:
        cpu = sum(r["user"] + r["system"] for r in rs)
        share = f"{100 * cpu / command_cpu:5.1f}%" if command_cpu > 0 else "     -"
        lines.append(f"{cpu:8.1f} {share:>6} {len(rs):5d} {max(r['wall'] for r in rs):10.1f} "
                     f"{sum(r['wall'] for r in rs):10.1f}  {name}")
    if len(ranked) > top:
        rest = [r for _, rs in ranked[top:] for r in rs]
        lines.append(f"{sum(r['user'] + r['system'] for r in rest):8.1f} {'':>6} {len(rest):5d} "
                     f"{'':>10} {'':>10}  ({len(ranked) - top} other kinds)")
    recorded = sum(r["user"] + r["system"] for r in rows)
    lines.append(f"python processes recorded: {len(rows)}, {recorded:.1f} CPU s; the command as the system "
                 f"counts it: {command_cpu:.1f} CPU s (the difference: processes that are not Python, or "
                 f"were killed, or did not take the hook)")
    return "\n".join(lines)


def run(command: list[str]) -> tuple[int, list[dict], float, float]:
    """Runs the command under the hook: its exit status, the recorded processes, its CPU and wall seconds."""
    with tempfile.TemporaryDirectory(prefix="dil-cpu-") as tmp:
        (Path(tmp) / "sitecustomize.py").write_text(HOOK)
        log = Path(tmp) / "processes.jsonl"
        env = {**os.environ, LOG_ENV: str(log),
               "PYTHONPATH": os.pathsep.join(p for p in (tmp, os.environ.get("PYTHONPATH")) if p)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        try:
            rc = subprocess.call(command, env=env)
        except FileNotFoundError:
            raise SystemExit(f"tests.support.cpu: no such command: {command[0]}") from None
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rc, rows, cpu, wall


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.support.cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--top", type=int, default=20, help="kinds of process shown (default 20; the rest in one line)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command given: python -m tests.support.cpu -- COMMAND [ARGS ...]")
    rc, rows, cpu, wall = run(command)
    print(f"\n== CPU by process kind: {' '.join(command)} (exit {rc}, {wall:.1f} s wall, load average "
          f"{os.getloadavg()[0]:.2f} at the end)")
    print(table(rows, cpu, a.top), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
