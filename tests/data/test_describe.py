"""`python -m src.data.describe` refuses what `python -m src.train` refuses, before any file is read: the same
schema, in one line, no traceback, nothing cached; and a damaged file, a malformed line and a side table's
duplicate id get the same one line from both, while a one-valued feature is said by both."""

import re
import subprocess
import sys
import time

import pytest

from src.config.paths import CACHE_DIR, ROOT
from src.data import describe
from tests.data import test_events

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


def _refused_by_both(args, message, name, started, tmp_path, capsys):
    """describe and train's entry point both refuse `args` with the same one line matching `message`; no cache
    entry of data set `name` was written since `started`, and no run was started."""
    from src.config import compose
    from src.train import run_cli

    lines = []
    for refused in (lambda: describe.main(args), lambda: run_cli(compose(args), args)):
        assert refused() == 2
        out = capsys.readouterr()
        errors = [ln for ln in out.err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and re.search(message, errors[0]) and "Traceback" not in out.err, out.err
        lines.append(errors[0])
    assert lines[0] == lines[1]  # the same line from both
    assert not [p for p in CACHE_DIR.glob(f"{name}-*") if p.stat().st_mtime >= started]
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # no run was started


def _events_args(path, store):
    return ["data=events", f"data.path={path}", "data.cache=true", *store]


@pytest.mark.parametrize("name,damage,message", test_events.DAMAGED,
                         ids=["truncated parquet", "empty parquet", "not parquet", "truncated gzip", "latin-1 text"])
def test_a_damaged_file_is_one_line_naming_it_from_describe_and_from_train_and_nothing_is_cached(
        tmp_path, name, damage, message, new_store, capsys):

    started = time.time()
    (tmp_path / name).write_bytes(damage(test_events._parquet(tmp_path / "good.parquet")))
    args = _events_args(tmp_path / name, new_store)
    _refused_by_both(args, message, "events", started, tmp_path, capsys)


def _clicks_copy(tmp_path, cache: bool = True):
    """The example click log's three files in tmp_path, and the overrides that read them (`cache`: into the
    project's data cache, where a refusal must leave nothing)."""
    import shutil

    src = ROOT / "docs" / "examples" / "clicks"
    for name in ("clicks.csv", "items.csv", "users.csv"):
        shutil.copy(src / name, tmp_path / name)
    return ["data=clicks_example", f"data.cache={str(cache).lower()}", f"data.path={tmp_path / 'clicks.csv'}",
            f"data.items.path={tmp_path / 'items.csv'}", f"data.users.path={tmp_path / 'users.csv'}"]


SIDE_DUPLICATES = [  # (table, a row that repeats the first row's id with another value, the line it lands on)
    ("items.csv", "it0000,cat05,brand3,9.99",
     r"items.csv:402: item 'it0000' is on an earlier row too \(.*items.csv:2\)"),
    ("users.csv", "user000,50+", r"users.csv:302: user 'user000' is on an earlier row too \(.*users.csv:2\)"),
]


@pytest.mark.parametrize("table,row,message", SIDE_DUPLICATES, ids=["item table", "user table"])
def test_a_side_table_id_on_rows_that_differ_is_one_line_from_describe_and_from_train_and_nothing_is_cached(
        tmp_path, table, row, message, new_store, capsys):

    started = time.time()
    args = [*_clicks_copy(tmp_path), *new_store]
    with open(tmp_path / table, "a") as f:
        f.write(row + "\n")
    _refused_by_both(args, message, "clicks_example", started, tmp_path, capsys)


@pytest.mark.slow
def test_a_feature_with_one_value_is_said_by_describe_and_warned_by_a_train_run(tmp_path, new_store, capsys):
    from src.config import compose
    from src.train import run_cli

    users = (tmp_path / "users.csv")
    # not cached: a build that succeeds must not write beside the tests that check a refusal wrote nothing
    args = [*_clicks_copy(tmp_path, cache=False), *new_store, "train.epochs=1"]
    lines = users.read_text().splitlines()
    users.write_text("\n".join([lines[0], *(f"{ln.split(',')[0]},18-24" for ln in lines[1:])]) + "\n")
    said = "feature 'age_band' (of: user) has one value in the training period: it cannot tell samples apart"
    assert describe.main(args) == 0
    assert said in capsys.readouterr().out
    assert run_cli(compose(args), args) == 0
    out = capsys.readouterr()
    assert any(said in ln and "warning:" in ln for ln in (out.out + out.err).splitlines()), out.out[-3000:]


MALFORMED = [b for b in test_events.BAD if b[0] in ("ragged line", "fractional seconds")]


@pytest.mark.parametrize("what,text,over,message", MALFORMED, ids=[b[0] for b in MALFORMED])
def test_a_malformed_line_is_one_line_naming_it_from_describe_and_from_train_and_nothing_is_cached(
        tmp_path, what, text, over, message, new_store, capsys):

    started = time.time()
    (tmp_path / "log.csv").write_text(text)
    args = [*_events_args(tmp_path / "log.csv", new_store), *(f"data.{k}={v}" for k, v in over.items())]
    _refused_by_both(args, message, "events", started, tmp_path, capsys)
