"""Decisions on simulated sweeps whose truth is known, with the same looks the sequential mode takes:
the family-wise false-call rate, equivalence for a factor that does nothing, coverage at stopping,
and what the sequential mode saves against a fixed design of the same power."""

import math

import numpy as np
import pytest

from src.answer import decision
from src.answer.effects import estimate
from tests.answer.test_effects import FACTORS, fractional

NOISE = 0.008
FIRST, BLOCK, MAX_SEEDS = 3, 1, 8  # seeds: a first block, one more per look, at most 8 (64 trainings)


def observations(configs, seeds, truth, rng, luck):
    obs = []
    for cfg in configs:
        mean = 0.7 + sum(truth[k] * (cfg[k] == FACTORS[k][1]) for k in FACTORS)
        for s in seeds:
            obs.append({"config": cfg, "seed": s, "value": mean + luck[s] + rng.normal(0, NOISE)})
    return obs


def one_sweep(truth, delta, rng, sequential=True, max_seeds=MAX_SEEDS):
    """A fractional sweep over FACTORS: looks after the first block and after each added one (or a single
    look at max_seeds when not sequential); returns the final decisions and the trainings spent."""
    configs = fractional()
    luck = {s: rng.normal(0, 0.004) for s in range(max_seeds)}
    planned = len(configs) * max_seeds
    seeds = list(range(FIRST if sequential else max_seeds))
    obs = observations(configs, seeds, truth, rng, luck)
    looks = []
    while True:
        looks.append({"cells": len(obs), "records": estimate(obs, FACTORS, "maximize")["records"]})
        final = decision.decide(looks, "maximize", delta, planned if sequential else None)
        step = decision.next_step([r["verdict"] for r in final], len(obs), planned, BLOCK * len(configs))
        if not sequential or step != "continue":
            return final, len(obs)
        new = list(range(len(seeds), len(seeds) + BLOCK))
        obs += observations(configs, new, truth, rng, luck)
        seeds += new


def by_factor(final):
    return {r["factor"]: r for r in final}


def final_se(truth, n_sims=200):
    """The standard error of a main effect at the last possible look (all seeds)."""
    rng = np.random.default_rng(11)
    ses = [by_factor(one_sweep(truth, 1e-9, rng, sequential=False)[0])["b"]["se"] for _ in range(n_sims)]
    return float(np.mean(ses))


def test_boundaries_spend_exactly_alpha_over_the_looks():
    t = (0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
    c = np.array(decision.boundaries(t, 0.05))
    assert c[0] > c[-1] > 1.96 and all(np.diff(c) < 0)  # O'Brien-Fleming: wide early, near 1.96 at the end
    rng = np.random.default_rng(0)
    steps = rng.normal(size=(200_000, len(t))) * np.sqrt(np.diff(np.r_[0, t]))
    z = steps.cumsum(1) / np.sqrt(t)
    assert abs((np.abs(z) >= c).any(1).mean() - 0.05) < 0.003
    assert decision.boundaries((1.0,), 0.05)[0] == pytest.approx(1.959964, abs=1e-5)


def test_four_null_factors_are_called_better_or_worse_in_at_most_five_percent_of_sweeps():
    rng = np.random.default_rng(1)
    null = {k: 0.0 for k in FACTORS}
    n = 1000
    false_calls = sum(any(r["verdict"] in ("better", "worse") for r in one_sweep(null, 0.002, rng)[0])
                      for _ in range(n))
    assert false_calls / n <= 0.05, false_calls / n


def test_a_factor_that_does_nothing_is_called_equivalent_when_delta_is_four_standard_errors():
    truth = {"a": 0.012, "b": 0.0, "c": -0.004, "d": 0.002}
    delta = 4 * final_se(truth)
    rng = np.random.default_rng(2)
    n = 600
    equivalent = sum(by_factor(one_sweep(truth, delta, rng)[0])["b"]["verdict"] == "equivalent" for _ in range(n))
    assert equivalent / n >= 0.8, (equivalent / n, delta)


def test_the_intervals_at_stopping_cover_the_true_effects():
    truth = {"a": 0.006, "b": 0.0, "c": -0.004, "d": 0.002}
    rng = np.random.default_rng(3)
    n, covered, total = 600, 0, 0
    for _ in range(n):
        for r in one_sweep(truth, 0.003, rng)[0]:
            total += 1
            covered += r["adj_low"] <= truth[r["factor"]] <= r["adj_high"]
    assert covered / total >= 0.95, covered / total


def power_and_cost(truth, delta, sequential, n_sims, seed, max_seeds=MAX_SEEDS):
    rng = np.random.default_rng(seed)
    calls, spent = 0, []
    for _ in range(n_sims):
        final, cells = one_sweep(truth, delta, rng, sequential=sequential, max_seeds=max_seeds)
        a = by_factor(final)["a"]
        calls += a["verdict"] == "better"
        spent.append(a["decided_at"] or cells)
    return calls / n_sims, float(np.mean(spent))


def test_the_sequential_mode_decides_a_planted_effect_with_fewer_trainings_than_a_fixed_design():
    truth = {"a": 0.008, "b": 0.0, "c": 0.0, "d": 0.0}
    power, cost = power_and_cost(truth, 0.004, True, 400, 4)
    fixed = None
    for seeds in range(FIRST, 3 * MAX_SEEDS):  # the smallest fixed design with at least that power
        p, cells = power_and_cost(truth, 0.004, False, 300, 5, max_seeds=seeds)
        if p >= power:
            fixed = cells
            break
    assert fixed is not None
    ratio = cost / fixed
    print(f"sequential: power {power:.2f} at {cost:.1f} trainings on average; fixed design of that power: "
          f"{fixed:.0f} trainings; ratio {ratio:.2f}")
    assert ratio < 1, ratio


def test_price_says_how_many_seeds_would_decide():
    r = {"effect": 0.002, "se": 0.002, "df": 20}
    p = decision.price(r, "maximize", cells=24, per_seed=8, alpha_each=0.0125, delta=0.001,
                       seconds_per_cell=10.0)
    z = 2.4977  # the two-sided 0.0125 quantile
    assert p["towards"] == "better" and p["seeds"] == math.ceil(24 * (z * 0.002 / 0.002) ** 2 / 8)
    assert p["trainings"] == 8 * p["seeds"] and p["minutes"] == pytest.approx(
        (p["trainings"] - 24) * 10 / 60)
    eq = decision.price({"effect": 0.0002, "se": 0.001, "df": 20}, "maximize", 24, 8, 0.0125, 0.001, None)
    assert eq["towards"] == "equivalent"


def test_a_look_at_no_data_is_ignored():
    r = {"factor": "a", "level": "on", "reference": "off", "effect": 0.01, "se": 0.001, "df": 20}
    final = decision.decide([{"cells": 0, "records": []}, {"cells": 24, "records": [r]}], "maximize", 0.001)
    assert final[0]["verdict"] == "better" and final[0]["decided_at"] == 24
    assert decision.decide([{"cells": 0, "records": []}], "maximize", 0.001) == []
