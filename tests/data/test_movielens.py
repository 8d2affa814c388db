import numpy as np
import pandas as pd
import pytest

from src.config.paths import DATA_DIR
from src.data import DataError, load_data
from src.data.dataset import OOV, SPLITS

CFG = {"name": "ml_test", "source": "movielens", "max_len": 3, "min_history": 1,
       "split": {"valid": 1, "test": 1}, "negatives": {"sampling": "uniform", "seed": 0}, "seed": 0,
       "positive_rating": 4, "cache": False}


def cfg(path, **kw):
    return {**CFG, "path": str(path), **kw}


def test_protocol_on_small_files(movielens_dir):
    """Worked by hand: ids 10->2, 20->3, 30->4, 40->5 (seen in training), 50 and 60 -> OOV (1)."""
    d = load_data(cfg(movielens_dir))
    # user 1 sorted by (time, movie id): 10@100, 20@200, 30@200, 40@300, 10@400, 50@500
    # user 2: 20@50, 10@60, 60@70, 30@80; user 3 has one rating and no sample
    tr, va, te = (d.histories(s) for s in SPLITS)
    assert [list(r) for r in tr["hist_item"]] == [[2, 0, 0], [2, 3, 0], [2, 3, 4], [3, 0, 0]]
    assert list(tr["target_item"]) == [3, 4, 5, 2]
    assert list(d.splits["train"]["label"]) == [1, 0, 0, 1]  # ratings 5.0, 2.0, 3.5, 4.0
    # the tie at t=200 is broken by movie id: 20 before 30
    assert [list(r) for r in va["hist_item"]] == [[3, 4, 5], [3, 2, 0]]
    assert list(va["target_item"]) == [2, OOV] and list(d.splits["valid"]["label"]) == [0, 1]
    assert [list(r) for r in te["hist_item"]] == [[4, 5, 2], [3, 2, OOV]]
    assert list(te["target_item"]) == [OOV, 4] and list(d.splits["test"]["label"]) == [1, 0]
    assert list(te["hist_len"]) == [3, 3]
    for split in SPLITS:  # every history is left-aligned, padded with 0 after hist_len
        h = d.histories(split)
        steps = np.arange(d.max_len)[None, :]
        assert np.all((h["hist_item"] == 0) == (steps >= h["hist_len"][:, None]))


def test_categories_labels_and_vocab(movielens_dir):
    d = load_data(cfg(movielens_dir))
    assert d.meta["items"] == 4 and d.vocab["item"] == 6
    # first genre: 10 Comedy, 20 Drama, 30 Action, 40 "(no genres listed)"; all seen in training
    assert d.meta["cats"] == 4
    cats = dict(zip(d.events["item"], d.events["cat"]))
    assert cats[2] != cats[3] != cats[4] != cats[5]
    assert cats[2] == d.splits["test"]["target_cat"][0]  # 50 (OOV item) is a Comedy like 10
    assert d.vocab["user"] == 5  # user 3 counts: its one event is in the training period
    assert d.meta["users"] == 3


def test_shipped_movielens_end_to_end_and_no_leakage():
    d = load_data({**CFG, "name": "ml_shipped", "path": "data/ml-latest-small", "max_len": 50,
                   "split": {"valid": 0.1, "test": 0.1}})
    ratings = pd.read_csv(DATA_DIR / "ml-latest-small" / "ratings.csv")
    assert d.meta["events"] == len(ratings) == 100836
    order = np.lexsort((ratings.movieId, ratings.timestamp, ratings.userId))
    user, time = ratings.userId.to_numpy()[order], ratings.timestamp.to_numpy()[order]
    first_held = {}
    for split in SPLITS:
        s = d.splits[split]
        end, length = s["hist_end"], s["hist_len"]
        assert np.all(length >= 1) and np.all(length <= 50)
        for k in range(50):  # every history event is the same user's, and not later than the sample
            idx = np.where(k < length, end - length + k, end - 1)
            assert np.all(user[idx] == user[end]) and np.all(time[idx] <= time[end])
        if split != "train":
            for u, e in zip(user[end], end):
                first_held[u] = min(first_held.get(u, e), e)
    # no validation or test event inside any training sample (target or history)
    tr = d.splits["train"]
    assert all(e < first_held.get(u, np.inf) for u, e in zip(user[tr["hist_end"]], tr["hist_end"]))
    # splits by time within each user: every user's test samples come after its training samples
    assert d.size("valid") > 0 and d.size("test") > 0


def test_ml1m_dat_format(tmp_path):
    (tmp_path / "ratings.dat").write_bytes(b"1::10::5::100\n1::20::3::200\n1::30::4::300\n2::10::4::5\n"
                                           b"2::30::2::6\n")
    (tmp_path / "movies.dat").write_bytes("10::Am\xe9lie (2001)::Comedy|Romance\n20::B (1999)::Drama\n"
                                          "30::C (1998)::Action\n".encode("latin-1"))
    d = load_data(cfg(tmp_path, split={"valid": 0, "test": 1}))
    assert d.meta["events"] == 5 and d.size("test") == 2 and d.size("train") == 1


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"ratings.csv.*\n.*grouplens"):
        load_data(cfg(tmp_path))


def test_malformed_line_names_file_and_line(movielens_dir):
    p = movielens_dir / "ratings.csv"
    lines = p.read_text().splitlines()
    lines[4] = "1,40,oops,300"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"ratings.csv:5: field 3"):
        load_data(cfg(movielens_dir))
    lines[4] = "1,40,3.5"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"ratings.csv:5: expected 4 fields"):
        load_data(cfg(movielens_dir))


def test_out_of_range_rating(movielens_dir):
    p = movielens_dir / "ratings.csv"
    p.write_text(p.read_text().replace("1,40,3.5,300", "1,40,7.5,300"))
    with pytest.raises(DataError, match=r"ratings.csv:5"):
        load_data(cfg(movielens_dir))


def test_a_movies_year_is_an_item_feature_read_from_its_title(movielens_dir):
    year = {"year": {"of": "item", "kind": "numeric"}}
    d = load_data(cfg(movielens_dir, features=year, split={"valid": 0, "test": 1}))
    assert [f["name"] for f in d.features] == ["year"]
    # the training period's movies, 10 20 30 40 60, have the years 1999 2000 2001 2002 2004: five values,
    # standardised in their order; 50 (2003) is rated in the test period only, so it is unseen
    table = d.items["year"]
    known = table[2:]
    assert len(table) == d.vocab["item"] == 2 + 5 and len(set(np.round(known, 6))) == 5
    assert np.all(np.diff(known) > 0)  # ids 2..6 are movies 10 20 30 40 60, in their years' order
    as_levels = load_data(cfg(movielens_dir, features={"year": {"of": "item", "kind": "categorical"}},
                              split={"valid": 0, "test": 1}))
    assert as_levels.features[0]["size"] == 2 + 5


def test_ml1m_users_dat_gives_gender_age_and_occupation_as_user_features(tmp_path):
    (tmp_path / "ratings.dat").write_bytes(b"1::10::5::100\n1::20::3::200\n1::30::4::300\n2::10::4::5\n"
                                           b"2::30::2::6\n2::20::5::7\n")
    (tmp_path / "movies.dat").write_bytes(b"10::A (2001)::Comedy\n20::B (1999)::Drama\n30::C (1998)::Action\n")
    features = {k: {"of": "user", "kind": "categorical"} for k in ("gender", "age", "occupation")}
    with pytest.raises(DataError, match=r"only ml-1m's users.dat holds; no .*users.dat"):
        load_data(cfg(tmp_path, features=features))
    (tmp_path / "users.dat").write_bytes(b"1::F::1::10::48067\n2::M::56::16::70072\n")
    d = load_data(cfg(tmp_path, features=features, split={"valid": 0, "test": 1}))
    assert d.feature_columns() == ["f_gender", "f_age", "f_occupation"]
    test = d.splits["test"]
    assert sorted(test["f_gender"].tolist()) == [2, 3] and test["f_age"].tolist() != [1, 1]
    with pytest.raises(DataError, match=r"data.features.zodiac`: MovieLens gives year"):
        load_data(cfg(tmp_path, features={"zodiac": {"of": "user", "kind": "categorical"}}))
    with pytest.raises(DataError, match=r"data.features.year` is of: user, but MovieLens gives it of: item"):
        load_data(cfg(tmp_path, features={"year": {"of": "user", "kind": "numeric"}}))
