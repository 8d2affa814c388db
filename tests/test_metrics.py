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


def test_the_bootstrap_resamples_users_and_is_the_same_for_every_model():
    from src.metrics import bootstrap

    rng = np.random.default_rng(2)
    users = rng.integers(0, 40, 800)
    y = rng.integers(0, 2, 800)
    p = np.round(rng.random(800), 2)
    q = np.clip(p + rng.normal(0, 0.1, 800), 0, 1)
    b, c = bootstrap(users, y, p, replicates=30, seed=5), bootstrap(users, y, q, replicates=30, seed=5)
    # one replicate, checked against sklearn and the metrics above on the explicit resample of users
    draw = np.random.default_rng(5).multinomial(40, np.full(40, 1 / 40), size=30)
    uniq, inv = np.unique(users, return_inverse=True)
    for k in (0, 17):
        w = draw[k][inv].astype(float)
        rows = np.repeat(np.arange(800), draw[k][inv])
        assert b["auc"][k] == pytest.approx(roc_auc_score(y, p, sample_weight=w), abs=1e-12)
        assert b["logloss"][k] == pytest.approx(logloss(y[rows], p[rows]), abs=1e-12)
        # gauc: users drawn twice count twice, with their own samples
        per = [(draw[k][j], (inv == j).sum(), roc_auc_score(y[inv == j], p[inv == j])) for j in range(40)
               if draw[k][j] and 0 < y[inv == j].sum() < (inv == j).sum()]
        assert b["gauc"][k] == pytest.approx(sum(d * n * a for d, n, a in per) / sum(d * n for d, n, _ in per))
    assert len(b["auc"]) == 30 and np.std(b["auc"]) > 0
    # the same resamples for two models: their paired difference varies less than either alone
    assert np.std(b["auc"] - c["auc"]) < np.std(b["auc"])
