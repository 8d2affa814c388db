"""`python -m src.data.describe` refuses what `python -m src.train` refuses, before any file is read: the same
schema, in one line, no traceback, nothing cached."""

import subprocess
import sys
import time

import pytest

from src.config.paths import CACHE_DIR, ROOT
from src.data import describe

REFUSED = [  # (override on data=clicks_example, what both must name)
    ("+data.columns.usr=reviewer", "data.columns.usr"),  # a key the schema does not have
    ("data.columns.usr=reviewer", "data.columns.usr"),  # a key the config does not have, without +
    ("data.max_len=abc", "data.max_len"),  # a value of the wrong type
    ("data=nosuch", "nosuch"),  # an option the group does not have
]


@pytest.mark.slow
@pytest.mark.parametrize("override,named", REFUSED, ids=[r[0] for r in REFUSED])
def test_describe_refuses_what_train_refuses_in_one_line_and_caches_nothing(override, named, capsys):
    started = time.time()
    args = ["data=clicks_example", "data.cache=true", override]
    train = subprocess.run([sys.executable, "-m", "src.train", *args], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert train.returncode != 0 and named in train.stderr, train.stderr[-2000:]
    assert describe.main(args) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.err and not out.out, out.err
    [line] = out.err.strip().splitlines()
    assert line.startswith("error: ") and named in line, line
    cached = [p for p in CACHE_DIR.glob("clicks_example-*") if p.stat().st_mtime >= started]
    assert not cached, cached
