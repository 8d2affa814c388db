"""`python -m src.bench` measures against a yardstick of its own (src/tools/yardstick.py): it runs in a copy of
the project that has nothing beside it."""

import json
import shutil
import subprocess
import sys

import pytest

from src.config.paths import ROOT


@pytest.mark.slow
def test_the_model_bench_runs_in_a_copy_of_the_project_with_nothing_beside_it(tmp_path):
    copy = tmp_path / "alone" / "deep-interest-lab"
    for part in ("src", "conf"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-m", "src.bench", "--models", "din,dien", "--samples", "512",
                          "--rounds", "1", "--history", "8", "--items", "100", "--batch", "128"],
                         cwd=copy, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    summaries = {r["model"]: r["summary"] for r in rows if "summary" in r}
    assert set(summaries) == {"din", "dien"}
    assert all(s["baseline"]["median"] > 0 and s["ratio"]["median"] > 0 for s in summaries.values()), summaries
    assert not (copy.parent / "shared").exists()
