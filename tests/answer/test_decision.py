"""Decisions on simulated sweeps whose truth is known, with the same looks the sequential mode takes:
the family-wise false-call rate and the coverage at stopping under a user who raises the budget whenever a
question is undecided, equivalence for a factor that does nothing, what the sequential mode saves against
a fixed design, an honest price, and a verdict that stays once reached."""

import math

import numpy as np
import pytest

from src.answer import decision, simulate
from src.answer.effects import estimate
from tests.answer.test_effects import FACTORS, fractional

NOISE = 0.008
FIRST, BLOCK, MAX_SEEDS = 3, 1, 8  # seeds: a first block, one more per look, at most 8 (64 trainings)
LEVELS = np.array([[int(c[k] == FACTORS[k][1]) for k in FACTORS] for c in fractional()])


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
        final = decision.decide(looks, "maximize", delta)
        step = decision.next_step([r.verdict for r in final], len(obs), planned, BLOCK * len(configs))
        if not sequential or step is not decision.Next.CONTINUE:
            return final, len(obs)
        new = list(range(len(seeds), len(seeds) + BLOCK))
        obs += observations(configs, new, truth, rng, luck)
        seeds += new


def by_factor(final):
    return {r.factor: r for r in final}


def final_se(truth, n_sims=200):
    """The standard error of a main effect at the last possible look (all seeds)."""
    rng = np.random.default_rng(11)
    ses = [by_factor(one_sweep(truth, 1e-9, rng, sequential=False)[0])["b"].se for _ in range(n_sims)]
    return float(np.mean(ses))


def test_the_boundary_is_where_the_mixture_bayes_factor_reaches_one_over_alpha():
    c = decision.multiplier(30, 32.0, 0.0125)
    assert decision.log_bf(c * c, 30, 32.0) == pytest.approx(math.log(1 / 0.0125), abs=1e-6)
    assert c > decision.multiplier(300, 302.0, 0.0125) * 0.9 > 2.5  # wider than a fixed-sample t interval
    assert math.isinf(decision.multiplier(0, 1.0, 0.05))


def test_one_confidence_sequence_covers_at_every_look_at_once():
    """A mean of normal draws looked at after every draw, from the 3rd to the 400th: the chance that any
    look's interval misses the true mean stays under alpha (a fixed-sample t interval misses far more)."""
    rng = np.random.default_rng(0)
    sims, n = 4000, 400
    x = rng.normal(0.3, 1.0, (sims, n))
    k = np.arange(1, n + 1)
    mean = x.cumsum(1) / k
    sd = np.sqrt(np.maximum((np.cumsum(x ** 2, 1) - k * mean ** 2) / np.maximum(k - 1, 1), 1e-12))
    miss_cs = np.zeros(sims, bool)
    miss_t = np.zeros(sims, bool)
    for j in range(2, n):
        c = decision.multiplier(j, float(j + 1), 0.05)
        se = sd[:, j] / math.sqrt(j + 1)
        miss_cs |= np.abs(mean[:, j] - 0.3) > c * se
        miss_t |= np.abs(mean[:, j] - 0.3) > 1.96 * se
    assert miss_cs.mean() <= 0.05 and miss_t.mean() > 0.3, (miss_cs.mean(), miss_t.mean())


def test_four_null_factors_are_called_better_or_worse_in_at_most_five_percent_of_sweeps():
    rng = np.random.default_rng(1)
    null = {k: 0.0 for k in FACTORS}
    n = 1000
    false_calls = sum(any(r.verdict in ("better", "worse") for r in one_sweep(null, 0.002, rng)[0])
                      for _ in range(n))
    assert false_calls / n <= 0.05, false_calls / n


def test_a_factor_that_does_nothing_is_called_equivalent_when_delta_is_six_standard_errors():
    """Six, not the four of a fixed-sample interval: the confidence sequence, valid at every look and every
    extension, is about 1.5 times as wide."""
    truth = {"a": 0.012, "b": 0.0, "c": -0.004, "d": 0.002}
    delta = 6 * final_se(truth)
    rng = np.random.default_rng(2)
    n = 600
    equivalent = sum(by_factor(one_sweep(truth, delta, rng)[0])["b"].verdict == "equivalent" for _ in range(n))
    assert equivalent / n >= 0.8, (equivalent / n, delta)


def test_the_intervals_at_stopping_cover_the_true_effects():
    truth = {"a": 0.006, "b": 0.0, "c": -0.004, "d": 0.002}
    rng = np.random.default_rng(3)
    n, covered, total = 600, 0, 0
    for _ in range(n):
        for r in one_sweep(truth, 0.003, rng)[0]:
            total += 1
            covered += r.verdict_low <= truth[r.factor] <= r.verdict_high
    assert covered / total >= 0.95, covered / total


def power_and_cost(truth, delta, sequential, n_sims, seed, max_seeds=MAX_SEEDS):
    rng = np.random.default_rng(seed)
    calls, spent = 0, []
    for _ in range(n_sims):
        final, cells = one_sweep(truth, delta, rng, sequential=sequential, max_seeds=max_seeds)
        a = by_factor(final)["a"]
        calls += a.verdict == "better"
        spent.append(a.decided_at or cells)
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


def test_price_is_the_fewest_seeds_whose_look_decides_with_the_chance_it_states():
    r = {"effect": 0.002, "se": 0.002, "df": 20, "n_eff": 12.0}
    p = decision.price(r, "maximize", cells=24, per_seed=8, alpha_each=0.0125, delta=0.001, seconds_per_cell=10.0)
    assert p.towards == "better" and p.trainings == 8 * p.seeds and p.seeds > 3
    assert p.chance >= decision.POWER > decision.chance(r, "maximize", 24, 8 * (p.seeds - 1), 0.0125, 0.001)[1]
    assert p.minutes == pytest.approx((p.trainings - 24) * 10 / 60)
    # each block of one seed (8 trainings) more pays the block's fixed cost: workers' start-up and the look
    blocked = decision.price(r, "maximize", 24, 8, 0.0125, 0.001, 10.0, seconds_per_block=30.0, block_cells=8)
    more = blocked.trainings - 24
    assert blocked.minutes == pytest.approx((more * 10 + math.ceil(more / 8) * 30) / 60)
    # the boundary at that look is the confidence sequence's, not the fixed-sample one
    se_n, c, _ = decision._at(r, 24, p.trainings, 0.0125)
    assert c == decision.multiplier(round(20 * p.trainings / 24, 3), round(12.0 * p.trainings / 24, 3), 0.0125)
    # an estimate near 0 with an se well inside delta: its likeliest verdict is equivalent
    eq = decision.price({"effect": 0.0001, "se": 0.0003, "df": 20, "n_eff": 12.0}, "maximize", 24, 8, 0.0125, 0.001,
                        None)
    assert eq.towards == "equivalent"


def test_the_true_price_lies_in_the_stated_range_in_about_eighty_percent_of_sweeps():
    """The price's range (seeds_low, seeds_high) spans the seeds the noise estimate allows: in simulated sweeps
    at the first look (3 seeds, 17 residual df), the price computed from the true noise lies in it about as
    often as its level says."""
    s = simulate.Setting(LEVELS, (0.002, 0.0, 0.0, 0.0), 0.001)
    f = simulate.fit(simulate.runs(s, 400, np.random.default_rng(11), seeds=3), LEVELS)
    assert f["df"] == 17
    inside, spans = [], []
    for k in range(400):
        r = {"effect": float(f["effect"][k, 0]), "se": float(f["se"][k, 0]), "df": f["df"],
             "n_eff": float(f["n_eff"][0])}
        p = decision.price(r, "maximize", 24, 8, 0.0125, 0.001, None)
        true = decision._fewest_seeds({**r, "se": s.noise / math.sqrt(r["n_eff"])}, "maximize", 24, 8, 0.0125,
                                      0.001, decision.POWER, decision.MOST_SEEDS)
        high = p.seeds_high or math.inf
        assert p.seeds_low <= p.seeds <= high
        inside.append(p.seeds_low <= (true or math.inf) <= high)
        spans.append(high / p.seeds_low)
    share = float(np.mean(inside))
    print(f"true price inside the stated {decision.NOISE_LEVEL:.0%} range: {share:.3f} of 400 sweeps; "
          f"median high/low {np.median(spans):.2f}")
    assert 0.74 <= share <= 0.87, share
    assert decision.noise_range(17) == pytest.approx((0.686, 1.686), abs=1e-3)


def test_an_undecided_question_is_never_priced_at_what_was_already_spent():
    rng = np.random.default_rng(7)
    for _ in range(200):
        se = rng.uniform(0.0005, 0.005)
        r = {"effect": rng.normal(0, 2 * se), "se": se, "df": 23, "n_eff": 24.0}
        [d] = decision.decide([{"cells": 24, "records": [dict(r, factor="a", level="on", reference="off")]}],
                              "maximize", 0.001, alpha=0.0125)
        p = decision.price(r, "maximize", 24, 8, 0.0125, 0.001, None)
        if d.verdict == "undecided" and p is not None:
            assert p.more_trainings > 0


def test_a_verdict_once_reached_stays_and_a_recorded_decision_is_not_recomputed():
    q = {"factor": "a", "level": "on", "reference": "off", "df": 40, "n_eff": 42.0}
    early = {"cells": 48, "records": [dict(q, effect=0.02, se=0.003)]}
    later = {"cells": 400, "records": [dict(q, effect=0.0, se=0.001)]}
    [d] = decision.decide([early, later], "maximize", 0.001)
    assert (d.verdict, d.decided_at, d.effect) == ("better", 48, 0.02)
    recorded = dict(early, decisions={d.name: dict(d.recorded(), verdict="worse", adj_low=-1.0, adj_high=-0.5)})
    [again] = decision.decide([recorded, later], "maximize", 0.001)
    assert (again.verdict, again.decided_at, again.verdict_high) == ("worse", 48, -0.5)


def test_the_fast_simulation_fits_the_effects_as_the_report_does():
    rng = np.random.default_rng(3)
    s = simulate.Setting(LEVELS, (0.006, 0.0, -0.004, 0.002), 0.002)
    y = simulate.runs(s, 1, rng, seeds=5)
    f = simulate.fit(y, LEVELS)
    obs = [{"config": cfg, "seed": k, "value": float(y[0, i, k])} for i, cfg in enumerate(fractional())
           for k in range(5)]
    recs = {r["factor"]: r for r in estimate(obs, FACTORS, "maximize")["records"]}
    for j, k in enumerate(FACTORS):
        assert recs[k]["method"] == "regression" and recs[k]["df"] == f["df"]
        assert (recs[k]["effect"], recs[k]["se"], recs[k]["n_eff"]) == pytest.approx(
            (f["effect"][0, j], f["se"][0, j], f["n_eff"][j]), rel=1e-9)


def test_a_user_who_raises_the_budget_whenever_a_question_is_undecided_keeps_the_error_rate():
    """2000 sweeps each, the budget raised fourfold up to three times while any question is undecided."""
    null = simulate.Setting(LEVELS, (0.0, 0.0, 0.0, 0.0), 0.002)
    out = simulate.summary(null, simulate.sweeps(null, 2000, seed=1))
    assert out["false_call_rate"] <= 0.05 and out["coverage"] >= 0.95, out
    planted = simulate.Setting(LEVELS, (0.008, 0.0, -0.004, 0.002), 0.003)
    out = simulate.summary(planted, simulate.sweeps(planted, 2000, seed=2))
    assert out["false_call_rate"] <= 0.05 and out["coverage"] >= 0.95, out
    assert out["called_better"][0] >= 0.99, out


@pytest.mark.parametrize("truth", [(0.0, 0.0, 0.0, 0.0), (0.002, 0.0, 0.0, 0.0), (0.004, 0.0, 0.0, 0.0),
                                   (0.006, 0.0, 0.0, 0.0)])
def test_following_the_price_literally_decides_at_least_as_often_as_it_says(truth):
    s = simulate.Setting(LEVELS, truth, 0.002)
    out = simulate.follow_price(s, 1000, seed=5)
    error = 2 * math.sqrt(0.8 * 0.2 / out["priced"])  # two standard errors of the rate
    assert out["priced"] >= 100 and out["decided"] >= out["stated_chance"] - error, out
    assert out["decided"] >= out["stated_least"], out
    assert out["certain_priced"] >= 100 and out["decided_by_certain"] >= 0.95, out


def test_at_half_of_delta_the_average_chance_falls_short_but_the_least_one_and_the_certain_seeds_hold():
    # an effect at delta / 2 needs the interval narrow on both sides: no estimate prices it well on average,
    # and the price says so with the chance at the hardest effect the interval allows
    s = simulate.Setting(LEVELS, (0.001, 0.0, 0.0, 0.0), 0.002)
    out = simulate.follow_price(s, 500, seed=5)
    error = 2 * math.sqrt(0.5 * 0.5 / out["priced"])
    assert out["stated_least"] <= out["decided"] + error < out["stated_chance"], out
    assert out["decided_by_certain"] >= 0.95, out


def test_the_least_chance_is_the_chance_at_the_hardest_effect_the_interval_allows():
    # Monte Carlo over the effects the interval allows: the look's estimate given today's is
    # N((cells * effect_now + (n - cells) * t) / n, sd^2) for a true effect t
    r = {"effect": 0.0008, "se": 0.002, "df": 20, "n_eff": 12.0, "now_low": -0.006, "now_high": 0.0075}
    cells, n, each, delta = 24, 8 * 107, 0.0125, 0.002  # the seeds its price names
    se_n, c, sd = decision._at(r, cells, n, each)
    rng = np.random.default_rng(0)

    def decides(t):
        est = (cells * r["effect"] + (n - cells) * t) / n + sd * rng.standard_normal(200_000)
        lo, hi = est - c * se_n, est + c * se_n
        return float(((lo > 0) | (hi < 0) | ((lo > -delta) & (hi < delta))).mean())

    hardest = min(decides(t) for t in np.linspace(r["now_low"], r["now_high"], 261))
    least = decision.least(r, cells, n, each, delta)
    assert least == pytest.approx(hardest, abs=0.01) and 0.2 < least < 0.6
    assert least < decision.chance(r, "maximize", cells, n, each, delta)[1]
    # an interval that allows only large effects leaves no hard one: the floor rises
    assert decision.least({**r, "effect": 0.01, "now_low": 0.006}, cells, n, each, delta) > least + 0.3


def test_the_seeds_that_decide_whatever_the_effect_make_an_interval_at_most_delta_wide():
    r = {"effect": 0.0005, "se": 0.002, "df": 20, "n_eff": 12.0}
    n = decision.certain(r, 24, 8, 0.0125, 0.002)
    width = [2 * c * se for se, c, _ in (decision._at(r, 24, 8 * k, 0.0125) for k in (n - 1, n))]
    assert width[0] > 0.002 >= width[1]
    p = decision.price(r, "maximize", 24, 8, 0.0125, 0.002, None)
    assert p.seeds <= p.certain_seeds == n
    assert decision.chance(r, "maximize", 24, 8 * n, 0.0125, 0.002)[1] == pytest.approx(1.0)


def test_one_verdict_rule_serves_one_interval_and_a_simulation_of_thousands():
    # decision.verdicts decides arrays of intervals at once (the simulations); verdict is the same rule for one
    lo = np.array([0.001, -0.003, -0.0005, -0.002, -np.inf, 0.002, 0.003])
    hi = np.array([0.004, -0.001, 0.0005, 0.003, np.inf, 0.001, np.inf])  # the last two: empty, unbounded
    codes = decision.verdicts(lo, hi, "maximize", 0.001)
    words = [decision.verdict(a, b, "maximize", 0.001) for a, b in zip(lo, hi)]
    assert words == ["better", "worse", "equivalent", "undecided", "undecided", "undecided", "undecided"]
    assert [decision.CODE_VERDICT[int(c)] for c in codes] == words
    assert [decision.verdict(a, b, "minimize", 0.001) for a, b in zip(lo[:3], hi[:3])] == ["worse", "better",
                                                                                          "equivalent"]


def test_a_look_at_no_data_is_ignored():
    r = {"factor": "a", "level": "on", "reference": "off", "effect": 0.01, "se": 0.001, "df": 20, "n_eff": 21.0}
    final = decision.decide([{"cells": 0, "records": []}, {"cells": 24, "records": [r]}], "maximize", 0.001)
    assert final[0].verdict == "better" and final[0].decided_at == 24
    assert decision.decide([{"cells": 0, "records": []}], "maximize", 0.001) == []


def test_an_empty_running_intersection_is_flagged_as_failed_coverage_and_decides_nothing():
    """Looks whose intervals share no effect (coverage has failed: a look's interval missed the truth, or the
    runs changed between looks) give no verdict; the question says where it emptied, and stays so."""
    def rec(effect, se):
        return {"factor": "a", "level": "on", "reference": "off", "effect": effect, "se": se, "df": 40, "n_eff": 40.0}

    looks = [{"cells": 24, "records": [rec(0.0015, 0.0005)]},  # wide, undecided at delta 0.001
             {"cells": 32, "records": [rec(-0.02, 0.0005)]},  # far below it: the intersection is empty
             {"cells": 40, "records": [rec(0.0015, 0.0001)]}]
    [d] = decision.decide(looks, "maximize", 0.001, alpha=0.0125)
    assert d.verdict == "undecided" and d.empty_at == 32 and d.verdict_low > d.verdict_high
    assert d.decided_at is None
    [first] = decision.decide(looks[:1], "maximize", 0.001, alpha=0.0125)
    assert first.verdict == "undecided" and not first.empty_at


def test_the_report_says_coverage_failed_and_prices_nothing():
    import dataclasses

    from src.answer import records
    from src.answer import summary as answer
    from tests.answer.test_summary import answer_of

    ans = answer_of({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0})
    q = ans.records[0]
    ans.records[0] = dataclasses.replace(q, verdict="undecided", verdict_low=0.002, verdict_high=-0.01,
                                            empty_at=32, price=None)
    table = answer.verdict_table(ans)
    [row] = [ln for ln in table.splitlines() if ln.startswith(f"| {q.factor}: {q.level} vs {q.reference} |")]
    assert "| empty | undecided |" in row and "coverage failed at 32 trainings" in row
    assert any(ln.startswith(f"coverage failed for {q.factor}: {q.level} vs {q.reference}: its interval at 32")
               for ln in table.splitlines())
    assert records.load(records.dump(ans.records, "valid_auc", "maximize"))[0].empty_at == 32
