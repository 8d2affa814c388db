import numpy as np
import pytest

from src.data import DataError, load_data
from src.data.dataset import SPLITS
from tests.data.conftest import amazon_lines, write

BASE = {"max_len": 4, "min_history": 1, "split": {"valid": 1, "test": 1}, "seed": 0, "cache": False,
        "negatives": {"sampling": "uniform", "seed": 0}}


def amazon_cfg(path, **kw):
    return {**BASE, "name": "amz", "source": "amazon", "path": str(path), "category": "Electronics",
            "protocol": "din", **kw}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("literal_meta", [False, True])
def test_amazon_din_protocol(tmp_path, amazon_rows, gz, literal_meta):
    reviews, meta = amazon_rows
    suffix = ".gz" if gz else ""
    write(tmp_path / f"reviews_Electronics_5.json{suffix}", amazon_lines(reviews), gz)
    meta_text = "".join((repr(m) if literal_meta else __import__("json").dumps(m)) + "\n" for m in meta)
    write(tmp_path / f"meta_Electronics.json{suffix}", meta_text, gz)
    d = load_data(amazon_cfg(tmp_path))
    # U1 (5 reviews): positions 1..4 -> train 1,2 / valid 3 / test 4; U2 (3): train -, valid 1, test 2
    # every sample has its negative right after it
    assert {s: d.size(s) for s in SPLITS} == {"train": 2 * 2, "valid": 2 * 2, "test": 2 * 2}
    for split in SPLITS:
        s = d.splits[split]
        assert list(s["label"]) == [1, 0] * (d.size(split) // 2)
        pos, neg = s["target_item"][0::2], s["target_item"][1::2]
        assert np.all(pos != neg)
        np.testing.assert_array_equal(s["hist_end"][0::2], s["hist_end"][1::2])
    # category = last element of the first path: "Cat A" .. "Cat F", distinct per item
    items_cats = dict(zip(d.events["item"], d.events["cat"]))
    assert len(set(items_cats.values())) == len(items_cats)
    assert d.meta["items_without_meta"] == 0


def test_amazon_dien_protocol_and_seeded_negatives(tmp_path, amazon_rows):
    reviews, meta = amazon_rows
    write(tmp_path / "reviews_Electronics_5.json", amazon_lines(reviews))
    write(tmp_path / "meta_Electronics.json", amazon_lines(meta))
    d = load_data(amazon_cfg(tmp_path, protocol="dien"))
    # U1 keeps its last three positions (one per split); U2's three reviews give positions 1, 2 only
    assert {s: d.size(s) for s in SPLITS} == {"train": 2, "valid": 4, "test": 4}
    again = load_data(amazon_cfg(tmp_path, protocol="dien"))
    for s in SPLITS:
        np.testing.assert_array_equal(d.splits[s]["target_item"], again.splits[s]["target_item"])
    other = load_data(amazon_cfg(tmp_path, protocol="dien", seed=5, negatives={"sampling": "popularity",
                                                                                "seed": 5}))
    assert np.all(other.events["neg_item"] != other.events["item"])


def test_amazon_errors(tmp_path, amazon_rows):
    reviews, meta = amazon_rows
    with pytest.raises(DataError, match=r"reviews_Electronics_5.json.*\n.*jmcauley"):
        load_data(amazon_cfg(tmp_path))
    text = amazon_lines(reviews).splitlines()
    text[2] = '{"reviewerID": "U1", "asin": broken'
    write(tmp_path / "reviews_Electronics_5.json", "\n".join(text) + "\n")
    write(tmp_path / "meta_Electronics.json", amazon_lines(meta))
    with pytest.raises(DataError, match=r"reviews_Electronics_5.json:3: neither JSON"):
        load_data(amazon_cfg(tmp_path))
    text[2] = '{"reviewerID": "U1", "asin": "c"}'
    write(tmp_path / "reviews_Electronics_5.json", "\n".join(text) + "\n")
    with pytest.raises(DataError, match=r":3: missing field 'unixReviewTime'"):
        load_data(amazon_cfg(tmp_path))


TAOBAO = ("1,100,7,pv,1511600000\n1,101,7,pv,1511600100\n1,102,8,buy,1511600200\n1,103,8,pv,1511600300\n"
          "1,104,9,pv,1511600400\n1,105,9,pv,1400000000\n"  # out of the window
          "2,100,7,pv,1511700000\n2,106,9,pv,1511700100\n2,107,7,pv,1511700200\n"
          "3,100,7,pv,1511800000\n")


def taobao_cfg(path, **kw):
    return {**BASE, "name": "tb", "source": "taobao", "path": str(path), "file": "UserBehavior.csv",
            "behaviors": ["pv"], "window": {"start": 1511539200, "end": 1512316800}, "samples_per_user": 20,
            "chunk_rows": 3, **kw}


@pytest.mark.parametrize("gz", [False, True])
def test_taobao_filters_window_and_behaviour(tmp_path, gz):
    if gz:
        write(tmp_path / "UserBehavior.csv.gz", TAOBAO, gz=True)
    else:
        write(tmp_path / "UserBehavior.csv", TAOBAO)
    d = load_data(taobao_cfg(tmp_path))
    assert d.meta["rows"] == 10 and d.meta["rows_out_of_window"] == 1
    assert d.meta["events"] == 8  # pv rows inside the window: user 1 x4, user 2 x3, user 3 x1
    # user 1: 100,101,103,104 -> samples at 101,103,104; user 2: 100,106,107 -> samples at 106,107
    assert {s: d.size(s) for s in SPLITS} == {"train": 2, "valid": 4, "test": 4}
    both = load_data(taobao_cfg(tmp_path, behaviors=["pv", "buy"]))
    assert both.meta["events"] == 9


def test_taobao_errors(tmp_path):
    with pytest.raises(DataError, match=r"UserBehavior.csv.*\n.*tianchi"):
        load_data(taobao_cfg(tmp_path))
    write(tmp_path / "UserBehavior.csv", TAOBAO.replace("2,106,9,pv", "2,106,9,click"))
    with pytest.raises(DataError, match=r"UserBehavior.csv:8: .*'click'"):
        load_data(taobao_cfg(tmp_path))
    write(tmp_path / "UserBehavior.csv", TAOBAO.replace("2,106,9,pv,1511700100", "2,x106,9,pv,1511700100"))
    with pytest.raises(DataError, match=r"UserBehavior.csv:8: field 2"):
        load_data(taobao_cfg(tmp_path))
    write(tmp_path / "UserBehavior.csv", TAOBAO)
    with pytest.raises(DataError, match="behaviors"):
        load_data(taobao_cfg(tmp_path, behaviors=["like"]))


def test_taobao_reports_each_filtering_step(tmp_path):
    from src.data.dataset import filtering_lines, filtering_params
    from src.data.describe import render, summary

    write(tmp_path / "UserBehavior.csv", TAOBAO)
    d = load_data(taobao_cfg(tmp_path))
    steps = filtering_params(d.meta)
    # 10 rows: 1 outside the window, 1 (in the window) of another behaviour type, 8 click events
    assert steps["data_filter.rows_read"] == 10 and steps["data_filter.dropped_out_of_window"] == -1
    assert steps["data_filter.dropped_other_behaviours"] == -1 and steps["data_filter.events"] == 8
    assert steps["data_filter.not_samples_short_history"] == -3  # each user's first event
    assert steps["data_filter.samples"] == 5
    text = render(summary(d), d)
    assert "outside the time window" in text and "behaviour types other than ['pv']" in text
    assert "\n".join(filtering_lines(d.meta)) in text


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_taobao_file_is_named_as_empty(tmp_path, content):
    write(tmp_path / "UserBehavior.csv", content)
    with pytest.raises(DataError, match=r"UserBehavior.csv: the file is empty"):
        load_data(taobao_cfg(tmp_path))


def test_taobao_nothing_left_says_why(tmp_path):
    write(tmp_path / "UserBehavior.csv", TAOBAO)
    with pytest.raises(DataError, match=r"UserBehavior.csv: no events left after filtering: 10 rows read, 10 outside"):
        load_data(taobao_cfg(tmp_path, window={"start": 0, "end": 1}))


def test_amazon_meta_file_that_covers_too_few_items(tmp_path, amazon_rows):
    reviews, meta = amazon_rows
    write(tmp_path / "reviews_Electronics_5.json", amazon_lines(reviews))
    write(tmp_path / "meta_Electronics.json", "")
    with pytest.raises(DataError, match=r"meta_Electronics.json: the file is empty"):
        load_data(amazon_cfg(tmp_path))
    other = [{"asin": "zz" + str(i), "categories": [["Books", "X"]]} for i in range(5)]  # another category's file
    write(tmp_path / "meta_Electronics.json", amazon_lines(other))
    with pytest.raises(DataError, match=r"has categories for 0 of the 6 reviewed items \(0.0%\).*min_meta_coverage"):
        load_data(amazon_cfg(tmp_path))
    accepted = load_data(amazon_cfg(tmp_path, min_meta_coverage=0))  # opted in: accepted, and said
    assert accepted.meta["meta_coverage"] == 0
    assert "the rest share the category 'unknown'" in accepted.meta["warnings"][0]
    write(tmp_path / "meta_Electronics.json", amazon_lines(meta[:4]))  # 4 of 6 items: a warning, not an error
    low = load_data(amazon_cfg(tmp_path))
    assert low.meta["meta_coverage"] == round(4 / 6, 4) and low.meta["warnings"]
    assert load_data(amazon_cfg(tmp_path, protocol="din")).meta["filtering"][1]["count"] == 2


def test_a_run_logs_what_the_protocol_used_and_what_was_dropped(tmp_path, amazon_rows, store):
    import mlflow

    from src.config import compose
    from src.run.training import train_run

    reviews, meta = amazon_rows
    write(tmp_path / "reviews_Electronics_5.json", amazon_lines(reviews))
    write(tmp_path / "meta_Electronics.json", amazon_lines(meta))
    lines = []
    overrides = ["data=amazon", f"data.path={tmp_path}", "data.protocol=dien", "data.cache=false", "model=din",
                 "model.embedding.item=4", "model.embedding.cat=2", "model.mlp.width=8", "train.epochs=1",
                 "train.probe.size=2", "train.probe.metrics_size=4", *store]
    result = train_run(compose(overrides), overrides, log=lines.append)
    assert any("reviews read from reviews_Electronics_5.json" in line for line in lines[:8]), lines
    params = mlflow.MlflowClient().get_run(result.run_id).data.params
    assert params["data.samples_per_user"] == "3" and params["data.split.valid"] == "1"  # what dien used
    assert params["data_filter.reviews_read"] == "9" and params["data_filter.samples"] == "5"  # U1: 3, U2: 2
