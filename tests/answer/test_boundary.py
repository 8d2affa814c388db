"""The planned part of a question's interval (src/answer/boundary.py): a group-sequential boundary over a plan
of seeds, its error spent as planned over every look it allows, and beside the anytime-valid sequence the
verdicts stay valid for a user who goes on past the plan, and decide as early."""

import math

import numpy as np
import pytest
from scipy import stats

from src.answer import boundary, decision, simulate
from src.answer.boundary import Plan
from tests.answer.test_decision import LEVELS


def test_the_boundary_spends_its_error_over_a_look_after_every_seed_of_the_plan():
    """100,000 random walks of standard normal steps, looked at after each of seeds 3..40: the share of them
    that cross the boundary anywhere is the error the boundary spends, 1%."""
    z = boundary.z_bounds(3, 40, 0.01)
    walks = np.cumsum(np.random.default_rng(0).normal(size=(100_000, 40)), axis=1)[:, 2:]
    crossed = (np.abs(walks) / np.sqrt(np.arange(3, 41)) >= z).any(axis=1).mean()
    assert 0.0088 <= crossed <= 0.0112, crossed
    assert z[0] > z[-1] > stats.norm.isf(0.005)  # little spent early; the last look pays for the others
    assert boundary.z_bounds(5, 5, 0.01)[0] == pytest.approx(stats.norm.isf(0.005), abs=1e-4)  # one look: fixed


def test_off_the_plan_the_confidence_sequence_alone_holds_at_the_rest_of_the_error():
    plan = Plan(2, 20)
    seq = decision.multiplier(30.0, 12.0, 0.2 * 0.0125)
    assert decision.combined(30, 12.0, 21, 0.0125, plan) == seq  # past the plan
    assert decision.combined(30, 12.0, 6.5, 0.0125, plan) == seq  # not a whole number of seeds
    assert decision.combined(30, 12.0, None, 0.0125, plan) == seq  # unbalanced cells
    assert decision.combined(30, 12.0, 20, 0.0125, plan) < seq  # the plan's end: the planned boundary
    assert decision.combined(30, 12.0, 6, 0.0125, None) == decision.multiplier(30.0, 12.0, 0.0125)
    for bad in ((3, 2), (0, 5)):
        with pytest.raises(ValueError, match="first block"):
            Plan(*bad)
    assert Plan.from_dict(Plan(2, 20).to_dict()) == Plan(2, 20) and Plan.from_dict({}) is None


def test_with_a_plan_the_user_who_raises_the_budget_keeps_the_error_rate_and_decides_as_early():
    """2000 sweeps each of the default shape, the budget raised fourfold up to three times while a question is
    undecided; plans of the budget's seeds (sweep.plan's default) and four times as many."""
    null, one_sd = (0.0,) * 4, (0.008, 0.0, 0.0, 0.0)
    alone = simulate.Setting(LEVELS, one_sd, 0.002, raises=3)
    today = simulate.summary(alone, simulate.sweeps(alone, 2000, seed=2))["decided_at_median"][0]
    for plan in (12, 48):
        s = simulate.Setting(LEVELS, null, 0.002, raises=3, plan=plan)
        out = simulate.summary(s, simulate.sweeps(s, 2000, seed=1))
        assert out["false_call_rate"] <= 0.05 and out["coverage"] >= 0.95, (plan, out)
    s = simulate.Setting(LEVELS, one_sd, 0.002, raises=3, plan=12)
    out = simulate.summary(s, simulate.sweeps(s, 2000, seed=2))
    assert out["called_better"][0] >= 0.99 and out["false_call_rate"] <= 0.05, out
    assert out["decided_at_median"][0] <= today + len(LEVELS), (out, today)  # at most one seed later


def test_a_plan_that_fits_the_noise_halves_the_price_and_one_too_short_says_what_past_it_costs():
    """The default sweep's questions at their last look (residual SD 0.00496, as it was before common random
    numbers, against which its plan was sized; 3 seeds of 8 configurations), with sweeps/default.yaml's plan."""
    import yaml

    from src.config.paths import ROOT

    study = yaml.safe_load((ROOT / "sweeps" / "default.yaml").read_text())["study"]
    default = Plan(len(study["seeds"]), study["plan"])
    r = {"effect": 0.0003, "se": 0.00496 / math.sqrt(6), "df": 17, "n_eff": 6.0, "seeds": 3}
    alone = decision.price(r, "maximize", 24, 8, 0.0125, 0.001, None)
    fits = decision.price(r, "maximize", 24, 8, 0.0125, 0.001, None, plan=default)
    short = decision.price(r, "maximize", 24, 8, 0.0125, 0.001, None, plan=Plan(2, 100))
    assert fits.seeds <= 170 < 300 <= alone.seeds, (fits, alone)
    assert fits.chance >= decision.POWER > decision.chance(r, "maximize", 24, 8 * (fits.seeds - 1), 0.0125,
                                                               0.001, default)[1]
    assert short.seeds > alone.seeds > 100  # past the plan: the sequence at a fifth of the error
    assert short.seeds == decision.price(r, "maximize", 24, 8, 0.2 * 0.0125, 0.001, None).seeds
