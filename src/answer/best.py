"""The best configuration, as a confidence set: the configurations that cannot be told from the best.

The maximum of noisy means is not a finding: among configurations within seed noise of each other, which one
has the highest mean is a coin toss (the winner's curse). What can be said, with error control, is which
configurations could still be the best. This is Hsu's multiple comparisons with the best (Hsu, "Constrained
simultaneous confidence intervals for multiple comparisons with the best", Annals of Statistics 12, 1984):
configuration i stays in the set unless another one is shown better than it. The true best is excluded only
if one of its own k - 1 comparisons with the others misses, whichever configuration it is, so k - 1
comparisons share the error, not k(k - 1)/2. Each comparison is the difference of two configurations'
seed-adjusted means (least squares with the configuration and the seed as terms, as src/answer/effects.py
fits main effects), with src/answer/decision.py's anytime-valid confidence sequence at alpha / (k - 1): the
set holds the best at every look at once, however many seeds are added and whenever the sweep stops (in the
spirit of anytime-valid best-arm identification: Jamieson and Nowak 2014; Kaufmann, Cappe and Garivier 2016).

Each member's interval is Hsu's: its mean minus the best mean of the others, clipped at 0 where the
comparisons allow no more. The verdict:

- best: one configuration remains;
- any of these: every member is within +-delta of the best of the others (each member's interval lies above
  -delta): whichever is chosen, it is at most delta worse than the best;
- undecided: neither, with the seeds per configuration that would decide the closest comparison with the
  leader (src/answer/decision.py's price).

The set's error is its own: the chance that it misses the best is at most `alpha`, beside the questions'
family (src/answer/decision.py), which it takes nothing from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from src.answer import decision
from src.answer.effects import key

VERDICTS = ("best", "any of these", "undecided")


def name(levels: dict) -> str:
    """A configuration's name from its levels, as the report and the export print it."""
    return " ".join(f"{k}={v}" for k, v in levels.items()) or "(base config)"


@dataclass
class Member:
    """A configuration that may be the best: its levels, seed-adjusted mean, interval of its mean minus the best
    of the others' (Hsu's), and its trainings."""

    levels: dict
    mean: float
    low: float | None
    high: float | None
    trainings: int

    @property
    def name(self) -> str:
        return name(self.levels)


@dataclass
class BestSet:
    """The confidence set of the best configuration at one look."""

    members: list[Member]      # the leader (the best mean) first, then by mean
    verdict: str               # best, any of these, undecided
    configurations: int        # the configurations compared
    alpha: float               # the chance the set misses the best, at most
    alpha_each: float          # each comparison's share: alpha / (configurations - 1)
    delta: float
    trainings: int
    price: decision.Price | None = None  # undecided: decision.price of the closest comparison with the leader
    block: str | None = None
    reason: str | None = None  # why nothing can be said yet (too few seeds), when so
    excluded: list[str] = field(default_factory=list)  # the configurations shown worse than another

    @property
    def leader(self) -> Member:
        return self.members[0]

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"a best set's verdict is one of {VERDICTS}, not {self.verdict!r}")


def _fit(obs: list[dict], configs: list[str]):
    """Least squares of the value on the configuration and the seed (two-way, unbalanced as racing leaves it):
    each configuration's mean over the average seed, the unscaled covariance of their differences (any of
    its contrasts), the residual variance and its df. The seeds are eliminated first (the reduced normal
    equations, a k x k system), so a look costs the same at 3 seeds as at 300."""
    index = {c: i for i, c in enumerate(configs)}
    seeds = {s: i for i, s in enumerate(sorted({str(o["seed"]) for o in obs}))}
    ci = np.array([index[key(o["config"])] for o in obs])
    si = np.array([seeds[str(o["seed"])] for o in obs])
    y = np.array([o["value"] for o in obs], dtype=float)
    k, n_s = len(configs), len(seeds)
    inc = np.zeros((k, n_s))
    np.add.at(inc, (ci, si), 1.0)
    per_seed = inc.sum(0)
    y_c, y_s = np.bincount(ci, y, k), np.bincount(si, y, n_s)
    reduced = np.diag(inc.sum(1)) - (inc / per_seed) @ inc.T
    unscaled = np.linalg.pinv(reduced)
    beta = unscaled @ (y_c - inc @ (y_s / per_seed))
    gamma = (y_s - inc.T @ beta) / per_seed
    rank = np.linalg.matrix_rank(reduced) + n_s
    df = len(y) - rank
    rss = float(y @ y - beta @ y_c - gamma @ y_s)
    s2 = max(rss, 0.0) / df if df > 0 else math.nan
    return beta + gamma.mean(), unscaled, s2, df


def confidence_set(observations: list[dict], direction: str, delta: float, alpha: float = decision.ALPHA,
                   per_seed: int | None = None, seconds_per_cell: float | None = None,
                   block: str | None = None, priced: bool = True) -> BestSet | None:
    """The configurations that cannot be told from the best, from one observation per cell
    ({"config", "seed", "value"}, src/answer/summary.py `observations`); None under two configurations.
    `priced`: an undecided set gets its price (simulations that only read the set leave it out)."""
    groups: dict[str, list[dict]] = {}
    for o in observations:
        groups.setdefault(key(o["config"]), []).append(o)
    configs = sorted(groups)
    k = len(configs)
    if k < 2:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    mean, unscaled, s2, df = _fit(observations, configs)
    each = alpha / (k - 1)
    order = sorted(range(k), key=lambda i: -sign * mean[i])
    levels = {c: groups[c][0]["config"] for c in configs}
    counts = {c: len(groups[c]) for c in configs}
    if not df or df < 1 or not math.isfinite(s2):
        members = [Member(levels[configs[i]], float(mean[i]), None, None, counts[configs[i]]) for i in order]
        return BestSet(members, "undecided", k, alpha, each, delta, len(observations), None, block,
                       "one seed per configuration: the seed noise cannot be measured, so no configuration can "
                       "be told from another (add seeds: sweep.seeds)")

    def comparison(i, j):
        """(i better than j by, its se, its n_eff, the confidence sequence's multiplier)."""
        var = unscaled[i, i] + unscaled[j, j] - 2 * unscaled[i, j]
        se = math.sqrt(max(s2 * var, 0.0))
        n_eff = 1 / var if var > 0 else math.inf
        c = decision.multiplier(round(float(df), 6), round(float(n_eff), 6), round(each, 12))
        return sign * (mean[i] - mean[j]), se, n_eff, c

    pairs = {(i, j): comparison(i, j) for i in range(k) for j in range(k) if i != j}
    low, high, inside = {}, {}, []
    for i in range(k):
        ups = [d + c * se for (a, _), (d, se, _, c) in pairs.items() if a == i]
        downs = [d - c * se for (a, _), (d, se, _, c) in pairs.items() if a == i]
        high[i], low[i] = max(0.0, min(ups)), min(0.0, min(downs))
        if high[i] > 0 or not all(math.isfinite(u) for u in ups):
            inside.append(i)
    members = [Member(levels[configs[i]], float(mean[i]), sign * low[i] if sign > 0 else -high[i],
                      sign * high[i] if sign > 0 else -low[i], counts[configs[i]])
               for i in order if i in inside]
    leader = order[0]
    if len(inside) == 1:
        verdict = "best"
    elif all(math.isfinite(low[i]) and low[i] > -delta for i in inside):
        verdict = "any of these"
    else:
        verdict = "undecided"
    out = BestSet(members, verdict, k, alpha, each, delta, len(observations), None, block,
                  excluded=[name(levels[configs[i]]) for i in order if i not in inside])
    if verdict == "undecided" and priced:
        out.price = _price(pairs, leader, inside, df, len(observations), per_seed or k, each, delta,
                           seconds_per_cell)
    return out


def _price(pairs: dict, leader: int, inside: list[int], df: float, cells: int, per_seed: int, each: float,
           delta: float, seconds_per_cell: float | None) -> decision.Price | None:
    """The seeds per configuration at which every comparison of the leader with a member left decides (that
    member shown worse, or within delta) with the price's chance: the dearest of those comparisons."""
    dearest = None
    for i in inside:
        if i == leader:
            continue
        d, se, n_eff, _ = pairs[(leader, i)]
        p = decision.price({"effect": d, "se": se, "df": df, "n_eff": n_eff}, "maximize", cells, per_seed, each,
                           delta, seconds_per_cell)
        if p is None:
            return None
        if dearest is None or p.seeds > dearest.seeds:
            dearest = p
    return dearest


def to_dict(b: BestSet) -> dict:
    """The set as effects.json's `best` record (JSON-safe: infinite ends as null)."""
    d = asdict(b)
    for m in d["members"]:
        for k in ("low", "high"):
            if m[k] is not None and not math.isfinite(m[k]):
                m[k] = None
    return d


def from_dict(d: dict) -> BestSet:
    return BestSet(**{**d, "members": [Member(**m) for m in d["members"]],
                      "price": decision.Price.from_dict(d.get("price"))})
