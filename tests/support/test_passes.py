"""`make test`'s passes: every pass runs whatever the others did, one summary line each, and the exit
status says whether all passed; `make system-deps` stops a user who cannot install with one clear line."""

import os
import shutil
import subprocess
import sys

from src.config.paths import ROOT
from tests.support import passes


def write_tests(folder, body):
    folder.mkdir()
    (folder / "test_it.py").write_text(body)
    return str(folder)


def test_the_second_pass_runs_after_a_failing_first_and_the_exit_says_so(tmp_path, monkeypatch, capsys):
    bad = write_tests(tmp_path / "bad", "def test_ok():\n    pass\n\n\ndef test_fails():\n    assert 1 == 2\n")
    good = write_tests(tmp_path / "good", "import pytest\n\n\ndef test_a():\n    pass\n\n\n"
                                          "@pytest.mark.skip(reason='x')\ndef test_b():\n    pass\n")
    monkeypatch.setattr(passes, "PASSES", (("first", {}, [bad], False), ("second", {}, [good], False)))
    code = passes.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "first: 1 passed, 1 failed\n" in out and "second: 1 passed, 0 failed, 1 skipped\n" in out
    assert out.rstrip().splitlines()[-1] == "total: 2 passed, 1 failed, 1 skipped"
    assert "first pass: FAILED (pytest exit 1)" in out and "second pass: ok" in out


def test_a_pass_that_collects_nothing_fails(tmp_path, monkeypatch, capsys):
    empty = write_tests(tmp_path / "empty", "x = 1\n")
    monkeypatch.setattr(passes, "PASSES", (("only", {}, [empty], False),))
    assert passes.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]) == 1
    assert "only: 0 passed, 0 failed" in capsys.readouterr().out


def test_an_isolated_pass_sees_loopback_alone(tmp_path, monkeypatch, capsys):
    # the Ray pass's namespace: this machine's other interfaces are not there (and are, outside it)
    body = "import socket\n\n\ndef test_lo():\n    assert [n for _, n in socket.if_nameindex()] == ['lo']\n"
    only = write_tests(tmp_path / "lo", body)
    monkeypatch.setattr(passes, "PASSES", (("isolated", {}, [only], True), ("open", {}, [only], False)))
    passes.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "isolated: 1 passed, 0 failed" in out
    assert "open: 0 passed, 1 failed" in out  # this machine has more than loopback


def test_system_deps_stops_a_user_who_cannot_install_with_the_command_to_run():
    cmd = ["make", "-s", "--no-print-directory", "system-deps", "SYSTEM_PACKAGES=chromium dil-no-such-package"]
    if os.geteuid() == 0:  # play a user without root: the check must not install anything then
        assert shutil.which("runuser"), "runuser (util-linux) is needed to run this test as root"
        cmd = ["runuser", "-u", "nobody", "--", *cmd]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": "/tmp"})
    assert out.returncode != 0
    lines = [x for x in out.stderr.splitlines() if x.strip() and not x.startswith("make")]
    assert len(lines) == 1, out.stderr
    assert "dil-no-such-package" in lines[0] and "sudo apt-get install -y" in lines[0]
    assert out.stdout == ""


def test_system_deps_finds_what_is_installed():
    out = subprocess.run(["make", "-s", "--no-print-directory", "system-deps", "SYSTEM_PACKAGES=make"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out.stdout + out.stderr


def test_the_junit_counts_match_pytest(tmp_path):
    folder = write_tests(tmp_path / "t", "def test_a():\n    pass\n\n\ndef test_b():\n    raise ValueError\n")
    report = tmp_path / "r.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                    folder, f"--junitxml={report}"], capture_output=True, timeout=120)
    assert passes.counts(report) == {"passed": 1, "failed": 1, "skipped": 0}
    assert passes.counts(tmp_path / "missing.xml") == {"passed": 0, "failed": 0, "skipped": 0}


def test_a_pass_environment_fills_its_folder_and_adds_to_the_callers_xla_flags(tmp_path, monkeypatch, capsys):
    body = ("import os\nfrom pathlib import Path\n\n\ndef test_env():\n"
            "    assert os.environ['XLA_FLAGS'] == '--caller --pass'\n"
            "    assert Path(os.environ['CACHE']).parent.is_dir() and '{' not in os.environ['CACHE']\n")
    folder = write_tests(tmp_path / "env", body)
    # the JAX pass compiles into a cache of its own, in the passes' temporary folder, never the project's
    envs = dict((name, env) for name, env, *_ in passes.PASSES)
    assert envs["jax"]["JAX_COMPILATION_CACHE_DIR"].startswith("{tmp}/")
    # both passes that compile with XLA do so with LLVM's optimisation off
    assert all("--xla_backend_optimization_level=0" in envs[p]["XLA_FLAGS"] for p in ("jax", "tensorflow"))
    monkeypatch.setenv("XLA_FLAGS", "--caller")
    monkeypatch.setattr(passes, "PASSES", (("env", {"XLA_FLAGS": "--pass", "CACHE": "{tmp}/cache"}, [folder], False),))
    assert passes.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]) == 0, capsys.readouterr().out
