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


def test_side_feature_combinations_share_the_cache():
    """`python -m src.bench cache` on the example log at its shipped size: four on/off combinations of two side
    features cost the cache what the one with both on costs, where full copies would cost about four times."""
    from src.tools.bench import main

    out = main(["cache", "--users", "300", "--items", "400"])
    assert out["combinations"] == 4 and out["rows"] == 5618
    assert out["shared_over_one"] < 1.05, out
    assert out["full_copies_over_one"] > 3, out
