"""The best configuration as a confidence set (src/answer/best.py): on simulated sweeps of 8 configurations
whose truth is known, it holds the true best at every look, and it calls a single configuration best among
equals no more often than its error allows."""

import math
import time

import numpy as np
import pytest

from src.answer import best, decision
from src.answer import summary as answer
from tests.answer.test_effects import fractional

CONFIGS = fractional()  # the 8 configurations of a 2^(4-1) design


def sweep(rng, truth, seeds, noise=0.008, luck=0.004):
    """One simulated sweep's cells, seed by seed: value = 0.7 + the configuration's truth + the seed's luck +
    the run's noise."""
    out = []
    for s in range(seeds):
        shared = rng.normal(0, luck)
        out += [{"config": c, "seed": s, "value": 0.7 + truth[i] + shared + rng.normal(0, noise)}
                for i, c in enumerate(CONFIGS)]
    return out


def looks(cells, first=3, every=1):
    """The cells seen at each look: after `first` seeds, then after every seed more."""
    seeds = max(o["seed"] for o in cells) + 1
    for n in range(first, seeds + 1, every):
        yield [o for o in cells if o["seed"] < n]


def names(b):
    return {m.name for m in b.members}


def test_the_set_holds_the_true_best_at_every_look_in_at_least_95_percent_of_sweeps():
    rng = np.random.default_rng(3)
    truth = [0.0] * 8
    truth[5] = 0.008  # one configuration better than the rest by one run-noise SD
    true_best = " ".join(f"{k}={v}" for k, v in CONFIGS[5].items())
    missed, single, t = 0, 0, time.time()
    sims = 300
    for _ in range(sims):
        sets = [best.confidence_set(o, "maximize", 0.001, priced=False) for o in looks(sweep(rng, truth, 12))]
        missed += any(true_best not in names(b) for b in sets)
        single += sets[-1].verdict == "best"
    print(f"the set missed the true best at some look in {missed / sims:.3f} of {sims} sweeps; "
          f"called it alone at 12 seeds in {single / sims:.3f} ({time.time() - t:.1f} s)")
    assert missed / sims <= 0.05


def test_among_equals_a_single_configuration_is_called_best_in_at_most_5_percent_of_sweeps():
    rng = np.random.default_rng(4)
    called, t = 0, time.time()
    sims = 300
    for _ in range(sims):
        called += any(b.verdict == "best" for b in (best.confidence_set(o, "maximize", 0.001, priced=False)
                                                      for o in looks(sweep(rng, [0.0] * 8, 12))))
    print(f"a single configuration called best among equals in {called / sims:.3f} of {sims} sweeps "
          f"({time.time() - t:.1f} s)")
    assert called / sims <= 0.05


def test_the_verdicts_best_any_of_these_and_undecided():
    rng = np.random.default_rng(5)
    far = [0.0] * 8
    far[2] = 0.05
    clear = best.confidence_set(sweep(rng, far, 6), "maximize", 0.001)
    assert clear.verdict == "best" and len(clear.members) == 1 and clear.leader.levels == CONFIGS[2]
    assert clear.leader.low == 0.0 and clear.leader.high > 0 and len(clear.excluded) == 7
    # minimize: the same truth upside down
    low = best.confidence_set([{**o, "value": -o["value"]} for o in sweep(rng, far, 6)], "minimize", 0.001)
    assert low.verdict == "best" and low.leader.levels == CONFIGS[2] and low.leader.high == 0.0 > low.leader.low
    # two configurations far above six that are equal to each other, at a delta wide enough to say so
    two = [0.0] * 8
    two[1] = two[6] = 0.05
    pair = best.confidence_set(sweep(rng, two, 40, noise=0.002, luck=0.001), "maximize", 0.01)
    assert pair.verdict == "any of these" and {m.levels["a"] + m.levels["b"] for m in pair.members} == {
        CONFIGS[1]["a"] + CONFIGS[1]["b"], CONFIGS[6]["a"] + CONFIGS[6]["b"]}
    assert all(m.low > -0.01 for m in pair.members)
    tie = best.confidence_set(sweep(rng, [0.0] * 8, 3), "maximize", 0.001)
    assert tie.verdict == "undecided" and tie.price.seeds > 3 and tie.price.trainings == 8 * tie.price.seeds
    # one seed: nothing can be told apart, and the set says why
    one = best.confidence_set(sweep(rng, far, 1), "maximize", 0.001)
    assert one.verdict == "undecided" and len(one.members) == 8 and "one seed per configuration" in one.reason
    assert best.confidence_set(sweep(rng, far, 3)[:3], "maximize", 0.001).configurations == 3


def test_the_set_travels_through_effects_json_and_the_report():
    import dataclasses
    import json

    from src.answer import records
    from tests.answer.test_summary import answer_of

    rng = np.random.default_rng(6)
    b = best.confidence_set(sweep(rng, [0.0] * 8, 3), "maximize", 0.001)
    back = best.from_dict(json.loads(json.dumps(best.to_dict(b))))
    assert back == b
    ans = answer_of({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0})
    ans = dataclasses.replace(ans, best=[b], looks=[24], plan=answer.Outlook())
    text = answer.text(ans)
    assert f"best configuration: undecided among {len(b.members)} of 8 configurations" in text
    assert f"| {b.leader.name} | {b.leader.mean:.4f} |" in text and "to decide:" in text
    doc = json.loads(records.dump(ans.records, "valid_auc", "maximize", best=[b]))
    assert doc["version"] == records.VERSION and best.from_dict(doc["best"][0]) == b
    assert records.load_best(json.dumps(doc)) == [b]
    assert records.load_best(json.dumps({**doc, "best": None})) == []


@pytest.mark.parametrize("k", [2, 8])
def test_each_comparison_gets_alpha_over_k_minus_one(k):
    rng = np.random.default_rng(7)
    cells = [o for o in sweep(rng, [0.0] * 8, 4) if CONFIGS.index(o["config"]) < k]
    b = best.confidence_set(cells, "maximize", 0.001)
    assert b.configurations == k and b.alpha_each == pytest.approx(decision.ALPHA / (k - 1))
    assert math.isclose(sum([b.alpha_each] * (k - 1)), decision.ALPHA)


def test_racing_reaches_a_decided_set_with_fewer_trainings_and_keeps_the_true_best():
    """sweep.until=best gives seeds only to the configurations still in the set. On simulated sweeps of 8
    configurations, one best by one run-noise SD and the rest spread below it (1 to 4 SD), racing and seeding
    every configuration alike both end "best" on the true best, racing with at least 30% fewer trainings; the
    set holds the true best at every look under either."""
    from src.answer import simulate

    sd = 0.008
    truth = [0.0, -1 * sd, -1.5 * sd, -2 * sd, -2.5 * sd, -3 * sd, -3.5 * sd, -4 * sd]
    alike = simulate.race(truth, 100, seed=2, racing=False, most=400)
    raced = simulate.race(truth, 100, seed=2, racing=True, most=400)
    saving = 1 - raced["trainings"].mean() / alike["trainings"].mean()
    print(f"trainings to a decided set: every configuration alike {alike['trainings'].mean():.0f}, racing "
          f"{raced['trainings'].mean():.0f} ({saving:.0%} fewer); held the best {alike['held'].mean():.2f} and "
          f"{raced['held'].mean():.2f}")
    for r in (alike, raced):
        assert r["held"].mean() >= 0.95 and (r["verdict"] == "best").mean() >= 0.95
    assert saving >= 0.30, saving


def test_the_set_as_a_table_for_a_paper_and_a_frame_for_a_notebook():
    from src.answer import records

    rng = np.random.default_rng(8)
    far = [0.0] * 8
    far[2] = 0.05
    b = best.confidence_set(sweep(rng, far, 6), "maximize", 0.001)
    md = records.best_markdown([b])
    assert md.startswith("The configurations that cannot be told from the best") and "best: 1 of 8" in md
    assert f"| {b.leader.name} | {b.leader.mean:.4f} | [+0.0000, " in md
    tex = records.best_latex([b])
    assert "\\begin{tabular}{lrlr}" in tex and "\\toprule" in tex and b.leader.name in tex
    frame = records.best_frame([b])
    assert frame.loc[0, "leader"] and frame.loc[0, "a"] == CONFIGS[2]["a"] and frame.loc[0, "verdict"] == "best"
    assert records.best_markdown([]) == "" and records.best_frame([]).empty


def test_a_set_is_one_of_its_verdicts_and_its_names_are_the_reports():
    from src.answer.best import BestSet, Member, name

    m = Member({"a": 1, "b": "x"}, 0.7, None, None, 3)
    assert m.name == name(m.levels) == "a=1 b=x" and name({}) == "(base config)"
    with pytest.raises(ValueError, match="one of"):
        BestSet([m], "probably", 2, 0.05, 0.05, 0.001, 6)
