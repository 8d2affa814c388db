"""Simulated sweeps whose truth is known, many at once: the check that the verdicts keep their promise
under the way people use the product (look, then spend more), and the figures docs/answer.md gives.

A sweep here is a balanced two-level design (full or 2^(k-p), its configurations as 0/1 rows) trained
seed by seed: value = 0.7 + the true effects of the levels on + a luck shared by a seed's runs + noise.
Its looks are the sequential mode's, one after each seed from `first` on, and at each the effects are
the least-squares main effects with the seed as a term, as src/answer/effects.py fits them (a test
holds the two together), decided by src/answer/decision.py's confidence sequence. At the budget, a
user who still sees an undecided question raises the budget fourfold, up to `raises` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.answer import decision
from src.answer.boundary import Plan

UNDECIDED, BETTER, WORSE, EQUIVALENT = (decision.VERDICT_CODE[v] for v in ("undecided", "better", "worse",
                                                                         "equivalent"))


@dataclass(frozen=True)
class Setting:
    levels: np.ndarray        # (configurations, factors) of 0/1: a balanced design whose columns are orthogonal
    truth: tuple              # each factor's true effect (level 1 minus level 0), metric maximized
    delta: float              # the equivalence margin
    noise: float = 0.008      # a run's own noise (SD)
    luck: float = 0.004       # a seed's luck, shared by its runs (SD)
    first: int = 3            # seeds before the first look
    budget: int = 12          # seeds the first budget allows (4 times the first block: sweep.budget's default)
    raises: int = 3           # times the user raises an exhausted budget fourfold while a question is undecided
    alpha: float = decision.ALPHA
    plan: int | None = None   # sweep.plan: the seeds a group-sequential boundary plans for (None: none)

    @property
    def boundary(self) -> Plan | None:
        return Plan(self.first, self.plan) if self.plan else None

    def multipliers(self, f: dict, seeds: int, each: float) -> np.ndarray:
        """Each factor's boundary at the look after `seeds` seeds (`f`: their fit), as decision.py's."""
        return np.array([decision.combined(f["df"], round(float(n), 6), seeds, each, self.boundary)
                         for n in f["n_eff"]])

    @property
    def most_seeds(self) -> int:
        return self.budget * 4 ** self.raises


def runs(s: Setting, sims: int, rng: np.random.Generator, seeds: int | None = None) -> np.ndarray:
    """(sims, configurations, seeds) simulated values."""
    seeds = seeds or s.most_seeds
    mean = 0.7 + s.levels @ np.asarray(s.truth, dtype=float)
    return (mean[None, :, None] + rng.normal(0, s.luck, (sims, 1, seeds))
            + rng.normal(0, s.noise, (sims, len(s.levels), seeds)))


def fit(y: np.ndarray, levels: np.ndarray) -> dict:
    """Main effects of the first `seeds` seeds of every simulated sweep, with the seed as a term: effect and se
    (sims, factors), and the df and n_eff the whole batch shares."""
    sims, configs, seeds = y.shape
    on = levels.T.astype(float)                                   # (factors, configs)
    per_config = y.mean(2)                                        # (sims, configs)
    n_on = on.sum(1)
    effect = per_config @ on.T / n_on - per_config @ (1 - on).T / (configs - n_on)
    grand = y.mean((1, 2))
    fitted = grand[:, None] + effect @ (on - on.mean(1, keepdims=True))
    resid = y - fitted[:, :, None] - (y.mean(1) - grand[:, None])[:, None, :]
    df = configs * seeds - on.shape[0] - seeds
    s2 = (resid ** 2).sum((1, 2)) / df
    n_eff = 1 / (1 / (n_on * seeds) + 1 / ((configs - n_on) * seeds))  # per factor: equal in a balanced design
    return {"effect": effect, "se": np.sqrt(s2[:, None] / n_eff[None, :]), "df": int(df), "n_eff": n_eff}


def sweeps(s: Setting, sims: int, seed: int = 0, y: np.ndarray | None = None) -> dict:
    """`sims` sequential sweeps under the user who raises the budget: each question's verdict, interval and
    decided_at (trainings), and the trainings each sweep spent (`y`: their runs, else simulated here)."""
    y = runs(s, sims, np.random.default_rng(seed)) if y is None else y
    k, per_seed = len(s.truth), len(s.levels)
    each = s.alpha / k
    verdict = np.full((sims, k), UNDECIDED)
    decided_at = np.zeros((sims, k), dtype=int)
    lo, hi = np.full((sims, k), -np.inf), np.full((sims, k), np.inf)
    spent = np.zeros(sims, dtype=int)
    budget, raised, live = np.full(sims, s.budget), np.zeros(sims, dtype=int), np.ones(sims, dtype=bool)
    for seeds in range(s.first, min(s.most_seeds, y.shape[2]) + 1):
        f = fit(y[live, :, :seeds], s.levels)
        c = s.multipliers(f, seeds, each)
        open_ = verdict[live] == UNDECIDED  # a decided question keeps its verdict and interval
        l_now = np.where(open_, np.maximum(lo[live], f["effect"] - c * f["se"]), lo[live])
        h_now = np.where(open_, np.minimum(hi[live], f["effect"] + c * f["se"]), hi[live])
        v = np.where(open_, decision.verdicts(l_now, h_now, "maximize", s.delta), verdict[live])
        decided_at[live] = np.where(open_ & (v != UNDECIDED), seeds * per_seed, decided_at[live])
        verdict[live], lo[live], hi[live] = v, l_now, h_now
        spent[live] = seeds * per_seed
        done = (verdict[live] != UNDECIDED).all(1)
        at_budget = ~done & (seeds >= budget[live])
        more = at_budget & (raised[live] < s.raises)
        budget[live] = np.where(more, budget[live] * 4, budget[live])
        raised[live] += more
        idx = np.flatnonzero(live)
        live[idx[done | (at_budget & ~more)]] = False
        if not live.any():
            break
    return {"verdict": verdict, "decided_at": decided_at, "low": lo, "high": hi, "trainings": spent}


def summary(s: Setting, out: dict) -> dict:
    """The family-wise false-call rate, the coverage of the intervals at stopping, each factor's power (called
    better), the trainings spent on average, and each factor's trainings at its decision (mean, median; an
    undecided one's: the sweep's end)."""
    truth = np.asarray(s.truth, dtype=float)
    v = out["verdict"]
    at = np.where(out["decided_at"] > 0, out["decided_at"], out["trainings"][:, None])  # undecided: at the end
    false = ((v == BETTER) & (truth <= 0)) | ((v == WORSE) & (truth >= 0)) | \
            ((v == EQUIVALENT) & (np.abs(truth) >= s.delta))
    return {"false_call_rate": float(false.any(1).mean()),
            "coverage": float(((out["low"] <= truth) & (truth <= out["high"])).mean()),
            "called_better": [float(x) for x in (v == BETTER).mean(0)],
            "undecided": float((v == UNDECIDED).mean()),
            "trainings": float(out["trainings"].mean()),
            "decided_at": [float(x) for x in at.mean(0)], "decided_at_median": [float(x) for x in np.median(at, 0)]}


def follow_price(s: Setting, sims: int, seed: int = 0, question: int = 0) -> dict:
    """Sweeps that stop at their first budget; where `question` is undecided there, the user follows its price
    literally (resumes until the priced seeds, looking after each). Returns the mean chance the prices stated
    (and their chance at the hardest effect the interval allowed, `stated_least`) and how often the question
    was then decided, over the sweeps that were priced; and how often it was
    decided by the seeds the price says decide whatever the effect (where the simulation holds them)."""
    y = runs(s, sims, np.random.default_rng(seed))
    first = sweeps(Setting(**{**s.__dict__, "raises": 0}), sims, y=y)  # stops at the first budget
    k, per_seed = len(s.truth), len(s.levels)
    each = s.alpha / k
    undecided = np.flatnonzero(first["verdict"][:, question] == UNDECIDED)
    f = fit(y[undecided, :, :s.budget], s.levels)
    priced, prices = [], []
    for j, i in enumerate(undecided):
        r = {"effect": float(f["effect"][j, question]), "se": float(f["se"][j, question]), "df": f["df"],
             "n_eff": float(f["n_eff"][question]), "seeds": s.budget, "now_low": float(first["low"][i, question]),
             "now_high": float(first["high"][i, question])}
        p = decision.price(r, "maximize", s.budget * per_seed, per_seed, each, s.delta, None, plan=s.boundary)
        if p is None or p.seeds > y.shape[2]:
            continue
        priced.append(i)
        prices.append(p)
    most = np.array([min(y.shape[2], max(p.seeds, p.certain_seeds or y.shape[2])) for p in prices], dtype=int)
    ats = _decided_at(y[priced], s, (first["low"][priced, question], first["high"][priced, question]), question,
                      most)
    stated, floor, decided, sure = [], [], [], []
    for p, at in zip(prices, ats):
        stated.append(p.chance)
        floor.append(p.least)
        decided.append(at is not None and at <= p.seeds)
        if p.certain_seeds and p.certain_seeds <= y.shape[2]:
            sure.append(at is not None and at <= p.certain_seeds)
    return {"priced": len(stated), "stated_chance": float(np.mean(stated)) if stated else None,
            "stated_least": float(np.mean(floor)) if floor else None,
            "decided": float(np.mean(decided)) if decided else None,
            "certain_priced": len(sure), "decided_by_certain": float(np.mean(sure)) if sure else None}


def _decided_at(y: np.ndarray, s: Setting, interval: tuple, question: int, most: np.ndarray) -> list[int | None]:
    """For each of the sweeps `y` (sims, configurations, seeds), the seeds at its first look past the first
    budget, up to its `most`, that decides `question` (None: none did); `interval`: their intervals at the
    first budget, (low, high) arrays. All the sweeps are fitted together, look by look."""
    lo, hi = np.array(interval[0], dtype=float), np.array(interval[1], dtype=float)
    at = np.zeros(len(y), dtype=int)
    each = s.alpha / len(s.truth)
    for seeds in range(s.budget + 1, int(most.max(initial=0)) + 1):
        live = (at == 0) & (most >= seeds)
        if not live.any():
            break
        f = fit(y[live, :, :seeds], s.levels)
        c = s.multipliers(f, seeds, each)[question]
        e, se = f["effect"][:, question], f["se"][:, question]
        lo[live], hi[live] = np.maximum(lo[live], e - c * se), np.minimum(hi[live], e + c * se)
        at[np.flatnonzero(live)[decision.verdicts(lo[live], hi[live], "maximize", s.delta) != UNDECIDED]] = seeds
    return [int(a) if a else None for a in at]


def block_sweep(truths: tuple, rng: np.random.Generator, looks_at=(3, 5, 8, 12), delta: float = 0.005,
                noise: float | tuple = 0.008, luck: float = 0.004, per_block: bool = False
                ) -> tuple[list[dict], list[dict], int]:
    """One simulated sweep of a two-level factor (reference "a", level "b") crossed with blocks, whose true
    effect in block i is truths[i] and run noise noise[i] (one number: the same in every block): its cells
    taken seed by seed, a look after each seed in `looks_at`, each look estimated and decided as the sweep
    does it (src/answer/blocks.py, src/answer/decision.py, the decisions of a look kept). With `per_block`, a
    block whose question is decided gets no more seeds, as in a sweep with sweep.until=decided. Returns the
    last look's per-block decisions, the pooled records and the trainings spent."""
    from src.answer import blocks

    noises = tuple(noise) if isinstance(noise, tuple | list) else (noise,) * len(truths)
    index = {blocks.name({"blk": i}): i for i in range(len(truths))}
    obs, looks, ended = [], [], set()
    for seed in range(1, max(looks_at) + 1):
        for i, effect in enumerate(truths):
            if i in ended:
                continue
            shared = rng.normal(0, luck)
            for level, mean in (("a", 0.7), ("b", 0.7 + effect)):
                obs.append({"config": {"f": level, "blk": i}, "seed": seed,
                            "value": mean + shared + rng.normal(0, noises[i])})
        if seed in looks_at:
            recs = blocks.estimate(obs, {"f": ["a", "b"], "blk": list(range(len(truths)))}, "maximize",
                                   ("blk",))["records"]
            looks.append({"cells": len(obs), "records": recs})
            decided = decision.decide(looks, "maximize", delta)
            looks[-1]["decisions"] = {d.name: d.recorded() for d in decided}
            if per_block:
                ended |= {index[d.block] for d in decided if d.verdict != "undecided"}
                if len(ended) == len(truths):
                    break
    return decided, blocks.pooled(decided, "maximize", delta), len(obs)


def _wrong(verdict: str, truth: float, delta: float) -> bool:
    """Whether a verdict on a maximized metric contradicts the truth."""
    return (verdict == "better" and truth <= 0) or (verdict == "worse" and truth >= 0) or \
        (verdict == "equivalent" and abs(truth) >= delta)


def block_summary(truths: tuple, sims: int, seed: int = 0, tau: float = 0.0, delta: float = 0.005,
                  **kw) -> dict:
    """Many block sweeps (block_sweep's keywords pass through). With `tau`, each sweep draws its blocks' true
    effects as truths[i] + N(0, tau): blocks sampled from a population whose mean is the mean of `truths`.
    Returns the family-wise rate of wrong calls (per block, pooled, and the interaction), how often every
    per-block interval and the pooled one held their truths together, the random-effects interval's
    coverage of the population mean, the median I^2, how often the interaction was called "depends", and
    the trainings spent on average."""
    from src.answer import blocks

    rng, mu = np.random.default_rng(seed), float(np.mean(truths))
    wrong, held, re_cover, i2, depends, spent = [], [], [], [], [], []
    for _ in range(sims):
        t = np.asarray(truths, dtype=float) + (rng.normal(0, tau, len(truths)) if tau else 0.0)
        decided, pooled, n = block_sweep(tuple(t), rng, delta=delta, **kw)
        truth = {blocks.name({"blk": i}): float(x) for i, x in enumerate(t)}
        p, spread = pooled[0], float(t.max() - t.min())
        wrong.append(any(_wrong(d.verdict, truth[d.block], delta) for d in decided)
                     or _wrong(p.verdict, float(t.mean()), delta)
                     or (p.interaction == blocks.DEPENDS and spread == 0)
                     or (p.interaction == blocks.SAME and spread > delta))
        held.append(all(d.verdict_low <= truth[d.block] <= d.verdict_high for d in decided)
                    and p.low <= t.mean() <= p.high)
        re = p.random_effects
        re_cover.append(re["low"] <= mu <= re["high"])
        i2.append(re["i2"])
        depends.append(p.interaction == blocks.DEPENDS)
        spent.append(n)
    return {"sims": sims, "blocks": len(truths), "tau": tau, "wrong_call_rate": float(np.mean(wrong)),
            "all_held": float(np.mean(held)), "random_effects_coverage": float(np.mean(re_cover)),
            "median_i2": float(np.median(i2)), "depends": float(np.mean(depends)),
            "trainings": float(np.mean(spent))}


def race(truth, sims: int, seed: int = 0, racing: bool = True, delta: float = 0.001, noise: float = 0.008,
         luck: float = 0.004, first: int = 3, most: int = 200, alpha: float = decision.ALPHA) -> dict:
    """Sweeps for the best configuration (src/answer/best.py) among len(truth) configurations whose true means
    are 0.7 + truth: after `first` seeds of every configuration, one seed more at a time, to every
    configuration (racing=False) or only to those the best set still holds (racing: sweep.until=best), until
    the set is decided or `most` seeds. Per sweep: the trainings spent, whether the set held the true best at
    every look, and its verdict at the end."""
    from src.answer import best

    rng = np.random.default_rng(seed)
    truth = np.asarray(truth, dtype=float)
    top = int(np.argmax(truth))
    configs = [{"c": i} for i in range(len(truth))]
    out = {"trainings": [], "held": [], "verdict": [], "seeds": []}
    for _ in range(sims):
        cells, live, held, verdict, s = [], list(range(len(truth))), True, "undecided", 0
        for s in range(most):
            shared = rng.normal(0, luck)
            cells += [{"config": configs[i], "seed": s, "value": 0.7 + truth[i] + shared + rng.normal(0, noise)}
                      for i in live]
            if s + 1 < first:
                continue
            b = best.confidence_set(cells, "maximize", delta, alpha, priced=False)
            names = {m.levels["c"] for m in b.members}
            held &= top in names
            verdict = b.verdict
            if verdict != "undecided":
                break
            if racing:
                live = sorted(names)
        out["trainings"].append(len(cells))
        out["held"].append(held)
        out["verdict"].append(verdict)
        out["seeds"].append(s + 1)
    return {k: np.asarray(v) for k, v in out.items()}
