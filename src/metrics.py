"""Evaluation metrics (docs/data.md, "Metrics"), each named for what it computes.

- auc: ROC AUC over all samples.
- gauc: the DIN paper's user-weighted AUC, sum_u n_u AUC_u / sum_u n_u over
  users with both labels present (n_u = the user's number of samples).
- logloss: mean binary cross-entropy.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def logloss(y, p) -> float:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    y = np.asarray(y, np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _auc_from_ranks(ranks, y):
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    return (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc(y, p) -> float:
    """ROC AUC by the rank-sum formula, ties counted half. NaN when only one label is present."""
    import pandas as pd

    y = np.asarray(y, np.float64)
    if len(np.unique(y)) < 2:
        return float("nan")
    ranks = pd.Series(np.asarray(p, np.float64)).rank(method="average").to_numpy()
    return float(_auc_from_ranks(ranks, y))


def gauc(users, y, p) -> float:
    """User-weighted AUC over users with both labels (DIN paper); NaN if there are none."""
    import pandas as pd

    df = pd.DataFrame({"u": np.asarray(users), "y": np.asarray(y, np.float64), "p": np.asarray(p, np.float64)})
    df["r"] = df.groupby("u")["p"].rank(method="average")
    g = df.groupby("u").agg(n=("y", "size"), pos=("y", "sum"))
    g["rank_pos"] = df[df["y"] == 1].groupby("u")["r"].sum()
    g = g[(g["pos"] > 0) & (g["pos"] < g["n"])]
    if g.empty:
        return float("nan")
    neg = g["n"] - g["pos"]
    per_user = (g["rank_pos"] - g["pos"] * (g["pos"] + 1) / 2) / (g["pos"] * neg)
    return float((per_user * g["n"]).sum() / g["n"].sum())


def evaluate(users, y, p) -> dict:
    return {"logloss": logloss(y, p), "auc": auc(y, p), "gauc": gauc(users, y, p)}


HIGHER_IS_BETTER = {"auc": True, "gauc": True, "logloss": False}
