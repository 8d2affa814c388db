"""The known answer: on the synthetic data at default settings, DIN beats the sum-pooling base and
DIEN beats DIN in AUC by clear margins."""

import pytest

from src.config import compose
from src.run.training import train_run


@pytest.mark.slow
def test_din_beats_base_and_dien_beats_din(store):
    auc = {}
    for model in ("base", "din", "dien"):
        overrides = ["data=synthetic", f"model={model}"] + store
        auc[model] = train_run(compose(overrides), overrides, log=lambda m: None).test["auc"]
    print("test AUC at defaults:", auc)
    assert auc["din"] > auc["base"] + 0.02, auc
    assert auc["dien"] > auc["din"] + 0.02, auc
