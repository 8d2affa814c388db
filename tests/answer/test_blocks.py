"""Blocks (src/answer/blocks.py) on simulated sweeps whose per-block truths are known: the family's false calls
stay under 5% when nothing differs anywhere, the pooled interval holds the average of the truths when the
blocks differ, and an interaction planted at a stated size is found; and the pieces on small cases."""

import numpy as np
import pytest

from src.answer import blocks, decision
from src.answer.simulate import block_summary, block_sweep

SIMS = 300


def calls(truths, seed, **kw):
    rng = np.random.default_rng(seed)
    return [block_sweep(truths, rng, **kw) for _ in range(SIMS)]


def test_with_no_effect_anywhere_the_family_makes_a_false_call_in_5_percent_of_sweeps_or_fewer():
    out = calls((0.0, 0.0, 0.0), 1, delta=0.02)  # a margin 12 seeds can reach
    false = [any(d.verdict in ("better", "worse") for d in decided)
             or any(p.verdict in ("better", "worse") or p.interaction == blocks.DEPENDS for p in pooled)
             for decided, pooled, _ in out]
    assert np.mean(false) <= 0.05, np.mean(false)
    # and the procedure is not idle: most null questions are called equivalent by the last look
    assert np.mean([p.verdict == "equivalent" for _, pooled, _ in out for p in pooled]) > 0.5


def test_the_pooled_interval_holds_the_average_of_the_blocks_truths_when_they_differ():
    truths = (0.012, -0.004, 0.020)
    out = calls(truths, 2)
    covered = [p.low <= np.mean(truths) <= p.high for _, pooled, _ in out for p in pooled]
    assert len(covered) == SIMS and np.mean(covered) >= 0.95, np.mean(covered)
    re = [p.random_effects for _, pooled, _ in out for p in pooled]
    assert all(r["k"] == 3 and r["tau2"] >= 0 and 0 <= r["i2"] <= 1 for r in re)
    assert np.median([r["i2"] for r in re]) > 0.5  # the spread between these blocks is mostly real


def test_an_interaction_of_a_stated_size_is_found_in_80_percent_of_sweeps():
    # the effect is 0 in one block and 0.04 (five times a run's noise, 0.008) in the other; 12 seeds
    out = calls((0.0, 0.04), 3)
    found = np.mean([pooled[0].interaction == blocks.DEPENDS for _, pooled, _ in out])
    assert found >= 0.8, found
    better = np.mean([decided[1].verdict == "better" for decided, _, _ in out])
    assert better >= 0.8, better


def test_blocks_that_stop_when_decided_keep_the_error_rate_and_spend_less():
    # sequential per block (sweep.until=decided): a block whose question is decided gets no more seeds, the
    # others go on; the blocks' noise differs fourfold
    noise = (0.004, 0.008, 0.016)
    null = calls((0.0, 0.0, 0.0), 4, delta=0.02, noise=noise, per_block=True)
    false = [any(d.verdict in ("better", "worse") for d in decided)
             or any(p.verdict in ("better", "worse") or p.interaction == blocks.DEPENDS for p in pooled)
             for decided, pooled, _ in null]
    assert np.mean(false) <= 0.05, np.mean(false)
    truths = (0.03, 0.0, 0.01)
    out = calls(truths, 5, delta=0.02, noise=noise, per_block=True)
    held = [all(d.verdict_low <= truths[int(d.block[-1])] <= d.verdict_high for d in decided)
            and all(p.low <= np.mean(truths) <= p.high for p in pooled) for decided, pooled, _ in out]
    assert np.mean(held) >= 0.95, np.mean(held)  # every block's interval and the pooled one, together
    everywhere = calls(truths, 5, delta=0.02, noise=noise)
    spent, full = np.mean([n for *_, n in out]), np.mean([n for *_, n in everywhere])
    assert spent < 0.9 * full, (spent, full)  # the quiet block with a large effect stops early
    # and the verdicts are as good: the large effect is called better as often
    assert np.mean([d[0].verdict == "better" for d, _, _ in out]) >= 0.95


def test_the_random_effects_interval_covers_the_mean_of_a_population_of_blocks():
    # each sweep draws five blocks' true effects from N(0.01, 0.01); 95% nominal, 2 SE of simulation error
    pop = block_summary((0.01,) * 5, 2 * SIMS, seed=6, tau=0.01)
    assert pop["random_effects_coverage"] >= 0.93 and pop["median_i2"] > 0.5, pop
    # blocks that agree: the interval is never narrower than the weights alone allow, and I^2 stays near 0
    same = block_summary((0.01,) * 5, SIMS, seed=7)
    assert same["random_effects_coverage"] >= 0.95 and same["median_i2"] < 0.1, same


def test_random_effects_read_each_blocks_latest_estimate_not_the_one_its_stop_picked():
    def look(cells, effects):
        return {"cells": cells, "records": [{"factor": "f", "level": "b", "reference": "a", "effect": e, "se": 0.002,
                                             "df": 20, "n_eff": 12.0, "block": f"blk={i}"}
                                            for i, e in enumerate(effects)]}
    looks = [look(24, [0.05, 0.05])]
    looks[0]["decisions"] = {d.name: d.recorded() for d in decision.decide(looks, "maximize", 0.005)}
    looks.append(look(48, [0.02, 0.03]))
    decided = decision.decide(looks, "maximize", 0.005)
    assert [(d.verdict, d.effect, d.now_effect) for d in decided] == [("better", 0.05, 0.02),
                                                                              ("better", 0.05, 0.03)]
    p = blocks.pooled(decided, "maximize", 0.005)[0]
    assert p.effect == pytest.approx(0.025) and p.random_effects["mu"] == pytest.approx(0.025)


def test_the_interaction_verdict_on_intervals():
    assert blocks.interaction([(0.01, 0.03), (-0.01, 0.005)], 0.01) == blocks.DEPENDS
    assert blocks.interaction([(0.000, 0.004), (-0.003, 0.005)], 0.01) == blocks.SAME
    assert blocks.interaction([(-0.02, 0.02), (-0.01, 0.01)], 0.01) == blocks.UNDECIDED
    assert blocks.interaction([(-np.inf, np.inf), (0.0, 0.01)], 0.01) == blocks.UNDECIDED


def test_random_effects_on_a_textbook_case():
    # equal effects: no heterogeneity, tau^2 0, the mean is the common effect
    r = blocks.random_effects([0.01, 0.01, 0.01], [0.002, 0.003, 0.004])
    assert r["tau2"] == 0 and r["i2"] == 0 and r["mu"] == pytest.approx(0.01) and r["q"] == pytest.approx(0)
    # far apart with small standard errors: almost all of the spread is between blocks
    r = blocks.random_effects([0.0, 0.05], [0.001, 0.001])
    assert r["i2"] > 0.99 and r["tau2"] == pytest.approx(0.05 ** 2 / 2 - 0.001 ** 2, rel=1e-6)
    assert r["low"] < 0.025 < r["high"] and r["q_p"] < 1e-6
    assert blocks.random_effects([0.01], [0.001]) is None


def test_blocks_split_the_observations_and_name_themselves():
    obs = [{"config": {"f": "a", "data": "x"}, "seed": 0, "value": 1.0},
           {"config": {"f": "b", "data": "y"}, "seed": 0, "value": 2.0}]
    parts = blocks.split(obs, ["data"])
    assert list(parts) == ["data=x", "data=y"] and parts["data=x"][0]["config"] == {"f": "a"}
    assert blocks.name({"data.seed": 1, "data": "synthetic"}) == "data=synthetic, data.seed=1"
