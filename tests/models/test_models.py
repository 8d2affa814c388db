import keras
import numpy as np
import pytest

from src.config import compose, to_plain
from src.models import build_model, needs_negatives
from src.run.training import compile_model

T = 8
VOCAB = {"item": 50, "cat": 6, "user": 12}

VARIANTS = [
    ["model=base"],
    ["model=din"],
    ["model=din", "model/activation=dice"],
    ["model=din", "model/attention=din_paper"],
    ["model=din", "model.attention.scale=false", "model.attention.softmax=false", "model.embedding.user=4"],
    ["model=dien"],
    ["model=dien", "model/evolution=gru", "model.aux_loss.alpha=0"],
    ["model=dien", "model/evolution=aigru"],
    ["model=dien", "model/evolution=agru"],
    ["model=dien", "model/evolution=augru_code", "model/activation=dice", "model.extractor.units=12"],
]


def batch(cfg, n=64, seed=0):
    """A tiny learnable batch: the click depends on whether the target's category is in the history."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, n)
    valid = np.arange(T)[None, :] < lengths[:, None]
    hist_item = rng.integers(1, VOCAB["item"], (n, T)) * valid
    x = {
        "target_item": rng.integers(1, VOCAB["item"], n), "hist_item": hist_item, "hist_len": lengths,
        "target_cat": rng.integers(1, VOCAB["cat"], n), "hist_cat": (hist_item % 5 + 1) * valid,
        "user": rng.integers(1, VOCAB["user"], n),
        "neg_item": rng.integers(1, VOCAB["item"], (n, T)) * valid,
    }
    x["neg_cat"] = (x["neg_item"] % 5 + 1) * valid
    y = (x["hist_cat"] == x["target_cat"][:, None]).any(1).astype("float32")
    return {k: v.astype("int32") for k, v in x.items()}, y


def small(overrides):
    cfg = to_plain(compose(overrides + ["model.mlp.width=16", "model.embedding.item=6",
                                        "model.embedding.cat=4"]).model)
    return cfg


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(o))
def test_trains_and_round_trips(overrides, tmp_path):
    keras.utils.set_random_seed(0)
    cfg = small(overrides)
    model = build_model(cfg, VOCAB, T)
    assert ("neg_item" in model.input) == needs_negatives(cfg)
    x, y = batch(cfg)
    x = {k: x[k] for k in model.input}
    compile_model(model, {"name": "adam", "lr": 0.01})  # as a run compiles it
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0, shuffle=False)
    assert model.evaluate(x, y, verbose=0) < first
    pred = model.predict(x, verbose=0)
    assert pred.shape == (len(y), 1) and np.all((pred >= 0) & (pred <= 1))  # float32 saturates at 0 and 1
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), pred)


def test_dien_aux_loss_is_in_the_total():
    keras.utils.set_random_seed(0)
    cfg = small(["model=dien", "model.aux_loss.alpha=0.5"])
    model = build_model(cfg, VOCAB, T)
    x, _ = batch(cfg)
    model({k: x[k] for k in model.input}, training=False)
    assert len(model.losses) == 1 and float(model.losses[0]) > 0


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.embedding.item=-3"], "model.embedding.item"),
        (["model.embedding.cat=-1"], "model.embedding.cat"),
        (["model.mlp.depth=-1"], "model.mlp.depth"),
        (["model.mlp.dropout=2.0"], "model.mlp.dropout"),
        (["model.attention.hidden_units=[0]"], "hidden_units"),
        (["model.name=xyz"], "model.name"),
        (["model=dien", "model.attention.query_projection=false", "model.extractor.units=5"],
         "query_projection"),
    ],
)
def test_bad_config_names_the_argument(overrides, match):
    with pytest.raises(ValueError, match=match):
        build_model(to_plain(compose(overrides).model), VOCAB, T)


def test_missing_vocab_size():
    with pytest.raises(ValueError, match="vocab"):
        build_model(to_plain(compose(["model=din"]).model), {"item": 10}, T)


def test_configurations_of_one_seed_start_the_parts_they_share_from_the_same_values():
    """Common random numbers (src/models/common.py `Parts`): a GRU or an AUGRU evolution, one MLP layer or
    three, built after the same seed, start their embeddings, interest extractor and evolution, attention and
    first MLP layer from the same values, whatever was made before them; another seed starts them elsewhere."""
    def weights(overrides, seed=3):
        keras.utils.set_random_seed(seed)
        model = build_model(small(["model=dien", "model.aux_loss.alpha=0", *overrides]), VOCAB, T)
        return {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}

    a = weights(["model/evolution=gru", "model.mlp.depth=1"])
    b = weights(["model/evolution=augru", "model.mlp.depth=3"])
    shared = [p for p in a if p in b and a[p].shape == b[p].shape and a[p].std() > 0]
    for part in ("item_embedding", "cat_embedding", "interest_extractor", "interest_evolution", "attention",
                 "top_mlp/dense_0"):
        paths = [p for p in shared if p.startswith(part)]
        assert paths, (part, sorted(a))
        for p in paths:
            np.testing.assert_array_equal(a[p], b[p], err_msg=p)
    other = weights(["model/evolution=gru", "model.mlp.depth=1"], seed=4)
    assert not np.array_equal(a["item_embedding/embeddings"], other["item_embedding/embeddings"])
