"""Decisions, not only intervals: every question of a sweep ends better, worse, equivalent or undecided,
with the chance of any false call over the whole family of questions, over every look at the data, and
over every way of going on after a look (more seeds, a larger budget, a resume) held at `ALPHA`.

A question is one factor level against its reference (src/answer/effects.py estimates its effect, its
standard error, its degrees of freedom and its information `n_eff`, the squared ratio of the residual
SD to the standard error). Its verdict comes from an anytime-valid confidence sequence for that
regression coefficient: Lindon, Ham, Tingley and Bojinov, "Anytime-valid linear models and regression
adjusted causal inference in randomized experiments" (arXiv 2210.08589), the normal-mixture Bayes
factor of the coefficient's t statistic, as in their avlm package. At a look with t = (effect - x) / se,
nu residual degrees of freedom and information z2,

    log BF(x) = 1/2 log(r) + (nu + 1)/2 * (log(1 + t^2/nu) - log(1 + r t^2/nu)),  r = phi / (phi + z2),

and the interval is every x with BF(x) < 1/alpha: `effect +- c * se`, with c from `multiplier`. It is
valid at every look at once, with no planned maximum: the study may add seeds forever and stop
whenever, for any reason, the results so far included. The running intersection of a question's
intervals is valid too, and is what the verdict reads. The family: each of the m questions gets
alpha/m (Bonferroni), so all the intervals of all the questions at all the looks cover their true
effects together with probability at least 1 - alpha, and every verdict read off them is right on
that event:

- better / worse: the interval excludes 0 (on the better side / the worse side);
- equivalent: the interval lies inside +-delta (`sweep.equivalence`; for AUC-like metrics the
  CTR literature's 0.001, DIN paper section 6.6);
- undecided: neither, yet; with what deciding it would take and the chance of it (`price`).

A look's decisions are recorded with it (src/sweep/answer.py) and never recomputed: a question decided
at a look keeps that verdict, that interval and that `decided_at`, whatever the budget is later.
docs/answer.md says why this procedure and not a group-sequential one, with the simulations.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import optimize, stats

from src.answer.boundary import WIDEST, Plan
from src.answer.boundary import multiplier as planned_multiplier

ALPHA = 0.05
POWER = 0.8
PHI = 1.0  # the mixture's precision on the standardized effect (effect / residual SD); chosen by simulation
DELTA_DEFAULT = 0.001  # AUC: "0.001 absolute AUC gain is significant" (DIN paper 6.6; AutoInt, DCN say the same)
VERDICTS = ("better", "worse", "equivalent", "undecided")
VERDICT_CODE = {"worse": -1, "undecided": 0, "better": 1, "equivalent": 2}
CODE_VERDICT = {c: v for v, c in VERDICT_CODE.items()}
PROCEDURE = "anytime-valid confidence sequence (Lindon et al.)"


def procedure(plan: Plan | None) -> str:
    """The procedure's name as the report gives it."""
    if plan is None:
        return PROCEDURE
    return (f"a group-sequential boundary over a plan of seeds {plan.first} to {plan.last} at {plan.share:.0%} "
            f"of each question's error, and the {PROCEDURE} at the rest")
MOST_SEEDS = 10_000  # the most seeds per configuration a price looks at


def log_bf(t2: float, nu: float, n_eff: float, phi: float = PHI) -> float:
    """The log Bayes factor of a coefficient's squared t statistic against no effect (normal mixture)."""
    r = phi / (phi + n_eff)
    return 0.5 * math.log(r) + 0.5 * (nu + 1) * (math.log1p(t2 / nu) - math.log1p(r * t2 / nu))


@functools.lru_cache(maxsize=8192)  # every question at every look asks again for the same few
def multiplier(df: float, n_eff: float, alpha: float, phi: float = PHI) -> float:
    """The confidence sequence's half-width in standard errors at this look: the |t| at which the Bayes
    factor reaches 1/alpha; infinite when no |t| does (too few degrees of freedom)."""
    if df is None or n_eff is None or df < 1 or n_eff <= 0:
        return math.inf
    target = math.log(1 / alpha)

    def gap(t):
        return log_bf(t * t, df, n_eff, phi) - target

    hi = 2.0
    while gap(hi) < 0:
        hi *= 2
        if hi > WIDEST:
            return math.inf
    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-7))


def _information(r: dict, df: float) -> float:
    """A record's `n_eff`; df + 1 (a paired comparison's) for the looks of studies recorded before it was kept."""
    return r.get("n_eff") or df + 1


def combined(df: float, n_eff: float, seeds, alpha_each: float, plan: Plan | None = None) -> float:
    """A look's multiplier of its standard error: without a plan, the confidence sequence's at alpha_each;
    with one (src/answer/boundary.py), the narrower of the confidence sequence's at (1 - share) * alpha_each
    and, on the plan's grid of whole seeds, the planned boundary at share * alpha_each."""
    if not df:
        return math.inf
    rest = alpha_each if plan is None else (1 - plan.share) * alpha_each
    c = multiplier(round(float(df), 6), round(float(n_eff), 6), round(rest, 12))
    return c if plan is None else min(c, planned_multiplier(plan, seeds, df, alpha_each))


def boundary(r: dict, alpha: float, plan: Plan | None = None) -> float:
    """A record's multiplier of its standard error (`seeds`: the whole seeds its look had, if it had them)."""
    df = r.get("df")
    return combined(df, _information(r, df), r.get("seeds"), alpha, plan) if df else math.inf


def verdicts(lo, hi, direction: str, delta: float) -> np.ndarray:
    """The verdicts of intervals [lo, hi], as `VERDICT_CODE`s, for arrays of them at once (the simulations
    decide thousands of sweeps a look): better / worse when the interval excludes zero, equivalent when it
    lies inside +-delta, else undecided: an unbounded end too, and an empty interval (a running intersection
    that emptied: coverage has failed, and no verdict is read off it)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    finite = np.isfinite(lo) & np.isfinite(hi) & (lo <= hi)
    up, down = ("better", "worse") if direction == "maximize" else ("worse", "better")
    v = np.full(lo.shape, VERDICT_CODE["undecided"])
    v[finite & (hi < 0)] = VERDICT_CODE[down]
    v[finite & (lo > 0)] = VERDICT_CODE[up]
    v[finite & (lo > -delta) & (hi < delta) & (v == VERDICT_CODE["undecided"])] = VERDICT_CODE["equivalent"]
    return v


def verdict(lo: float, hi: float, direction: str, delta: float) -> str:
    """One interval's verdict (`verdicts`), in words."""
    return CODE_VERDICT[int(verdicts(lo, hi, direction, delta))]


def name(factor: str, level: Any, reference: Any, block: str | None = None) -> str:
    """A question's name, as the report, the terminal and the looks name it: `factor=level vs reference`, and
    within a block (src/answer/blocks.py) the block's name after an @."""
    return f"{factor}={level} vs {reference}" + (f" @ {block}" if block else "")


def question(r: dict) -> str:
    """The name of the question an effects record (src/answer/effects.py) estimates."""
    return name(r["factor"], r["level"], r["reference"], r.get("block"))


# what a look records of each decision (src/sweep/answer.py), in the words looks have always used: adj_low and
# adj_high are the verdict's interval
RECORDED = ("adj_low", "adj_high", "verdict", "boundary", "alpha_each", "decided_at", "effect", "se", "df", "n_eff",
            "empty_at")


@dataclass(frozen=True)
class Decision:
    """One question's decision over the looks taken (`decide`).

    verdict_low, verdict_high: the interval the verdict uses, the running intersection of the question's
    confidence sequence up to its deciding look (the last look while undecided; low above high when the
    intersection is empty, and then `empty_at`, the trainings at the look that emptied it);
    effect, se, df, n_eff: the estimate at that look; now_low, now_high, now_effect, now_se: the running
    intersection and the estimate at the last look, which go on past a decision (src/answer/blocks.py
    compares blocks on them).
    """

    factor: str
    level: Any
    reference: Any
    verdict: str
    alpha_each: float
    block: str | None = None
    verdict_low: float | None = None
    verdict_high: float | None = None
    decided_at: int | None = None   # the trainings at the deciding look
    boundary: float | None = None   # the multiplier of se there
    effect: float | None = None
    se: float | None = None
    df: float | None = None
    n_eff: float | None = None
    empty_at: int | None = None
    delta: float | None = None
    looks: int | None = None        # the looks the verdict accounts for
    adjustment: str | None = None
    verdict_method: str | None = None
    now_low: float | None = None
    now_high: float | None = None
    now_effect: float | None = None
    now_se: float | None = None

    @property
    def name(self) -> str:
        return name(self.factor, self.level, self.reference, self.block)

    def recorded(self) -> dict:
        """What a look records of it (`RECORDED`), read back by `decide` and never recomputed."""
        out = {"adj_low": self.verdict_low, "adj_high": self.verdict_high}
        return {k: out[k] if k in out else getattr(self, k) for k in RECORDED}


def decide(looks: list[dict], direction: str, delta: float, alpha: float = ALPHA,
           family: int | None = None, plan: Plan | None = None) -> list[Decision]:
    """Every question's verdict over the looks taken so far: the first look whose interval (the running
    intersection of its confidence sequence) decides it, else undecided with the last look's interval.

    A look may carry the decisions taken when it was taken (`"decisions"`: {question: Decision.recorded()});
    those are kept as they are, never recomputed.

    Args:
        looks: in order, {"cells": trainings so far, "records": the effects records at that look
            (src/answer/effects.py: "factor", "level", "reference", "effect", "se", "df", "n_eff"),
            optionally "decisions"}.
        direction: "maximize" or "minimize".
        delta: the equivalence margin, in the metric's units.
        alpha: the family-wise error rate.
        family: how many questions the sweep can ask, every block's included (src/sweep/answer.py counts
            them from its definition); each gets alpha / family from its first look on, so a block whose
            cells come later (a first look taken when a sweep was stopped early) adds no share that the
            earlier questions spent. None: the last look's questions.
        plan: the study's plan (src/answer/boundary.py), recorded at its first look; None (studies without
            one, and those recorded before plans were): the confidence sequence alone.

    Returns:
        a `Decision` for each question of the last look. An empty intersection (`empty_at`) means some look's
        interval missed the true effect, which the family's error allows, or the runs are not the
        exchangeable draws the procedure assumes: no verdict is read off it.
    """
    looks = [lk for lk in looks if lk["cells"] > 0]  # a look at no data spends nothing and tells nothing
    if not looks:
        return []
    last = looks[-1]["records"]
    m = max(1, family or len(last), len(last))
    each = alpha / m
    how = (f"Bonferroni over {m} question(s); {procedure(plan)}, valid at each of the {len(looks)} look(s) "
           f"taken and at any later one, whatever the budget")
    out = []
    for r in last:
        q = question(r)
        final = dict(r, adj_low=None, adj_high=None, verdict="undecided", decided_at=None, boundary=None,
                     alpha_each=each)
        for look in looks:
            d = (look.get("decisions") or {}).get(q) or _decision(_find(look, q), look["cells"], final, each,
                                                                 direction, delta, plan)
            if d is None:
                continue
            final.update(d)
            if d["verdict"] != "undecided":
                break
        final.update(delta=delta, looks=len(looks), adjustment=how,
                     verdict_method="anytime-valid interval vs 0 and +-delta", **_running(looks, q, each, plan))
        out.append(Decision(
            factor=r["factor"], level=r["level"], reference=r["reference"], block=r.get("block"),
            verdict=final["verdict"], verdict_low=final["adj_low"], verdict_high=final["adj_high"],
            **{k: final.get(k) for k in ("alpha_each", "decided_at", "boundary", "effect", "se", "df", "n_eff",
                                         "empty_at", "delta", "looks", "adjustment", "verdict_method", "now_low",
                                         "now_high", "now_effect", "now_se")}))
    return out


def _running(looks: list[dict], q: str, each: float, plan: Plan | None) -> dict:
    """The confidence sequence's running intersection over every look, past a decision too (a decided
    question keeps the interval that decided it; src/answer/blocks.py compares blocks on this one), and the
    last look's effect and se (a decided question keeps the estimate of its deciding look, which the
    stopping biases away from zero)."""
    now, rec = {}, {}
    for look in looks:
        r = _find(look, q)
        d = _decision(r, look["cells"], now, each, "maximize", 0.0, plan)
        now, rec = d or now, (r if d else rec)
    return {"now_low": now.get("adj_low"), "now_high": now.get("adj_high"), "now_effect": rec.get("effect"),
            "now_se": rec.get("se")}


def _find(look: dict, q: str) -> dict | None:
    return next((r for r in look["records"] if question(r) == q), None)


def _decision(rk: dict | None, cells: int, before: dict, each: float, direction: str, delta: float,
              plan: Plan | None = None) -> dict | None:
    """One look's decision on one question, from its record and the interval before it (intersected)."""
    if rk is None or rk.get("effect") is None or rk.get("se") is None:
        return None
    c = boundary(rk, each, plan)
    lo, hi = rk["effect"] - c * rk["se"], rk["effect"] + c * rk["se"]
    if before.get("adj_low") is not None:
        lo, hi = max(lo, before["adj_low"]), min(hi, before["adj_high"])
    if lo > hi or before.get("empty_at"):  # no effect lies in every look's interval: coverage has failed
        return {"adj_low": lo, "adj_high": hi, "verdict": "undecided", "boundary": c, "alpha_each": each,
                "decided_at": None, "empty_at": before.get("empty_at") or cells}
    v = verdict(lo, hi, direction, delta)
    d = {"adj_low": lo, "adj_high": hi, "verdict": v, "boundary": c, "alpha_each": each,
         "decided_at": cells if v != "undecided" else None}
    if v != "undecided":
        d.update({k: rk[k] for k in ("effect", "se", "df", "n_eff") if k in rk})
    return d


def _at(r: dict, cells: int, n: int, alpha_each: float, plan: Plan | None = None) -> tuple[float, float, float]:
    """At a future look after n trainings, if the effect and noise stay as estimated now: the standard error,
    the boundary the look will use then, and the SD of that look's estimate given today's."""
    grow = n / cells
    se_n = r["se"] / math.sqrt(grow)
    df = r.get("df") or cells - 1
    seeds = round(r["seeds"] * grow, 6) if r.get("seeds") else None
    c = combined(round(df * grow, 3), round(_information(r, df) * grow, 3), seeds, alpha_each, plan)
    return se_n, c, r["se"] * math.sqrt(cells * max(n - cells, 0)) / n


def _undecided(m, sd: float, b: float, delta: float):
    """The chance a look's estimate, N(m, sd^2), leaves its interval (half-width b) undecided: 0 inside the
    interval and the interval not inside +-delta: the estimate in the band delta - b <= |estimate| <= b."""
    def cdf(x):
        return stats.norm.cdf((x - m) / sd)

    inner = min(max(delta - b, 0.0), b)
    return np.maximum((cdf(b) - cdf(-b)) - (cdf(inner) - cdf(-inner)), 0.0)


def chance(r: dict, direction: str, cells: int, n: int, alpha_each: float, delta: float,
           plan: Plan | None = None) -> tuple[str, float]:
    """The verdict a look after n trainings would most likely reach, and the chance that it reaches any
    verdict, given the results so far and the noise as estimated (predictive power: the true effect is as
    uncertain as its estimate, N(effect, se^2), not fixed at it, which overstated the chance)."""
    est = r["effect"]
    se_n, c, _ = _at(r, cells, n, alpha_each, plan)
    sd = r["se"] * math.sqrt(max(n - cells, 0) / n)  # the look's estimate, given today's, the effect unknown
    if not math.isfinite(c) or sd <= 0:
        return "undecided", 0.0
    b = c * se_n  # the interval's half-width at that look
    room = delta - b
    side = "better" if (est >= 0) == (direction == "maximize") else "worse"
    p_side = stats.norm.sf((b - est) / sd) if est >= 0 else stats.norm.cdf((-b - est) / sd)
    p_in = stats.norm.cdf((room - est) / sd) - stats.norm.cdf((-room - est) / sd) if room > 0 else 0.0
    return ("equivalent" if p_in > p_side else side), 1.0 - float(_undecided(est, sd, b, delta))


def least(r: dict, cells: int, n: int, alpha_each: float, delta: float, plan: Plan | None = None) -> float:
    """The chance that the look after n trainings decides if the true effect is the hardest one the interval
    so far allows (r's "now_low", "now_high"; unbounded without them), the noise as estimated: a floor that
    holds at every effect the interval covers, where `chance`, an average over the plausible effects, can
    fall short (near +-delta/2, which needs the interval narrow on both sides)."""
    se_n, c, sd = _at(r, cells, n, alpha_each, plan)
    if not math.isfinite(c) or sd <= 0:
        return 0.0
    b, est, grow = c * se_n, r["effect"], n / (n - cells)
    lo, hi = r.get("now_low"), r.get("now_high")
    lo, hi = (-math.inf if lo is None else lo), (math.inf if hi is None else hi)
    # the look's mean given today's estimate and a true effect t: (cells * est + (n - cells) * t) / n
    band = (max(delta - b, 0.0) + b) / 2
    means = np.concatenate([np.linspace(-b - 4 * sd, b + 4 * sd, 401), [0.0, band, -band]])
    effects = means * grow - est * cells / (n - cells)
    means = means[(effects >= lo) & (effects <= hi)]
    ends = [(cells * est + (n - cells) * t) / n for t in (lo, hi) if math.isfinite(t)]
    means = np.concatenate([means, ends])
    return 1.0 - float(np.max(_undecided(means, sd, b, delta))) if means.size else 1.0


def certain(r: dict, cells: int, per_seed: int, alpha_each: float, delta: float,
            most_seeds: int = MOST_SEEDS, plan: Plan | None = None) -> int | None:
    """The fewest seeds per configuration whose look decides whatever the effect, if the noise stays as
    estimated: its interval is at most delta wide, so it excludes 0 or lies inside +-delta."""
    per = max(per_seed, 1)

    def sure(seeds):
        se_n, c, _ = _at(r, cells, seeds * per, alpha_each, plan)
        return 2 * c * se_n <= delta

    return _fewest_planned(sure, 0, max(1, math.floor(cells / per)), most_seeds, _last(r, plan))


def _fewest(ok, lo: int, hi: int, most: int) -> int | None:
    """The fewest seeds above `lo` for which `ok` holds (it holds for all more, once it does), starting the
    search at `hi`: doubling, then bisection. None past `most`."""
    while not ok(hi):
        lo, hi = hi, 2 * hi
        if hi > most:
            return None
    return _bisect(ok, lo, hi)


def _bisect(ok, lo: int, hi: int) -> int:
    """The fewest seeds above `lo` for which `ok` holds, given that it holds at `hi` and for all more."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


NOISE_LEVEL = 0.8  # the share of the noise estimate's interval that a price's range of seeds spans


def noise_range(df: float, level: float = NOISE_LEVEL) -> tuple[float, float]:
    """The interval of the true residual variance over its estimate (central, `level`), from the estimate's
    chi-squared distribution with `df` degrees of freedom: 0.69-1.69 at 17, 0.90-1.11 at 300."""
    tail = (1 - level) / 2
    return float(df / stats.chi2.ppf(1 - tail, df)), float(df / stats.chi2.ppf(tail, df))


def _last(r: dict, plan: Plan | None) -> int | None:
    """The plan's last seed, where the boundary widens to the confidence sequence's alone; None without a plan
    or where the record's seeds are not the sweep's (a look on no whole number of seeds)."""
    return plan.last if plan is not None and r.get("seeds") else None


def _fewest_planned(ok, lo: int, hi: int, most: int, last: int | None) -> int | None:
    """`_fewest`, where `ok` grows with the seeds up to a plan's `last` seed and again past it, but falls
    there (the planned boundary ends): the fewest within the plan if any, else the fewest past it."""
    if last is None or last <= lo:
        return _fewest(ok, lo, hi, most)
    if ok(last):
        return _bisect(ok, lo, last)
    return _fewest(ok, last, last + 1, most)


def _fewest_seeds(r: dict, direction: str, cells: int, per: int, alpha_each: float, delta: float, power: float,
                  most_seeds: int, plan: Plan | None = None) -> int | None:
    """The fewest whole seeds per configuration whose look decides with at least `power` chance (`chance`)."""
    def enough(seeds):
        return chance(r, direction, cells, seeds * per, alpha_each, delta, plan)[1] >= power

    now = max(1, math.floor(cells / per))
    return _fewest_planned(enough, now, now + 1, most_seeds, _last(r, plan))


@dataclass(frozen=True)
class Price:
    """What deciding an undecided question would take (`price`); effects.json's `price` record."""

    towards: str                    # the likeliest verdict
    trainings: int                  # at the priced look, in all
    seeds: int                      # per configuration, at the priced look
    more_trainings: int             # beyond those spent
    chance: float                   # to decide there, on average over the effects still plausible
    least: float | None = None      # the chance there at the hardest effect the interval still allows
    certain_seeds: int | None = None  # the seeds whose look decides whatever the effect
    plan_seeds: int | None = None   # the plan's last seed (None: no plan)
    seeds_low: int | None = None    # the price with the noise at the low end of its range (None: not recorded)
    seeds_high: int | None = None   # ... at the high end (None: beyond the most seeds priced)
    minutes: float | None = None    # at the measured rate (None: no rate yet)

    @classmethod
    def from_dict(cls, d: dict | None) -> Price | None:
        """A price as effects.json holds it (older versions lack the later fields)."""
        if d is None:
            return None
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def price(r: dict, direction: str, cells: int, per_seed: int, alpha_each: float, delta: float,
          seconds_per_cell: float | None, power: float = POWER, most_seeds: int = MOST_SEEDS,
          seconds_per_block: float | None = None, block_cells: int | None = None,
          plan: Plan | None = None) -> Price | None:
    """What deciding an undecided question would take, if its noise stays as estimated: the fewest whole
    seeds per configuration (trainings, minutes at the measured rate) at which the look reaches a verdict
    with at least `power` chance (`chance`), with the boundary the confidence sequence will use at that
    look; the chance at the hardest effect the interval allows (`least`); and the seeds whose look decides
    whatever the effect (`certain_seeds`). `seeds_low`, `seeds_high`: the same price with the residual
    variance at either end of its `NOISE_LEVEL` interval (`noise_range`), for the noise is itself an estimate
    (None: beyond `most_seeds`). The minutes count each block's fixed cost too (`seconds_per_block`, for
    every `block_cells` trainings more). `plan_seeds`: the plan's last seed, past which only the confidence
    sequence's share of the error is left. None when no number of seeds up to `most_seeds` gets there."""
    if r.get("effect") is None or not r.get("se") or r["se"] <= 0 or cells < 1:
        return None
    per = max(per_seed, 1)
    hi = _fewest_seeds(r, direction, cells, per, alpha_each, delta, power, most_seeds, plan)
    if hi is None:
        return None
    n = hi * per
    towards, p = chance(r, direction, cells, n, alpha_each, delta, plan)
    low, high = noise_range(r.get("df") or cells - 1)
    seeds_low, seeds_high = (
        _fewest_seeds({**r, "se": r["se"] * math.sqrt(v)}, direction, cells, per, alpha_each, delta, power,
                      most_seeds, plan) for v in (low, high))
    minutes = None
    if seconds_per_cell:
        blocks = math.ceil((n - cells) / block_cells) if block_cells else 0
        minutes = ((n - cells) * seconds_per_cell + blocks * (seconds_per_block or 0.0)) / 60
    return Price(towards=towards, trainings=n, seeds=hi, more_trainings=n - cells, chance=p,
                 least=least(r, cells, n, alpha_each, delta, plan),
                 certain_seeds=certain(r, cells, per, alpha_each, delta, most_seeds, plan),
                 plan_seeds=_last(r, plan), seeds_low=seeds_low, seeds_high=seeds_high, minutes=minutes)


def detectable_curve(r: dict, cells: int, per_seed: int, alpha_each: float, seeds=range(1, 41),
                     plan: Plan | None = None) -> list:
    """[(seeds per configuration, smallest effect found 80% of the time)] for an estimate like `r` (its se,
    df and n_eff at `cells` trainings), with the boundary the confidence sequence uses at that many seeds."""
    z = stats.norm.ppf(POWER)
    out = []
    for s in seeds:
        se_n, c, _ = _at(r, cells, s * max(per_seed, 1), alpha_each, plan)
        out.append((s, float((c + z) * se_n) if math.isfinite(c) else math.inf))
    return out


class Next(enum.Enum):
    """What a sequential sweep does after a look."""

    DECIDED = "decided"    # every verdict is reached: stop
    BUDGET = "budget"      # another block would pass the budget: stop
    CONTINUE = "continue"  # queue another block


def next_step(verdicts: list[str], cells: int, budget: int | None, block_cells: int) -> Next:
    """After a look at its `verdicts` (the questions', or the best sets'): DECIDED when none is undecided,
    BUDGET when another block would pass the budget, else CONTINUE."""
    if all(v != "undecided" for v in verdicts):
        return Next.DECIDED
    if budget is None or cells + block_cells > budget:
        return Next.BUDGET
    return Next.CONTINUE
