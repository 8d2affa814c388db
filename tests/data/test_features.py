"""Side features declared in the data config (src/data/features.py): read from the log, the item table and the
user table; coded from the training period; looked up by item id for the target, the behaviours and the
negatives; seen by every model; switched off by `enabled: false`; refused with where and why when wrong."""

import numpy as np
import pandas as pd
import pytest

from src.config import compose
from src.data import DataError, load_data, synthetic
from src.data.dataset import OOV, SPLITS
from tests.data.test_events import events_cfg

FEATURES = {"brand": {"of": "item", "kind": "categorical"}, "price": {"of": "item", "kind": "numeric"},
            "age": {"of": "user", "kind": "categorical"}, "hour": {"of": "event", "kind": "categorical"}}


def shop(tmp_path):
    """A click log of 6 users over 8 items, an item table (brand, price) and a user table (age); item i7 is
    clicked only in the users' last positions (never in training), brand Z only on it."""
    rows = []
    for u in range(6):
        for t, i in enumerate([u % 3, 3 + u % 2, 5, 6, u % 4, 7]):
            rows.append({"user_id": f"u{u}", "item_id": f"i{i}", "timestamp": 100 * t + u, "hour": (t * 5) % 24})
    pd.DataFrame(rows).to_csv(tmp_path / "log.csv", index=False)
    brands = ["A", "A", "B", "B", "C", "", "C", "Z"]  # i5 has no brand
    pd.DataFrame({"item_id": [f"i{i}" for i in range(8)], "category": ["c"] * 8, "brand": brands,
                  "price": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, None, 8.0]}).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(6)], "age": ["18-24", "25-34"] * 3}).to_csv(
        tmp_path / "users.csv", index=False)
    items = {"path": str(tmp_path / "items.csv"), "columns": {"item": "item_id", "category": "category"}}
    users = {"path": str(tmp_path / "users.csv"), "columns": {"user": "user_id"}}
    return events_cfg(tmp_path / "log.csv", max_len=3, features=FEATURES, items=items, users=users)


def test_an_event_log_with_item_user_and_event_features_codes_them_from_the_training_period(tmp_path):
    data = load_data(shop(tmp_path))
    assert [(f["name"], f["of"], f["kind"], f["size"]) for f in data.features] == [
        ("brand", "item", "categorical", 2 + 3), ("price", "item", "numeric", None),  # A, B, C: Z is not in training
        ("age", "user", "categorical", 2 + 2), ("hour", "event", "categorical", 2 + 4)]
    assert data.feature_columns() == ["f_age", "f_hour"]
    brand, price = data.items["brand"], data.items["price"]
    # item ids: the items of the training period (each user's first four clicks) in the order the log first
    # shows them: i0 i3 i5 i6 i1 i4 i2 get 2..8; i7 (clicked last only) is unseen, 1
    ids = {"i0": 2, "i3": 3, "i5": 4, "i6": 5, "i1": 6, "i4": 7, "i2": 8}
    assert data.vocab["item"] == 9
    # brands of the training period: A, B, C get 2, 3, 4; i5's empty one is missing, OOV
    assert brand.tolist() == [0, OOV, 2, 3, OOV, 4, 2, 4, 3]
    # price: standardised by the training events' mean and deviation; i6's missing one is the mean, 0
    seen = np.array([1, 2, 3] * 2 + [4, 5] * 3 + [6] * 6, float)
    expected = {"i0": 1, "i1": 2, "i2": 3, "i3": 4, "i4": 5, "i5": 6}
    for item, raw in expected.items():
        assert np.isclose(price[ids[item]], (raw - seen.mean()) / seen.std()), item
    assert price[ids["i6"]] == 0 and price[0] == price[OOV] == 0
    # user and event features are sample columns; a sampled negative shares its positive's user and event
    train = data.splits["train"]
    assert set(train["f_age"]) == {2, 3}
    np.testing.assert_array_equal(train["f_age"][0::2], train["f_age"][1::2])
    np.testing.assert_array_equal(train["f_hour"][0::2], train["f_hour"][1::2])
    assert data.histories("train", [0, 1])["f_hour"].tolist() == train["f_hour"][:2].tolist()


def test_features_survive_the_cache_and_a_disabled_one_is_neither_read_nor_seen(tmp_path):
    cfg = {**shop(tmp_path), "cache": True}
    built = load_data(cfg, cache_dir=tmp_path / "cache")
    cached = load_data(cfg, cache_dir=tmp_path / "cache")
    assert cached.meta["cache"]["hit"] and cached.features[0]["name"] == "brand"
    for k in built.items:
        np.testing.assert_array_equal(built.items[k], cached.items[k])
    np.testing.assert_array_equal(built.splits["test"]["f_age"], cached.splits["test"]["f_age"])
    off = dict(FEATURES, age={"of": "user", "kind": "categorical", "enabled": False, "column": "not_there"})
    data = load_data({**cfg, "features": off, "cache": False})
    assert [f["name"] for f in data.features] == ["brand", "price", "hour"] and "f_age" not in data.splits["train"]


BAD = [
    ("missing column", {"brand": {"of": "item", "kind": "categorical", "column": "maker"}},
     r"items.csv: no column data.features.brand.column='maker'; the file's columns are "
     r"\['item_id', 'category', 'brand', 'price'\]"),
    ("event column", {"device": {"of": "event", "kind": "categorical"}},
     r"log.csv: no column data.features.device.column='device'; the file's columns are \['user_id', 'item_id'"),
    ("not a number", {"brand": {"of": "item", "kind": "numeric"}},
     r"items.csv:2: feature 'brand' value 'A' is not a number \(kind: numeric\)"),
]


@pytest.mark.parametrize("what,features,message", BAD, ids=[b[0] for b in BAD])
def test_a_feature_that_cannot_be_read_is_refused_with_where_and_nothing_is_cached(tmp_path, what, features, message):
    cfg = {**shop(tmp_path), "features": features, "cache": True}
    with pytest.raises(DataError, match=message):
        load_data(cfg, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_an_item_or_user_feature_without_its_table_says_which_table_it_needs(tmp_path):
    cfg = shop(tmp_path)
    with pytest.raises(DataError, match=r"data.features.brand` is of: item, which needs an item table"):
        load_data({**cfg, "items": {"path": None, "columns": cfg["items"]["columns"]}})
    with pytest.raises(DataError, match=r"data.features.age` is of: user, which needs a user table"):
        load_data({**cfg, "users": {"path": None, "columns": {"user": "user_id"}}})


def test_a_feature_of_a_wrong_kind_or_name_is_refused_by_the_schema():
    from src.config.validate import ConfigError, validate

    with pytest.raises(ConfigError, match=r"features.*of"):
        validate(compose(["data=synthetic_features", "data.features.segment.of=shop"]))
    with pytest.raises(ConfigError, match=r"features"):
        validate(compose(["data=synthetic_features", "+data.features.segment.colour=red"]))


SMALL = dict(users=300, items=100, cats=5, seq_len=20, samples_per_user=6, max_len=10, split={"valid": 1, "test": 1})


def test_synthetic_features_change_no_label_unless_their_effect_is_planted():
    plain = synthetic.build(SMALL)
    seen = synthetic.build({**SMALL, "features": {"segment": {"of": "user", "kind": "categorical"},
                                                  "quality": {"of": "item", "kind": "numeric"}}})
    for s in SPLITS:
        np.testing.assert_array_equal(plain.splits[s]["label"], seen.splits[s]["label"])
    assert "f_mood" not in seen.splits["train"] and "f_segment" in seen.splits["train"]
    planted = synthetic.build({**SMALL, "segment_effect": 3.0})
    assert planted.splits["train"]["label"].mean() > plain.splits["train"]["label"].mean() + 0.05
    with pytest.raises(DataError, match=r"data.features.segment`: the synthetic data plants segment \(of: user"):
        synthetic.build({**SMALL, "features": {"segment": {"of": "item", "kind": "categorical"}}})


@pytest.mark.parametrize("table,rows,message", [
    ("items.csv", "item_id,category,brand,price\ni0,c,A,1.0\ni1,c,B,2.0\ni0,c,Q,1.0\n",
     r"items.csv:4: item 'i0' is on an earlier row too \(.*items.csv:2\), with other values; the item table needs "
     r"one row per item"),
    ("users.csv", "user_id,age\nu0,18-24\nu1,25-34\nu0,25-34\n",
     r"users.csv:4: user 'u0' is on an earlier row too \(.*users.csv:2\), with other values"),
])
def test_a_side_table_with_an_id_on_rows_that_differ_is_refused_naming_the_file_line_and_id(tmp_path, table, rows,
                                                                                             message):
    cfg = {**shop(tmp_path), "cache": True}
    (tmp_path / table).write_text(rows)  # an id on two rows whose values differ
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=message):
        load_data(cfg, cache_dir=cache)
    assert not cache.exists() or not list(cache.iterdir())


def test_rows_of_a_side_table_that_agree_are_one_row(tmp_path):
    cfg = shop(tmp_path)
    before = load_data(cfg)
    for table in ("items.csv", "users.csv"):
        text = (tmp_path / table).read_text()
        (tmp_path / table).write_text(text + text.split("\n", 1)[1])  # every row twice, the same values
    after = load_data(cfg)
    assert before.vocab == after.vocab
    for k in before.items:
        np.testing.assert_array_equal(before.items[k], after.items[k])
    np.testing.assert_array_equal(before.splits["train"]["f_age"], after.splits["train"]["f_age"])


def test_a_feature_with_one_value_in_the_training_period_is_said_by_describe_and_by_train(tmp_path):
    from src.data.dataset import filtering_lines
    from src.data.describe import render, summary

    cfg = shop(tmp_path)
    assert not load_data(cfg).meta["warnings"]  # every feature varies: nothing to say
    pd.DataFrame({"user_id": [f"u{u}" for u in range(6)], "age": ["18-24"] * 6}).to_csv(tmp_path / "users.csv",
                                                                                       index=False)
    items = pd.read_csv(tmp_path / "items.csv")
    items.assign(price=None).to_csv(tmp_path / "items.csv", index=False)
    cfg["features"] = {**FEATURES, "price": {"of": "item", "kind": "categorical"}}  # all missing
    data = load_data(cfg)
    said = ["feature 'age' (of: user) has one value in the training period: it cannot tell samples apart",
            "feature 'price' (of: item) has no value (all missing) in the training period"]
    text = render(summary(data), data)  # describe
    lines = filtering_lines(data.meta)  # what a train run prints before it trains
    for s in said:
        assert s in text and any(s in ln and "warning:" in ln for ln in lines), (s, lines)
