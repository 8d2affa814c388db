import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from src.metrics import auc, gauc, logloss


def test_auc_and_logloss_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500), 2)  # ties included
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert logloss(y, p) == pytest.approx(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), abs=1e-12)
    assert np.isnan(auc(np.ones(4), np.arange(4)))


def test_gauc_is_user_weighted_over_users_with_both_labels():
    rng = np.random.default_rng(1)
    users = rng.integers(0, 30, 600)
    y = rng.integers(0, 2, 600)
    y[users == 3] = 1  # one user with a single label: left out
    p = rng.random(600)
    num = den = 0.0
    for u in np.unique(users):
        m = users == u
        if 0 < y[m].sum() < m.sum():
            num += m.sum() * roc_auc_score(y[m], p[m])
            den += m.sum()
    assert gauc(users, y, p) == pytest.approx(num / den, abs=1e-12)
    assert np.isnan(gauc([1, 1], [1, 1], [0.2, 0.3]))
