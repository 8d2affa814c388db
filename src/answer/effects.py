"""The effect of each factor level on the objective, with its confidence, held against seed noise.

Input: one observation per (configuration, seed): the best-epoch validation metric of one
training run. For each swept factor, each level is compared with the reference level (the
first one the sweep lists):

- paired (grid designs): matched pairs, two runs that agree on every other dimension and on
  the seed and differ only in this factor; the effect is the mean paired difference, its 95%
  interval from Student's t over the pairs. A paired difference cancels what the two runs share,
  the seed's own luck included.
- regression (fractional designs, where no two configurations differ in one factor only, and
  TPE or random samplers): least squares on all runs with every discrete factor and the seed as
  terms (main effects); the interval from the coefficient's standard error. In a two-level
  design of resolution IV this is the usual main-effect contrast; for sampled trials it is weaker
  (unbalanced, and blind to interactions), and the report says so.

P(better), either way: the chance that the level's true effect is better than the reference's, from
the same t distribution as the unadjusted interval (effect / se with its df; one minus the one-sided
p-value of "not better"), so that an interval that excludes 0 goes with a P(better) above 0.975 or
below 0.025.

Seed noise: the spread (standard deviation) of one configuration over seeds; the median over
configurations is the noise floor, and from it each comparison's smallest effect this design
would detect (two-sided 5%, power 80%). A verdict ("better", "worse") needs an interval that
excludes zero; otherwise "no difference detectable with this budget".
"""

from __future__ import annotations

import functools
import json
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import stats

from src.answer import decision

ALPHA = 0.05
POWER = 0.8


_KEY = json.JSONEncoder(sort_keys=True, default=str)  # what json.dumps(sort_keys=True, default=str) builds per call


def key(value) -> str:
    """A configuration (a {parameter: value} dict), a level or a cell as a stable, comparable key: the one
    form every module of the sweep compares them in."""
    return _KEY.encode(value)


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, df: float) -> float:
    """Student's t quantile, remembered: a sweep's analysis asks for the same few (level, df) pairs at
    every look and for every question, and each scipy call costs a hundred microseconds."""
    return float(stats.t.ppf(q, df))


def _better_sign(direction: str) -> int:
    return 1 if direction == "maximize" else -1


def p_better(effect: float, se: float, df: float, direction: str) -> float:
    """The chance the true effect is better than none, from Student's t with `df` (a zero `se`: 1, 0 or 1/2 by
    the effect's sign)."""
    z = _better_sign(direction) * effect
    if se <= 0:
        return 1.0 if z > 0 else 0.0 if z < 0 else 0.5
    return float(stats.t.cdf(z / se, df))


@dataclass(frozen=True)
class Noise:
    """The spread of one configuration over seeds (SD): its median, least and most over the configurations
    with two seeds or more (None: none has)."""

    sd_median: float | None = None
    sd_min: float | None = None
    sd_max: float | None = None
    configs: int = 0


def noise_floor(observations: list[dict]) -> Noise:
    """The seed noise of the observations' configurations."""
    by_config = defaultdict(list)
    for o in observations:
        by_config[key(o["config"])].append(o["value"])
    sds = [float(np.std(v, ddof=1)) for v in by_config.values() if len(v) > 1]
    if not sds:
        return Noise()
    return Noise(sd_median=float(np.median(sds)), sd_min=min(sds), sd_max=max(sds), configs=len(sds))


def whole_seeds(observations: list[dict]) -> int | None:
    """How many seeds the runs hold when every seed holds one run of the same configurations (a balanced design:
    each seed adds the same information), else None."""
    per_seed = defaultdict(list)
    for o in observations:
        per_seed[str(o["seed"])].append(key(o["config"]))
    sets = [sorted(v) for v in per_seed.values()]
    if not sets or any(len(set(v)) != len(v) or v != sets[0] for v in sets):
        return None
    return len(sets)


def _detectable(crit_df: float, scale: float | None) -> float | None:
    """The smallest true effect found with probability POWER at two-sided ALPHA, for an estimate whose
    standard error is `scale` (noise floor times the design's factor) with crit_df degrees of freedom."""
    if scale is None or not crit_df or crit_df < 1:
        return None
    return float((t_quantile(1 - ALPHA / 2, crit_df) + t_quantile(POWER, crit_df)) * scale)


def paired(observations: list[dict], factor: str, level, reference, direction: str, noise: float | None,
           kept: bool = False):
    """The paired comparison of `level` with `reference`, or None when the pairs are fewer than two or
    cover less than half of the level's runs (then a regression over all runs says more: a fractional
    design with one configuration outside it has a few pairs, but they are not the design). `kept`: the
    question was answered by pairs at an earlier look, and stays so while there are two pairs."""
    cells = defaultdict(dict)
    for o in observations:
        if factor not in o["config"]:
            continue
        others = {k: v for k, v in o["config"].items() if k != factor}
        cells[(key(others), str(o["seed"]))][key(o["config"][factor])] = o["value"]
    a, b = key(level), key(reference)
    d = np.array([c[a] - c[b] for c in cells.values() if a in c and b in c], dtype=float)
    n = len(d)
    runs = sum(a in c for c in cells.values())
    if n < 2 or (n < runs / 2 and not kept):
        return None
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n))
    half = float(t_quantile(1 - ALPHA / 2, n - 1) * se) if se > 0 else 0.0
    return {"effect": mean, "ci_low": mean - half, "ci_high": mean + half, "se": se, "df": n - 1,
            "p_better": p_better(mean, se, n - 1, direction), "n_pairs": n, "method": "paired", "n_eff": float(n),
            "detectable": _detectable(n - 1, None if noise is None else noise * math.sqrt(2 / n))}


def regression(observations: list[dict], factors: dict, factor: str, direction: str, noise: float | None,
               fits: dict | None = None):
    """Main effects of every level of `factor` against its reference by least squares, with the other
    discrete factors and the seed as terms; {level: record} (empty when nothing can be estimated).

    `fits` caches the least-squares fits by the runs and terms they use: in a design where every run
    has every factor, one fit serves all factors."""
    rows = tuple(i for i, o in enumerate(observations) if factor in o["config"])
    obs = [observations[i] for i in rows]
    terms = tuple(f for f in factors if all(f in o["config"] for o in obs))
    key = (rows, terms)
    if fits is None or key not in fits:
        fitted = _fit(obs, factors, terms, direction, noise)
        if fits is None:
            return fitted.get(factor, {})
        fits[key] = fitted
    return fits[key].get(factor, {})


def _fit(obs: list[dict], factors: dict, terms: tuple, direction: str, noise: float | None) -> dict:
    """{factor: {level: record}} for every factor in `terms`, from one least-squares fit."""
    if not obs:  # e.g. no test metric recorded: nothing to fit
        return {}
    seeds = sorted({str(o["seed"]) for o in obs})
    columns, names = [np.ones(len(obs))], [None]
    levels = {f: [key(o["config"][f]) for o in obs] for f in terms}  # each run's level of each term, once
    for f in terms:
        for lv in map(key, factors[f][1:]):
            columns.append(np.array([float(k == lv) for k in levels[f]]))
            names.append((f, lv))
    for sd in seeds[1:]:
        columns.append(np.array([float(str(o["seed"]) == sd) for o in obs]))
        names.append(("seed", sd))
    x = np.column_stack(columns)
    y = np.array([o["value"] for o in obs], dtype=float)
    keep = x.std(axis=0) > 0
    keep[0] = True
    x, names = x[:, keep], [n for n, k in zip(names, keep) if k]
    rank = np.linalg.matrix_rank(x)
    df = int(len(y) - rank)
    if df < 1:
        return {}
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    s2 = float(resid @ resid / df)
    xtx_inv = np.linalg.pinv(x.T @ x)
    out = {}
    for j, name in enumerate(names):
        if not name or name[0] == "seed":
            continue
        factor = name[0]
        est = float(coef[j])
        se = math.sqrt(max(s2 * xtx_inv[j, j], 0.0))
        half = float(t_quantile(1 - ALPHA / 2, df) * se)
        p = p_better(est, se, df, direction)
        n_level = levels[factor].count(name[1])
        out.setdefault(factor, {})[name[1]] = {
            "effect": est, "ci_low": est - half, "ci_high": est + half, "se": se, "df": df, "p_better": p,
            "n_pairs": 0, "n_runs": n_level, "method": "regression", "n_eff": float(1 / xtx_inv[j, j]),
            "detectable": _detectable(df, None if noise is None else noise * math.sqrt(xtx_inv[j, j]))}
    return out


def estimate(observations: list[dict], factors: dict, direction: str, methods: dict | None = None) -> dict:
    """Every level of every factor against its reference.

    Args:
        observations: [{"config": {factor: level, ...}, "seed": s, "value": v}], one per run.
        factors: {factor: [reference level, other levels...]}.
        direction: "maximize" or "minimize".
        methods: {(factor, level): "paired" or "regression"}, the method each question was answered by at
            its first look: a question keeps it, so that its looks are one sequence of one estimator. A
            question not named gets pairs where they cover half of its runs, else the regression.

    Returns:
        {"records": [{factor, level, reference, effect, ci_low, ci_high, p_better, n_pairs, method,
        detectable, verdict, seeds (`whole_seeds`)}], "noise": noise_floor(...), "notes": [...]}
    """
    noise = noise_floor(observations)
    floor = noise.sd_median
    n_seeds = len({str(o["seed"]) for o in observations})
    whole = whole_seeds(observations)
    records, notes, fits = [], [], {}
    for factor, levels in factors.items():
        if len(levels) < 2:
            continue
        ref = levels[0]
        fitted = None
        for level in levels[1:]:
            first = (methods or {}).get((factor, str(level)))
            r = (None if first == "regression" else
                 paired(observations, factor, level, ref, direction, floor, kept=first == "paired"))
            if r is None:
                if fitted is None:
                    fitted = regression(observations, factors, factor, direction, floor, fits)
                r = fitted.get(key(level))
            if r is None:
                r = {"effect": None, "ci_low": None, "ci_high": None, "se": None, "df": None, "p_better": None,
                     "n_pairs": 0, "method": "none", "detectable": None}
            verdict = (decision.verdict(r["ci_low"], r["ci_high"], direction, 0.0) if r["effect"] is not None
                       else "undecided")  # the unadjusted interval's, for reading: the sweep's is decision.decide's
            if n_seeds < 2 and verdict in ("better", "worse"):
                verdict += " (one seed: not checked against seed noise)"
            records.append({"factor": factor, "level": str(level), "reference": str(ref), **r, "verdict": verdict,
                            "seeds": whole})
    if n_seeds < 2:
        notes.append("One seed per configuration: a difference cannot be separated from what changing the seed "
                     "alone does. Add seeds, e.g. `sweep.seeds=[0,1,2]`, to measure the noise floor and get "
                     "verdicts against it.")
    if any(r["method"] == "regression" for r in records):
        notes.append("Regression estimates: main effects by least squares over all runs (the other factors and "
                     "the seed as terms). In a two-level fractional design of resolution IV these are the design's "
                     "main-effect contrasts; over sampled (TPE or random) trials they are weaker than matched "
                     "pairs: unbalanced and blind to interactions.")
    return {"records": records, "noise": noise, "notes": notes}
