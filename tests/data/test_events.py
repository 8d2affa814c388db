"""`data=events`: any interaction log, its columns named in the config. The same reviews read as an event log
and as Amazon's files give the same samples; CSV, gzipped TSV and Parquet give the same arrays; bad input
is refused with where and why, and nothing is cached."""

import gzip

import numpy as np
import pandas as pd
import pytest

from src.config import compose
from src.data import DataError, load_data
from src.data.dataset import SPLITS
from tests.data.conftest import amazon_lines, write

BASE = {"max_len": 4, "min_history": 1, "split": {"valid": 1, "test": 1}, "seed": 0, "cache": False,
        "negatives": {"sampling": "uniform", "seed": 0}}


def events_cfg(path, **kw):
    cfg = compose(["data=events", f"data.path={path}"])["data"]
    return {**cfg, **BASE, "name": "ev", **kw}


def reviews():
    """Amazon-format reviews of four users, with equal timestamps (ties are ordered by the item first seen)."""
    rows = []
    for u, seq in {"U1": "abcdeb", "U2": "bcfa", "U3": "a", "U4": "fedc"}.items():
        for t, asin in enumerate(seq):
            rows.append({"reviewerID": u, "asin": asin, "overall": 5.0, "unixReviewTime": 1000 + 10 * (t // 2)})
    meta = [{"asin": a, "categories": [["Electronics", "Cat " + a.upper()]]} for a in "abcdf"]  # e: no meta
    return rows, meta


def same(a, b):
    assert {s: a.size(s) for s in SPLITS} == {s: b.size(s) for s in SPLITS}
    for split in SPLITS:
        assert a.splits[split].keys() == b.splits[split].keys()
        for k in a.splits[split]:
            np.testing.assert_array_equal(a.splits[split][k], b.splits[split][k], err_msg=f"{split}/{k}")
    assert a.events.keys() == b.events.keys()
    for k in a.events:
        np.testing.assert_array_equal(a.events[k], b.events[k], err_msg=f"events/{k}")
    assert a.vocab == b.vocab


@pytest.mark.parametrize("protocol", ["din", "dien"])
def test_reviews_read_as_an_event_log_give_the_samples_the_amazon_loader_gives(tmp_path, protocol):
    rows, meta = reviews()
    amazon = tmp_path / "amazon"
    amazon.mkdir()
    write(amazon / "reviews_Electronics_5.json", amazon_lines(rows))
    write(amazon / "meta_Electronics.json", amazon_lines(meta))
    log = pd.DataFrame({"user": [r["reviewerID"] for r in rows], "asin": [r["asin"] for r in rows],
                        "when": [r["unixReviewTime"] for r in rows]})
    log.to_csv(tmp_path / "log.csv", index=False)
    pd.DataFrame({"asin": [m["asin"] for m in meta], "cat": [m["categories"][0][-1] for m in meta]}).to_csv(
        tmp_path / "items.csv", index=False)
    a = load_data({**BASE, "name": "amz", "source": "amazon", "path": str(amazon), "category": "Electronics",
                   "protocol": protocol})
    e = load_data(events_cfg(tmp_path / "log.csv", protocol=protocol,
                             columns={"user": "user", "item": "asin", "time": "when"},
                             items={"path": str(tmp_path / "items.csv"),
                                    "columns": {"item": "asin", "category": "cat"}}))
    same(a, e)
    assert e.meta["items_without_meta"] == a.meta["items_without_meta"] == 1
    assert e.meta["meta_coverage"] == a.meta["meta_coverage"] and e.meta["warnings"]


def ratings_log():
    """Explicit feedback: ratings with a category column and ISO 8601 times."""
    rng = np.random.default_rng(0)
    n = 240
    user = rng.integers(0, 12, n)
    item = rng.integers(0, 30, n)
    t = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s")
    return pd.DataFrame({"uid": [f"u{u}" for u in user], "iid": item, "genre": [f"g{i % 4}" for i in item],
                         "rating": rng.integers(1, 6, n).astype(float), "ts": t.strftime("%Y-%m-%dT%H:%M:%SZ")})


def test_csv_gzipped_tsv_parquet_and_a_folder_of_parts_give_the_same_arrays(tmp_path):
    df = ratings_log()
    df.to_csv(tmp_path / "log.csv", index=False)
    df.to_csv(tmp_path / "log.tsv.gz", index=False, sep="\t")
    df.to_parquet(tmp_path / "log.parquet", row_group_size=50)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, start in enumerate(range(0, len(df), 100)):
        df.iloc[start:start + 100].to_csv(parts / f"part-{i}.csv", index=False)
    cols = {"user": "uid", "item": "iid", "time": "ts", "category": "genre", "label": "rating"}
    read = {p: load_data(events_cfg(tmp_path / p if p != "parts" else parts, columns=cols, positive_at=4,
                                    chunk_rows=37))
            for p in ("log.csv", "log.tsv.gz", "log.parquet", "parts")}
    first = read["log.csv"]
    for other in ("log.tsv.gz", "log.parquet", "parts"):
        same(first, read[other])
    assert first.meta["time_format"] == "iso" and first.meta["rows"] == len(df)
    labels = np.concatenate([first.splits[s]["label"] for s in SPLITS])
    assert set(labels) == {0.0, 1.0}  # ratings 4 and 5 are clicks; no sampled negatives (explicit labels)
    assert sum(first.size(s) for s in SPLITS) < len(df)  # every user's first rating has no history
    # the same times as integer seconds and milliseconds: the same arrays
    secs = (pd.to_datetime(df["ts"]) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    for unit, values in (("s", secs), ("ms", secs * 1000)):
        df.assign(ts=values).to_csv(tmp_path / f"log-{unit}.csv", index=False)
        same(first, load_data(events_cfg(tmp_path / f"log-{unit}.csv", columns=cols, positive_at=4)))
        assert load_data(events_cfg(tmp_path / f"log-{unit}.csv", columns=cols, positive_at=4)).meta[
            "time_format"] == unit


BAD = [
    ("missing column", "user_id,item_id,ts\nu1,1,5\n", {},
     r"log.csv: no column data.columns.time='timestamp'; the file's columns are \['user_id', 'item_id', 'ts'\]"),
    ("time not parsed", "user_id,item_id,timestamp\nu1,1,5\nu1,2,6\nu2,3,yesterday\n", {"time_format": "s"},
     r"log.csv:4: time 'yesterday' is not an integer; the times read are integer Unix seconds"),
    ("iso not parsed", "user_id,item_id,timestamp\nu1,1,2024-01-01\nu1,2,2024-13-45\n", {"time_format": "iso"},
     r"log.csv:3: time '2024-13-45' is not ISO 8601; the times read are .*ms.*iso"),
    ("empty file", "", {}, r"log.csv: the file is empty"),
    ("header only", "user_id,item_id,timestamp\n", {}, r"log.csv: the log is empty \(no rows\)"),
    ("null user", "user_id,item_id,timestamp\nu1,1,5\n,2,6\n", {},
     r"log.csv:3: no user \(column 'user_id' is empty\)"),
    ("null item", "user_id,item_id,timestamp\nu1,1,5\nu2,,6\n", {}, r"log.csv:3: no item"),
    ("one class", "user_id,item_id,timestamp,y\nu1,1,5,1\nu1,2,6,1\n", {"columns.label": "y"},
     r"every label is 1 \(column 'y'\): a click model needs both classes"),
    ("bad label", "user_id,item_id,timestamp,y\nu1,1,5,1\nu1,2,6,yes\n", {"columns.label": "y"},
     r"log.csv:3: label 'yes' is not 0 or 1"),
    ("ragged line", "user_id,item_id,timestamp\nu1,1,5\nu1,2,6,7,8\n", {},
     r"log.csv:3: line 3 has 5 fields, the header 3$"),
    ("fractional seconds", "user_id,item_id,timestamp\nu1,1,1300000000\nu1,2,1300000000.5\n", {"time_format": "s"},
     r"log.csv:3: time 1300000000.5 is not an integer; the times read are integer Unix seconds"),
    ("unknown kind", "user_id,item_id,timestamp,y,k\nu1,1,5,,b\nu1,2,6,1,i\nu1,3,7,0,view\n",
     {"columns.label": "y", "columns.kind": "k", "kinds": {"impression": "i", "behaviour": "b"}},
     r"log.csv:4: kind 'view' is neither data.kinds.impression='i' nor data.kinds.behaviour='b'"),
    ("kinds without labels", "user_id,item_id,timestamp,k\nu1,1,5,behaviour\n", {"columns.kind": "k"},
     r"data.columns.kind` is set but `data.columns.label` is not"),
    ("no impression", "user_id,item_id,timestamp,y,k\nu1,1,5,,behaviour\nu1,2,6,,behaviour\n",
     {"columns.label": "y", "columns.kind": "k"}, r"log.csv: no row is an impression"),
    ("impressions of one class", "user_id,item_id,timestamp,y,k\nu1,1,5,0,behaviour\nu1,2,6,1,impression\n",
     {"columns.label": "y", "columns.kind": "k"}, r"every label is 1 \(column 'y'\)"),
]


@pytest.mark.parametrize("what,text,over,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_where_and_why_and_nothing_is_cached(tmp_path, what, text, over, message):
    write(tmp_path / "log.csv", text)
    cfg = events_cfg(tmp_path / "log.csv", cache=True)
    for key, value in over.items():
        if key.startswith("columns."):
            cfg["columns"] = {**cfg["columns"], key.split(".")[1]: value}
        else:
            cfg[key] = value
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=message):
        load_data(cfg, cache_dir=cache)
    assert not cache.exists() or not list(cache.iterdir())


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _parquet(path):
    pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["1", "2", "3"], "timestamp": [1, 2, 3]}).to_parquet(path)
    return path.read_bytes()


DAMAGED = [  # (file name, its bytes from a good Parquet file's, the one line)
    ("log.parquet", lambda good: _half(good), r"log.parquet: not a readable Parquet file \(.*\): truncated"),
    ("log.parquet", lambda good: b"", r"log.parquet: the file is empty"),
    ("log.parquet", lambda good: b"user_id,item_id,timestamp\nu1,1,5\n", r"log.parquet: not a readable Parquet file"),
    ("log.csv.gz", lambda good: _half(gzip.compress(b"user_id,item_id,timestamp\n" + "".join(
        f"u{i % 97},{i * 7919 % 10007},{i}\n" for i in range(5000)).encode())),
     r"log.csv.gz: the compressed file cannot be read \(.*\): truncated or damaged"),
    ("log.csv", lambda good: "user_id,item_id,timestamp\nu1,caf\u00e9,5\n".encode("latin-1"),
     r"log.csv: not UTF-8 text: byte e9 at offset \d+ .*save the file as UTF-8"),
]


@pytest.mark.parametrize("name,damage,message", DAMAGED, ids=["truncated parquet", "empty parquet", "not parquet",
                                                              "truncated gzip", "latin-1 text"])
def test_a_damaged_file_is_refused_in_one_line_that_names_it_and_nothing_is_cached(tmp_path, name, damage, message):
    good = _parquet(tmp_path / "good.parquet")
    (tmp_path / "good.parquet").unlink()
    (tmp_path / name).write_bytes(damage(good))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=message) as e:
        load_data(events_cfg(tmp_path / name, cache=True), cache_dir=cache)
    assert "\n" not in str(e.value) and str(tmp_path / name) in str(e.value)
    assert not cache.exists() or not list(cache.iterdir())


def test_a_parquet_value_that_does_not_parse_is_named_by_row_group_and_row(tmp_path):
    df = pd.DataFrame({"user_id": ["u1"] * 6, "item_id": range(6), "timestamp": ["1", "2", "3", "4", "x", "6"]})
    df.to_parquet(tmp_path / "log.parquet", row_group_size=3)
    with pytest.raises(DataError, match=r"log.parquet: row group 1, row 1: time 'x' is not an integer"):
        load_data(events_cfg(tmp_path / "log.parquet", time_format="s"))


def test_an_item_table_that_covers_too_few_items_is_refused_by_amazons_rule(tmp_path):
    write(tmp_path / "log.csv", "user_id,item_id,timestamp\n" + "".join(f"u{i % 3},i{i},{i}\n" for i in range(12)))
    write(tmp_path / "items.csv", "item_id,category\ni0,A\ni1,B\n")
    items = {"path": str(tmp_path / "items.csv"), "columns": {"item": "item_id", "category": "category"}}
    with pytest.raises(DataError, match=r"items.csv has categories for 2 of the 12 items in the log \(16.7%\), below "
                                        r"data.min_meta_coverage=0.5"):
        load_data(events_cfg(tmp_path / "log.csv", items=items))
    write(tmp_path / "items.csv", "item_id,kind\ni0,A\n")
    with pytest.raises(DataError, match=r"no column data.items.columns.category='category'; the file's columns are "
                                        r"\['item_id', 'kind'\]"):
        load_data(events_cfg(tmp_path / "log.csv", items=items))


def test_a_path_with_no_log_says_what_it_looked_for(tmp_path):
    with pytest.raises(DataError, match=r"log not found: .*nowhere"):
        load_data(events_cfg(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"the folder holds no log file \(.csv, .csv.gz"):
        load_data(events_cfg(tmp_path / "empty"))


def test_a_typo_in_the_events_config_is_refused_by_its_schema():
    from src.config.validate import ConfigError, validate

    with pytest.raises(ConfigError, match=r"usr"):
        validate(compose(["data=events", "+data.columns.usr=x"]))


def test_the_example_log_of_the_docs_reads_as_the_docs_say(capsys, tmp_path):
    """docs/your-data.md shows what `python -m src.data.describe data=clicks_example` prints; it still does,
    and its example files are what docs/examples/clicks/make_clicks.py writes."""
    import hashlib
    import re
    import runpy

    from src.config.paths import ROOT
    from src.data import describe

    example = ROOT / "docs" / "examples" / "clicks"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in example.glob("*.csv")}
    runpy.run_path(str(example / "make_clicks.py"))["main"](tmp_path)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("*.csv")} == before
    doc = (ROOT / "docs" / "your-data.md").read_text()
    shown = re.search(r"prints, among the histograms:\n\n```\n(.*?)```", doc, re.S).group(1)
    assert describe.main(["data=clicks_example", "data.cache=false"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(shown), printed
    yaml = re.search(r"`conf/data/clicks_example.yaml`:\n\n```yaml\n(.*?)```", doc, re.S).group(1)
    conf = (ROOT / "conf" / "data" / "clicks_example.yaml").read_text()
    strip = [re.sub(r"\s*#.*", "", line).rstrip() for line in conf.splitlines() if not line.startswith("#")]
    assert [re.sub(r"\s*#.*", "", line).rstrip() for line in yaml.splitlines()] == [s for s in strip if s], conf


SYNTH = {"source": "synthetic", "name": "syn", "users": 60, "items": 80, "cats": 4, "seq_len": 25,
         "samples_per_user": 6, "max_len": 20, "seed": 3, "split": {"valid": 1, "test": 1}, "cache": False}


def synthetic_log(data):
    """The synthetic data set written as a log: each user's behaviours (time = step) and each sample as a
    labelled impression at its step (its history: the behaviours before that step)."""
    steps, n_users = SYNTH["seq_len"], SYNTH["users"]
    user = np.repeat(np.arange(n_users), steps)
    rows = [pd.DataFrame({"u": user, "i": data.events["item"], "c": data.events["cat"], "t": np.tile(np.arange(steps),
                          n_users), "y": np.nan, "k": "behaviour"})]
    for split in SPLITS:
        s = data.splits[split]
        at = s["hist_end"] - (s["user"] - 2) * steps
        rows.append(pd.DataFrame({"u": s["user"] - 2, "i": s["target_item"], "c": s["target_cat"], "t": at,
                                  "y": s["label"], "k": "impression"}))
    log = pd.concat(rows).sort_values(["u", "t", "k"], kind="stable")
    return log.assign(u=lambda d: "user" + d["u"].astype(str), i=lambda d: "item" + d["i"].astype(str),
                      c=lambda d: "cat" + d["c"].astype(str))


def renamed(a: np.ndarray, b: np.ndarray, seen: dict) -> None:
    """b is a with its ids renamed one to one (padding stays padding), consistently with what `seen` holds."""
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist()):
        assert seen.setdefault(("a", x), y) == y and seen.setdefault(("b", y), x) == x, (x, y)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_synthetic_data_written_as_a_log_of_impressions_and_behaviours_reads_back_the_same(tmp_path, fmt):
    syn = load_data(SYNTH)
    log = synthetic_log(syn)
    path = tmp_path / f"log.{fmt}"
    log.to_csv(path, index=False) if fmt == "csv" else log.to_parquet(path, row_group_size=500)
    ev = load_data(events_cfg(path, columns={"user": "u", "item": "i", "time": "t", "category": "c", "label": "y",
                                             "kind": "k"}, max_len=SYNTH["max_len"], time_format="s"))
    assert ev.meta["behaviours"] == SYNTH["users"] * SYNTH["seq_len"] and ev.meta["impressions"] == len(log) - \
        ev.meta["behaviours"]
    from src.data.describe import render, summary

    assert f"{ev.meta['behaviours']:,} behaviours and {ev.meta['impressions']:,} impressions" in render(summary(ev), ev)
    seen = {}
    for split in SPLITS:
        a, b = syn.histories(split), ev.histories(split)
        assert a.keys() == b.keys() and syn.size(split) == ev.size(split) > 0
        np.testing.assert_array_equal(syn.splits[split]["label"], ev.splits[split]["label"])
        np.testing.assert_array_equal(a["hist_len"], b["hist_len"])
        for k in ("user", "target_item", "hist_item"):
            assert (b[k] != 1).all(), f"{split}/{k}: an unseen id"  # every id was seen in training
            renamed(a[k], b[k], seen.setdefault(k.split("_")[-1], {}))
        for k in ("target_cat", "hist_cat"):
            renamed(a[k], b[k], seen.setdefault("cat", {}))
