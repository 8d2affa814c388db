"""Decisions, not only intervals: every question of a sweep ends better, worse, equivalent or undecided,
with the chance of any false call over the whole family of questions, and over every look at the
data, held at `ALPHA`.

A question is one factor level against its reference (src/answer/effects.py estimates its effect and
standard error). Its verdict comes from a repeated confidence interval (Jennison & Turnbull,
"Group Sequential Methods", ch. 9): at look k, after n_k trainings of a planned maximum N, the
interval is `effect +- c_k * se`, where the boundaries c_1, c_2, ... spend the error rate along
the looks by the Lan-DeMets O'Brien-Fleming function alpha(t) = 2 - 2 Phi(z_{a/2} / sqrt(t)) of the
information fraction t = n_k / N: early looks get wide intervals, the last one nearly the
fixed-sample width. The boundaries come from the joint normal law of the looks' statistics
(corr(Z_i, Z_j) = sqrt(t_i / t_j), scipy.stats.multivariate_normal), then become t quantiles at
each look's degrees of freedom. The family: each of the m questions gets alpha/m (Bonferroni), so
all the intervals of all the questions at all the looks cover their true effects together with
probability at least 1 - alpha, and every verdict read off them is right on that event:

- better / worse: the interval excludes 0 (on the better side / the worse side);
- equivalent: the interval lies inside +-delta (`sweep.equivalence`; for AUC-like metrics the
  CTR literature's 0.001, DIN paper section 6.6);
- undecided: neither, yet; with what deciding it would take (`price`).

A question decided at a look keeps that verdict and that look's interval (repeated confidence
intervals are valid at whichever look one stops). A sweep without sequential looks has one look at
t = 1, where the boundary is the fixed-sample Bonferroni interval.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.8
DELTA_DEFAULT = 0.001  # AUC: "0.001 absolute AUC gain is significant" (DIN paper 6.6; AutoInt, DCN say the same)
VERDICTS = ("better", "worse", "equivalent", "undecided")
VERDICT_CODE = {"worse": -1, "undecided": 0, "better": 1, "equivalent": 2}


def spent(t: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming alpha spending: the error rate spent by information fraction t."""
    if t <= 0:
        return 0.0
    return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(min(t, 1.0))))


def _inside(bounds: tuple, fractions: tuple) -> float:
    """P(|Z_i| < bounds_i for every look i) for the looks' statistics at these information fractions."""
    k = len(bounds)
    if k == 1:
        return float(2 * stats.norm.cdf(bounds[0]) - 1)
    t = np.asarray(fractions)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    b = np.asarray(bounds)
    # seeded: the integration is quasi-Monte Carlo, and a verdict must not change between two reports
    return float(stats.multivariate_normal.cdf(b, mean=np.zeros(k), cov=cov, lower_limit=-b,
                                               rng=np.random.default_rng(0)))


def _excess(c: float, before: tuple, fractions: tuple, target: float) -> float:
    """How much more than `target` the looks spend with boundary c at the last one."""
    return (1 - _inside(before + (c,), fractions)) - target


@functools.lru_cache(maxsize=256)
def boundaries(fractions: tuple, alpha: float) -> tuple:
    """Two-sided z boundaries c_1..c_K for looks at these increasing information fractions (t_K <= 1),
    spending alpha by O'Brien-Fleming: P(some |Z_k| >= c_k under no effect) = alpha(t_K).

    Each look's boundary depends only on the looks before it, so the boundaries of a prefix of the
    looks are a prefix of these (and are computed once, by the recursion)."""
    k = len(fractions) - 1
    target = spent(fractions[-1], alpha)
    if k == 0:
        return (float(stats.norm.ppf(1 - target / 2)),)
    before = boundaries(fractions[:-1], alpha)
    if target - (1 - _inside(before, fractions[:-1])) <= 1e-9:  # nothing left to spend: it cannot reject
        return before + (float("inf"),)
    c = optimize.brentq(_excess, 1.0, 10.0, args=(before, fractions, target), xtol=1e-5)
    return before + (float(c),)


@functools.lru_cache(maxsize=4096)  # every question at every look asks again for the same few
def critical(fractions: tuple, alpha: float, df: float | None) -> float:
    """The last look's multiplier of the standard error: its z boundary as a t quantile at df."""
    z = boundaries(tuple(round(f, 6) for f in fractions), round(alpha, 12))[-1]
    if not math.isfinite(z):
        return z
    if df is None or not math.isfinite(df):
        return z
    return float(stats.t.ppf(stats.norm.cdf(z), max(df, 1)))


def verdict(lo: float, hi: float, direction: str, delta: float) -> str:
    """better / worse (the interval excludes zero), equivalent (inside +-delta), undecided."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "undecided"
    if lo > 0 or hi < 0:
        return "better" if (lo > 0) == (direction == "maximize") else "worse"
    if -delta < lo and hi < delta:
        return "equivalent"
    return "undecided"


def fractions_of(looks: list[int], planned: int | None) -> tuple:
    """Information fractions of the looks (trainings so far at each) against the planned maximum."""
    top = max([planned or 0, *looks])
    return tuple(n / top for n in looks)


def decide(looks: list[dict], direction: str, delta: float, planned: int | None = None,
           alpha: float = ALPHA) -> list[dict]:
    """Every question's verdict over the looks taken so far: the first look whose repeated confidence
    interval decides it, else undecided with the last look's interval.

    Args:
        looks: in order, {"cells": trainings so far, "records": the effects records at that look}
            (src.answer.effects: "factor", "level", "reference", "effect", "se", "df", ...).
        direction: "maximize" or "minimize".
        delta: the equivalence margin, in the metric's units.
        planned: the planned maximum of trainings (the budget); None: the last look is the last.
        alpha: the family-wise error rate.

    Returns:
        the last look's records, each with "adj_low", "adj_high" (the interval the verdict uses),
        "verdict", "decided_at" (trainings at the deciding look, or None), "boundary" (the multiplier
        of se), "alpha_each", "delta", "adjustment", "verdict_method".
    """
    looks = [lk for lk in looks if lk["cells"] > 0]  # a look at no data spends nothing and tells nothing
    if not looks:
        return []
    last = looks[-1]["records"]
    m = max(1, len(last))
    each = alpha / m
    fr = fractions_of([lk["cells"] for lk in looks], planned)
    how = (f"Bonferroni over {m} question(s), O'Brien-Fleming spending over {len(looks)} look(s) "
           f"(information {fr[-1]:.2f} of the planned trainings)")
    by_look = [{question(r): r for r in lk["records"]} for lk in looks]
    out = []
    for r in last:
        q = question(r)
        final = dict(r, adj_low=None, adj_high=None, verdict="undecided", decided_at=None, boundary=None)
        for k, look in enumerate(by_look):
            rk = look.get(q)
            if rk is None or rk.get("effect") is None or rk.get("se") is None:
                continue
            c = critical(fr[: k + 1], each, rk.get("df"))
            lo, hi = rk["effect"] - c * rk["se"], rk["effect"] + c * rk["se"]
            v = verdict(lo, hi, direction, delta)
            final.update(adj_low=lo, adj_high=hi, verdict=v, boundary=c)
            if v != "undecided":
                final.update({k2: rk[k2] for k2 in ("effect", "se", "df") if k2 in rk},
                             decided_at=looks[k]["cells"])
                break
        final.update(alpha_each=each, delta=delta, adjustment=how,
                     verdict_method="repeated confidence interval vs 0 and +-delta")
        out.append(final)
    return out


def question(r: dict) -> str:
    return f"{r['factor']}={r['level']} vs {r['reference']}"


def price(r: dict, direction: str, cells: int, per_seed: int, alpha_each: float, delta: float,
          seconds_per_cell: float | None) -> dict | None:
    """What deciding an undecided question would take, if its effect and noise stay as estimated:
    the trainings (and seeds per configuration, and minutes at the measured rate) at which its
    interval at the fixed-sample boundary would exclude zero or fit inside +-delta."""
    est, se = r.get("effect"), r.get("se")
    if est is None or se is None or se <= 0:
        return None
    c = float(stats.norm.ppf(1 - alpha_each / 2))
    need = []
    if abs(est) > 0:
        need.append(("better" if (est > 0) == (direction == "maximize") else "worse",
                     cells * (c * se / abs(est)) ** 2))
    if abs(est) < delta:
        need.append(("equivalent", cells * (c * se / (delta - abs(est))) ** 2))
    if not need:
        return None
    towards, n = min(need, key=lambda x: x[1])
    seeds = int(math.ceil(max(n, cells) / max(per_seed, 1)))  # whole seeds: a block covers the design
    n = seeds * max(per_seed, 1)
    out = {"towards": towards, "trainings": n, "seeds": seeds, "more_trainings": n - cells}
    if seconds_per_cell:
        out["minutes"] = (n - cells) * seconds_per_cell / 60
    return out


def detectable_curve(se: float, cells: int, per_seed: int, alpha_each: float, seeds=range(1, 41)) -> list:
    """[(seeds per configuration, smallest effect found 80% of the time)] for an estimate whose standard
    error is `se` at `cells` trainings, scaling as 1/sqrt(trainings)."""
    z = stats.norm.ppf(1 - alpha_each / 2) + stats.norm.ppf(POWER)
    return [(s, float(z * se * math.sqrt(cells / (s * per_seed)))) for s in seeds]


def next_step(verdicts: list[str], cells: int, budget: int | None, block_cells: int) -> str:
    """After a look at its questions' `verdicts`: "decided" (every question is), "budget" (another block would
    pass it), or "continue"."""
    if all(v != "undecided" for v in verdicts):
        return "decided"
    if budget is None or cells + block_cells > budget:
        return "budget"
    return "continue"
