"""Every model sees the side features of the data (src/data/features.py) and a saved model carries the item
feature tables: here, so that the JAX pass runs it too."""

import numpy as np
import pytest

from src.config import compose
from src.data import load_data
from tests.data.test_features import shop


@pytest.mark.parametrize("model", ["base", "din", "dien"])
def test_every_model_sees_the_features_and_a_saved_one_predicts_the_same(tmp_path, model):
    import keras

    from src.data.pipeline import make_dataset
    from src.models import build_model

    cfg = compose([f"model={model}", "model.embedding.item=8", "model.embedding.cat=4", "model.mlp.width=16"])
    data = load_data(shop(tmp_path))
    net = build_model(cfg["model"], data.vocab, data.max_len, data.features)
    assert {"f_age", "f_hour"} <= set(net.input) and net.get_layer("item_brand_embedding")
    x, _ = next(iter(make_dataset(data, "train", 16, inputs=list(net.input))))
    before = np.asarray(net.predict(x, verbose=0))
    net.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(again.predict(x, verbose=0)), before, rtol=1e-6)
    # the table the model looks brands up in is the data set's, item id by item id
    table = net.get_layer("item_brand_table").table
    assert np.array_equal(np.asarray(table), data.items["brand"])
