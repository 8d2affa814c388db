"""Blocks: a dimension crossed with the design but not asked about (`sweep.block`, e.g. the data set). Each
question is answered within each block, and across them:

- per block: the question's effect from that block's cells alone, decided as every question is
  (src/answer/decision.py), the family being every question in every block (Bonferroni over all of them);
- pooled, over these blocks: the average of the blocks' effects, its interval the average of their
  anytime-valid intervals (each block's running intersection at the last look, which narrows on after the
  block's own verdict). On the event that every block's interval holds its truth (probability 95% or
  more, at every look), this one holds the average of the truths, so the pooled verdict costs the family
  nothing and stays valid under the looks;
- whether the effect depends on the block: "depends" when two blocks' intervals do not meet (their truths
  differ, on that same event), "the same everywhere" when all the intervals lie within a span of delta
  (no two truths differ by more than delta), else undecided. The intervals only narrow from look to look,
  so none of these verdicts, once reached, is undone by a later look;
- for reading, not for verdicts: the random-effects estimate of the mean effect of a population of such
  blocks (DerSimonian-Laird's tau^2, the Hartung-Knapp 95% interval on k - 1 degrees of freedom, never
  narrower than the one from the weights alone), from each block's latest estimate, with the
  heterogeneity: Cochran's Q and its p-value, I^2 and tau^2.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from scipy import stats

from src.answer import decision
from src.answer.effects import estimate as estimate_all
from src.answer.effects import noise_floor

DEPENDS, SAME, UNDECIDED = "depends on the block", "the same everywhere", "undecided"
ESTIMATOR = "DerSimonian-Laird tau^2, Hartung-Knapp 95% interval (ad hoc correction: at least the fixed weights' width)"


def interaction_text(interaction: str, keys) -> str:
    """How the report words an interaction verdict: "depends on the data set" when every block key is the data's."""
    data = keys and all(str(k).split(".")[0] == "data" for k in keys)
    return "depends on the data set" if interaction == DEPENDS and data else interaction


def name(values: dict) -> str:
    """A block's name from its dimensions' values: `data=movielens`, `data=synthetic, data.seed=1`."""
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def split(observations: list[dict], blocks: list[str]) -> dict[str, list[dict]]:
    """{block name: its observations, the block's dimensions taken out of each configuration}."""
    out = defaultdict(list)
    for o in observations:
        b = name({k: o["config"].get(k) for k in blocks})
        out[b].append({**o, "config": {k: v for k, v in o["config"].items() if k not in blocks}})
    return dict(sorted(out.items()))


def estimate(observations: list[dict], factors: dict, direction: str, blocks: list[str] | tuple = (),
             methods: dict | None = None) -> dict:
    """src/answer/effects.py's `estimate`, within each block when there are blocks: each record names its
    block; the noise floor is over every configuration of every block. `methods`: {(block or None, factor,
    level): method}, each question's method at its first look, which it keeps."""
    def of(block):
        return {(f, lv): m for (b, f, lv), m in (methods or {}).items() if b == block}

    if not blocks:
        return estimate_all(observations, factors, direction, of(None))
    records, notes = [], []
    for b, obs in split(observations, list(blocks)).items():
        e = estimate_all(obs, {f: v for f, v in factors.items() if f not in blocks}, direction, of(b))
        records += [dict(r, block=b) for r in e["records"]]
        notes += [n for n in e["notes"] if n not in notes]
    return {"records": records, "noise": noise_floor(observations), "notes": notes}


def random_effects(effects: list[float], ses: list[float]) -> dict | None:
    """DerSimonian-Laird's random-effects mean with the Hartung-Knapp interval, and the heterogeneity."""
    k = len(effects)
    if k < 2 or any(s is None or s <= 0 for s in ses):
        return None
    w = [1 / s ** 2 for s in ses]
    fixed = sum(wi * y for wi, y in zip(w, effects)) / sum(w)
    q = sum(wi * (y - fixed) ** 2 for wi, y in zip(w, effects))
    c = sum(w) - sum(wi ** 2 for wi in w) / sum(w)
    tau2 = max(0.0, (q - (k - 1)) / c)
    ws = [1 / (s ** 2 + tau2) for s in ses]
    mu = sum(wi * y for wi, y in zip(ws, effects)) / sum(ws)
    # Hartung-Knapp with the ad hoc correction (Knapp and Hartung 2003; Röver et al. 2015): never narrower
    # than the interval from the weights alone, which the plain one is when the blocks agree by chance
    q_hk = sum(wi * (y - mu) ** 2 for wi, y in zip(ws, effects)) / (k - 1)
    se_hk = math.sqrt(max(1.0, q_hk) / sum(ws))
    half = float(stats.t.ppf(0.975, k - 1)) * se_hk
    return {"estimator": ESTIMATOR, "mu": mu, "low": mu - half,
            "high": mu + half, "tau2": tau2, "q": q, "q_p": float(stats.chi2.sf(q, k - 1)),
            "i2": max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0, "k": k}


def interaction(intervals: list[tuple[float, float]], delta: float) -> str:
    """Whether the truths behind these (simultaneously valid) intervals differ: some two intervals do not
    meet; or lie within delta of each other: all the intervals fit in a span of delta."""
    lows, highs = [lo for lo, _ in intervals], [hi for _, hi in intervals]
    if max(lows) > min(highs):
        return DEPENDS
    if max(highs) - min(lows) <= delta:
        return SAME
    return UNDECIDED


@dataclass
class Pooled:
    """A question asked in two blocks or more, across them (effects.json's `pooled` records)."""

    factor: str
    level: Any
    reference: Any
    blocks: list                    # the blocks it was asked in
    effect: float | None = None     # the average of the blocks' latest effects
    low: float | None = None        # the average of the blocks' intervals: valid with them
    high: float | None = None
    verdict: str = "undecided"
    interaction: str = UNDECIDED    # DEPENDS, SAME or UNDECIDED: whether the effect depends on the block
    random_effects: dict | None = None  # `random_effects`, for reading

    @property
    def label(self) -> str:
        return f"{self.factor}: {self.level} vs {self.reference}"


def pooled(decided: list[decision.Decision], direction: str, delta: float) -> list[Pooled]:
    """Each question asked in two blocks or more, across them: the average effect and its interval (the
    average of the blocks' intervals), its verdict, whether it depends on the block, and random effects."""
    groups = defaultdict(list)
    for d in decided:
        if d.block is not None:
            groups[(d.factor, d.level, d.reference)].append(d)
    out = []
    for (factor, level, reference), ds in groups.items():
        if len(ds) < 2:
            continue
        rec = Pooled(factor=factor, level=level, reference=reference, blocks=[d.block for d in ds])
        if all(d.now_low is not None and d.effect is not None for d in ds):
            iv = [(d.now_low, d.now_high) for d in ds]
            rec.low, rec.high = sum(a for a, _ in iv) / len(iv), sum(b for _, b in iv) / len(iv)
            rec.effect = sum(_now(d)[0] for d in ds) / len(ds)
            rec.verdict = decision.verdict(rec.low, rec.high, direction, delta)
            rec.interaction = interaction(iv, delta)
        if all(_now(d)[0] is not None for d in ds):
            rec.random_effects = random_effects([_now(d)[0] for d in ds], [_now(d)[1] for d in ds])
        out.append(rec)
    return out


def _now(d: decision.Decision) -> tuple:
    """A block's latest estimate and its se: the last look's, not the deciding look's (biased by the stop)."""
    if d.now_effect is not None:
        return d.now_effect, d.now_se
    return d.effect, d.se
