import json
import os
import time

import numpy as np
import pytest

from src.data import DataError, load_data
from src.data import cache as cache_mod
from src.data.dataset import SPLITS
from src.data.pipeline import make_dataset
from src.data.synthetic import DEFAULTS

SYN = {"name": "syn", "source": "synthetic", "users": 60, "items": 80, "cats": 4, "seq_len": 30,
       "samples_per_user": 5, "max_len": 20, "split": {"valid": 1, "test": 1}, "seed": 3, "cache": False}


def test_synthetic_truth_is_consistent():
    d = load_data(SYN)
    assert {s: d.size(s) for s in SPLITS} == {"train": 180, "valid": 60, "test": 60}
    n_items, n_cats = SYN["items"], SYN["cats"]
    cat_of = np.arange(n_items) * n_cats // n_items
    for split in SPLITS:
        h, rel = d.histories(split), d.splits[split]["relevant"]
        target = d.splits[split]["target_item"] - 2
        assert rel.shape == h["hist_item"].shape
        # a relevant position holds the target's partner: same category, neighbour within the block
        hist = h["hist_item"] - 2
        assert np.all(~rel | (cat_of[np.clip(hist, 0, None)] == cat_of[target][:, None]))
        assert np.all(~rel | (np.abs(hist - target[:, None]) == 1))
        assert np.all(~rel | (np.arange(d.max_len)[None] < h["hist_len"][:, None]))
        # categories of events agree with the item -> category map
        assert np.all(d.events["cat"] - 2 == cat_of[d.events["item"] - 2])
        assert np.all(d.events["neg_item"] != d.events["item"])


def test_synthetic_is_seeded():
    a, b, c = load_data(SYN), load_data(SYN), load_data({**SYN, "seed": 4})
    np.testing.assert_array_equal(a.splits["train"]["label"], b.splits["train"]["label"])
    np.testing.assert_array_equal(a.events["item"], b.events["item"])
    assert not np.array_equal(a.events["item"], c.events["item"])


@pytest.mark.parametrize("key, value", [("users", 0), ("drift", 1.5), ("samples_per_user", 40), ("items", 3)])
def test_synthetic_bad_knobs(key, value):
    with pytest.raises(DataError, match=key):
        load_data({**SYN, key: value})


def test_synthetic_defaults_match_the_config():
    from omegaconf import OmegaConf

    from src.config.paths import CONF_DIR

    conf = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "data" / "synthetic.yaml"))
    assert {k: conf[k] for k in DEFAULTS} == DEFAULTS


def test_cache_hit_and_invalidation(movielens_dir, tmp_path):
    cfg = {"name": "mlc", "source": "movielens", "path": str(movielens_dir), "max_len": 3,
           "split": {"valid": 1, "test": 1}, "seed": 0, "cache": True}
    store = tmp_path / "cache"
    first = load_data(cfg, cache_dir=store)
    assert first.meta["cache"]["hit"] is False and len(list(store.glob("*.json"))) == 1
    second = load_data(cfg, cache_dir=store)
    assert second.meta["cache"]["hit"] is True
    for s in SPLITS:
        for k, v in first.splits[s].items():
            np.testing.assert_array_equal(v, second.splits[s][k])
    # a changed config rebuilds
    assert load_data({**cfg, "max_len": 2}, cache_dir=store).meta["cache"]["hit"] is False
    # a changed file (same size, same mtime) rebuilds: the key is the content
    p = movielens_dir / "ratings.csv"
    st = p.stat()
    p.write_text(p.read_text().replace("1,50,4.5,500", "1,50,3.5,500"))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = load_data(cfg, cache_dir=store)
    assert changed.meta["cache"]["hit"] is False
    assert changed.splits["test"]["label"][0] == 0.0


def test_shipped_movielens_second_load_is_fast(tmp_path):
    from omegaconf import OmegaConf

    from src.config.paths import CONF_DIR

    cfg = OmegaConf.load(CONF_DIR / "data" / "movielens.yaml")
    load_data(cfg, cache_dir=tmp_path)
    t = time.perf_counter()
    d = load_data(cfg, cache_dir=tmp_path)
    elapsed = time.perf_counter() - t
    assert d.meta["cache"]["hit"] is True
    print(f"cached load of ml-latest-small: {elapsed:.3f}s")  # the number, not a timed assertion


def test_failed_build_writes_nothing(movielens_dir, tmp_path, monkeypatch):
    cfg = {"name": "mlf", "source": "movielens", "path": str(movielens_dir), "max_len": 3, "seed": 0}
    store = tmp_path / "cache"
    written = []
    atomic = cache_mod._atomic

    def fails_third(path, write):  # two arrays land, the third write runs out of disk half-way
        if len(written) == 2:
            path.with_name(f".{path.name}.tmp").write_bytes(b"partial")
            raise OSError("disk full")
        atomic(path, write)
        written.append(path)

    monkeypatch.setattr(cache_mod, "_atomic", fails_third)
    with pytest.raises(OSError, match="disk full"):
        load_data(cfg, cache_dir=store)
    assert len(written) == 2 and not any(p.exists() for p in written)
    assert [p for p in store.rglob("*") if p.is_file() and not p.name.endswith(".tmp")] == []
    p = movielens_dir / "ratings.csv"
    p.write_text(p.read_text() + "1,2,3\n")
    monkeypatch.undo()
    with pytest.raises(DataError):
        load_data(cfg, cache_dir=store)
    assert [p for p in store.rglob("*") if p.is_file() and not p.name.endswith(".tmp")] == []


def test_entries_share_arrays_and_a_lost_array_rebuilds(tmp_path):
    """Entries of the same log with other features switched on store only their features' arrays again;
    an entry whose array was deleted is rebuilt, not failed."""
    from omegaconf import OmegaConf

    from src.config.paths import CONF_DIR

    base = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "data" / "clicks_example.yaml"))
    base.pop("defaults")
    base.update({"source": "events", "seed": 0, "chunk_rows": 1000})
    store = tmp_path / "cache"
    built = {}
    for brand in (True, False):
        for age in (True, False):
            cfg = {**base, "features": {**base["features"], "brand": {**base["features"]["brand"], "enabled": brand},
                                        "age_band": {**base["features"]["age_band"], "enabled": age}}}
            built[brand, age] = load_data(cfg, cache_dir=store, progress=lambda m: None)
    manifests = [json.loads(p.read_text()) for p in store.glob("*.json")]
    assert len(manifests) == 4
    shared = set.intersection(*(set(m["arrays"].items()) for m in manifests))
    assert {k for k, _ in shared} >= {"events/item", "train/label", "test/target_item"}
    stored = set().union(*(m["arrays"].values() for m in manifests))
    assert len(list((store / cache_mod.ARRAYS).iterdir())) == len(stored)
    gone = store / cache_mod.ARRAYS / f"{manifests[0]['arrays']['train/label']}.npy"
    gone.unlink()
    again = load_data(cfg, cache_dir=store, progress=lambda m: None)
    assert again.meta["cache"]["hit"] is False and gone.is_file()
    np.testing.assert_array_equal(again.splits["train"]["label"], built[False, False].splits["train"]["label"])
    assert load_data(cfg, cache_dir=store).meta["cache"]["hit"] is True


def test_unknown_source():
    with pytest.raises(DataError, match="data.source"):
        cache_mod.source_files({"source": "criteo"})


def test_empty_and_single_event_users(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4,1\n2,10,4,1\n2,20,5,2\n"
                                          "3,30,2,1\n3,20,1,5\n")
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n10,A,Drama\n20,B,Comedy\n30,C,Drama\n")
    d = load_data({"name": "few", "source": "movielens", "path": str(tmp_path), "max_len": 3, "cache": False,
                   "split": {"valid": 0, "test": 1}})
    # user 1 (one event) gives no sample; users 2 and 3 give one test sample each
    assert d.size("test") == 2 and d.size("train") == 0 and d.meta["users"] == 3
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DataError, match="no events"):
        load_data({"name": "none", "source": "movielens", "path": str(tmp_path), "max_len": 3, "cache": False})


def test_pipeline_batches_match_the_histories():
    d = load_data(SYN)
    inputs = ["target_item", "target_cat", "hist_item", "hist_cat", "hist_len", "neg_item", "neg_cat", "user"]
    ds = make_dataset(d, "valid", batch_size=16, inputs=inputs)
    x, y = zip(*[(bx, by) for bx, by in ds])
    full = d.histories("valid")
    for k in inputs:
        np.testing.assert_array_equal(np.concatenate([np.asarray(b[k]) for b in x]), full[k])
    np.testing.assert_array_equal(np.concatenate([np.asarray(b) for b in y]), d.splits["valid"]["label"])


def test_pipeline_shuffle_is_seeded_and_reshuffles():
    d = load_data(SYN)

    def epoch(ds):
        return np.concatenate([np.asarray(bx["target_item"]) for bx, _ in ds])

    a = make_dataset(d, "train", 32, shuffle=True, seed=1, inputs=["target_item"])
    b = make_dataset(d, "train", 32, shuffle=True, seed=1, inputs=["target_item"])
    e1, e2 = epoch(a), epoch(a)
    np.testing.assert_array_equal(e1, epoch(b))
    assert not np.array_equal(e1, e2) and sorted(e1) == sorted(e2)
    with pytest.raises(ValueError, match="unknown model inputs"):
        make_dataset(d, "train", 32, inputs=["bogus"])
