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


def bootstrap(users, y, p, replicates: int = 100, seed: int = 0) -> dict:
    """Each metric on `replicates` resamples of the users, drawn with replacement (a user's samples go
    together): the evaluation-sample noise of one trained model (Bouthillier et al. 2021). The resamples
    depend only on the users and `seed`, so models evaluated on the same users get the same resamples
    and their differences can be bootstrapped in pairs. Returns {metric: array [replicates]}."""
    import pandas as pd

    users, y, p = np.asarray(users), np.asarray(y, np.float64), np.asarray(p, np.float64)
    uniq, inv = np.unique(users, return_inverse=True)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(uniq), np.full(len(uniq), 1 / len(uniq)), size=replicates).astype(np.float64)
    pc = np.clip(p, EPS, 1 - EPS)
    row_loss = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    df = pd.DataFrame({"u": inv, "y": y, "p": p})
    df["r"] = df.groupby("u")["p"].rank(method="average")
    g = df.groupby("u").agg(n=("y", "size"), pos=("y", "sum"))
    g["rank_pos"] = df[df["y"] == 1].groupby("u")["r"].sum()
    both = (g["pos"] > 0) & (g["pos"] < g["n"])
    per_user = ((g["rank_pos"] - g["pos"] * (g["pos"] + 1) / 2) / (g["pos"] * (g["n"] - g["pos"])))[both]
    idx, n_u = per_user.index.to_numpy(), g["n"][both].to_numpy(np.float64)
    w = counts[:, inv]  # [replicates, samples]: each sample weighted by how often its user was drawn
    wu = counts[:, idx] * n_u
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"logloss": (w @ row_loss) / w.sum(1), "auc": _weighted_auc(y, p, w),
                "gauc": (wu @ per_user.to_numpy()) / wu.sum(1)}


def _weighted_auc(y, p, w) -> np.ndarray:
    """ROC AUC with sample weights, ties counted half, for each row of weights w [replicates, samples]:
    the weighted rank-sum formula over groups of equal scores."""
    order = np.argsort(p, kind="stable")
    ps, ys, ws = p[order], y[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    pos = np.add.reduceat(ws * ys, starts, axis=1)
    neg = np.add.reduceat(ws * (1 - ys), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    return (pos * (below + 0.5 * neg)).sum(1) / (pos.sum(1) * neg.sum(1))


HIGHER_IS_BETTER = {"auc": True, "gauc": True, "logloss": False}
