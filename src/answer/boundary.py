"""The planned part of a question's interval: a group-sequential boundary over a plan of seeds fixed before
the first look, in repeated-confidence-interval form (Jennison and Turnbull, "Group Sequential Methods with
Applications to Clinical Trials", 2000, chapters 7 and 9).

A plan is recorded in the study at its first look (src/sweep/answer.py) and never changes: looks may come
after any whole number of seeds from the first block's (`first`) to the planned most (`last`), and the
boundary is computed as if there were a look after every one of them, so that which looks a sweep actually
takes (its blocks, a raised budget, a resume, a stop for any reason) cannot spend more than its share. The
share of each question's error it spends, `share * alpha_each`, follows Lan and DeMets' O'Brien-Fleming-type
spending function of the information fraction seeds / last: almost nothing at the first looks, most of it
near the plan's end, where a sweep whose plan fits its noise decides. The rest of the error,
`(1 - share) * alpha_each`, goes to the anytime-valid confidence sequence (src/answer/decision.py), which
alone carries a question past the plan. The verdict reads the intersection of both intervals: they cover
their truth together with probability at least 1 - alpha_each (union bound).

The boundary is on the z scale (known noise). At a look with `df` residual degrees of freedom it is used
as the t quantile of the same tail probability, as Jennison and Turnbull (section 3.8) do for estimated
noise; the simulations of src/answer/simulate.py check the error rate with estimated noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, signal, stats

SHARE = 0.8     # of each question's error, what the planned boundary spends; the rest stays anytime-valid
SPENDING = "obrien-fleming"
STEP = 0.02     # the grid of the partial sums' density, in units of one seed's standard deviation
CAP = 8.0       # a boundary no look is let above (spends nothing measurable)
WIDEST = 1e6    # standard errors: a wider boundary is none (as the confidence sequence's, src/answer/decision.py)


@dataclass(frozen=True)
class Plan:
    """A study's plan, fixed at its first look: looks after whole seeds `first`..`last` per configuration."""

    first: int
    last: int
    share: float = SHARE
    spending: str = SPENDING

    def __post_init__(self):
        if not 1 <= self.first <= self.last:
            raise ValueError(f"a plan's seeds run from its first block's to its last: got {self.first}..{self.last}")
        if not 0 < self.share < 1:
            raise ValueError(f"a plan's share of the error lies between 0 and 1: got {self.share}")
        if self.spending != SPENDING:
            raise ValueError(f"unknown spending function {self.spending!r}; known: {SPENDING!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Plan | None:
        return cls(**d) if d else None

    def covers(self, seeds) -> bool:
        """Whether a look after this many seeds (None: not a whole number) is on the plan's grid."""
        return seeds is not None and float(seeds).is_integer() and self.first <= seeds <= self.last


def spent(t: np.ndarray, alpha: float) -> np.ndarray:
    """Lan-DeMets O'Brien-Fleming-type spending: the two-sided error spent by information fraction t."""
    t = np.minimum(np.asarray(t, dtype=float), 1.0)
    return 2 * stats.norm.sf(stats.norm.isf(alpha / 2) / np.sqrt(t))


@functools.lru_cache(maxsize=64)
def z_bounds(first: int, last: int, alpha: float) -> np.ndarray:
    """The two-sided z boundaries at looks after seeds first..last (each seed one unit of information),
    spending `alpha` in all: element k - first belongs to the look after k seeds.

    By recursive numerical integration of the partial sum's density (Armitage, McPherson and Rowe 1969): the
    density of S_k, the sum of k standard normal steps, over the paths that crossed no earlier boundary, on a
    grid; each look's boundary is where the mass beyond +-c sqrt(k) equals that look's increment of spending."""
    ks = np.arange(first, last + 1)
    target = np.diff(spent(ks / last, alpha), prepend=0.0)
    half = CAP * math.sqrt(last) + 10.0
    x = np.arange(-half, half + STEP / 2, STEP)
    kernel = stats.norm.pdf(np.arange(-8.0, 8.0 + STEP / 2, STEP)) * STEP
    f = stats.norm.pdf(x, scale=math.sqrt(first))
    out = np.empty(len(ks))
    for i, k in enumerate(ks):
        if i:
            f = np.maximum(signal.fftconvolve(f, kernel, mode="same"), 0.0)
        c = _crossing(x, f, math.sqrt(k), target[i])
        out[i] = c
        f = np.where(np.abs(x) < c * math.sqrt(k), f, 0.0)
    return out


def _crossing(x: np.ndarray, f: np.ndarray, root: float, target: float) -> float:
    """The c whose band +-c root leaves `target` of the density f (on the grid x) outside it; CAP if even
    CAP leaves more."""
    cum = np.concatenate([[0.0], np.cumsum(f) * STEP])[1:]  # the mass below each grid point's upper edge
    total = cum[-1]

    def beyond(c):  # the mass outside +-c root, interpolated between grid points
        lo, hi = np.interp([-c * root, c * root], x + STEP / 2, cum)
        return lo + total - hi - target

    return CAP if beyond(CAP) >= 0 else float(optimize.brentq(beyond, 1e-3, CAP, xtol=1e-7))


def multiplier(plan: Plan, seeds, df: float, alpha_each: float) -> float:
    """The planned boundary in standard errors at a look after `seeds` seeds with `df` residual degrees of
    freedom: the t quantile of the z boundary's tail probability; infinite off the plan's grid, where the
    boundary spends nothing (at CAP), and where too few degrees of freedom make it wider than WIDEST."""
    if not plan.covers(seeds) or not df or df < 1:
        return math.inf
    z = float(z_bounds(plan.first, plan.last, round(plan.share * alpha_each, 12))[int(seeds) - plan.first])
    c = float(stats.t.isf(stats.norm.sf(z), df))
    return math.inf if z >= CAP or c > WIDEST else c
