"""python -m tests.support.cpu: a command's CPU, grouped by the Python processes it started."""

import subprocess
import sys

from src.config.paths import ROOT

# a parent that starts two children running `-m` and one running a script, each burning CPU it measures;
# each child prints its own CPU seconds as the OS counts them, to compare with what the tool recorded
BURN = "import os, time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n" \
       "print('burnt', sum(os.times()[:2]))\n"
PARENT = """
import subprocess, sys
for _ in range(2):
    subprocess.run([sys.executable, "-m", "burn_module"], check=True)
subprocess.run([sys.executable, "burn_script.py"], check=True)
"""


def test_the_table_groups_processes_by_what_they_ran_and_counts_their_cpu(tmp_path):
    (tmp_path / "burn_module.py").write_text(BURN.format(s=0.4))
    (tmp_path / "burn_script.py").write_text(BURN.format(s=0.6))
    (tmp_path / "parent.py").write_text(PARENT)
    out = subprocess.run([sys.executable, "-m", "tests.support.cpu", "--", sys.executable, "parent.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    burnt = [float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("burnt")]
    assert len(burnt) == 3
    rows = {line.split("  ")[-1].strip(): line.split() for line in out.stdout.splitlines()
            if line.endswith(("burn_module", "burn_script.py", "parent.py"))}
    assert set(rows) == {"-m burn_module", "burn_script.py", "parent.py"}, out.stdout
    assert rows["-m burn_module"][2] == "2" and rows["burn_script.py"][2] == "1" and rows["parent.py"][2] == "1"
    # what each group recorded is what its processes counted of themselves (to the printed tenth)
    assert abs(float(rows["-m burn_module"][0]) - sum(burnt[:2])) <= 0.11, (burnt, out.stdout)
    assert abs(float(rows["burn_script.py"][0]) - burnt[2]) <= 0.11, (burnt, out.stdout)
    assert "python processes recorded: 4," in out.stdout
    total = float(out.stdout.split("the command as the system counts it: ")[1].split()[0])
    assert total >= sum(burnt) - 0.1


def test_the_exit_status_is_the_commands():
    out = subprocess.run([sys.executable, "-m", "tests.support.cpu", "--", sys.executable, "-c", "raise SystemExit(3)"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    assert "(exit 3," in out.stdout and "-c raise SystemExit(3)" in out.stdout


def test_pytest_xdist_workers_and_multiprocessing_children_are_named(tmp_path):
    (tmp_path / "test_spawn.py").write_text(
        "import multiprocessing\n\n\ndef test_a_spawned_child():\n"
        "    ctx = multiprocessing.get_context('spawn')\n"
        "    p = ctx.Process(target=print)\n    p.start()\n    p.join()\n    assert p.exitcode == 0\n\n\n"
        "def test_another():\n    pass\n")
    out = subprocess.run([sys.executable, "-m", "tests.support.cpu", "--", sys.executable, "-m", "pytest", "-q",
                          "-n", "2", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    procs = {line.split("  ")[-1].strip(): int(line.split()[2]) for line in out.stdout.splitlines()
             if line.endswith(("worker", "(spawn)", "-m pytest"))}
    assert procs == {"pytest-xdist worker": 2, "multiprocessing child (spawn)": 1, "-m pytest": 1}, out.stdout
