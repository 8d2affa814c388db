import json

import numpy as np
import pytest

from src.config import compose
from src.sweep import SweepError, design
from src.sweep import space as search


def test_grid_expands_conditional_dimensions():
    _, params, _ = search.parse(["model=choice(din,dien)", "model/evolution=choice(gru,augru)",
                                 "model/activation=choice(sigmoid,dice)"])
    points = design.grid(["data=synthetic"], params, compose)
    assert len(points) == 2 + 4  # din x activation, dien x evolution x activation
    assert {"model": "din", "model/activation": "dice"} in points
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    with pytest.raises(SweepError, match="continuous"):
        design.grid([], search.parse(["train.optimizer.lr=interval(0.1,0.2)"])[1], compose)


@pytest.mark.parametrize("k", range(4, 11))
def test_fractional_designs_keep_main_effects_clear_of_two_factor_interactions(k):
    words, runs = design.design_columns(k)
    assert design.resolution(words) >= 4
    x = np.array(runs)
    assert len({tuple(r) for r in runs}) == len(runs) < 2 ** k
    # resolution IV: every main-effect column is orthogonal to every other one and to every
    # two-factor interaction column
    for i in range(k):
        for j in range(k):
            if j != i:
                assert x[:, i] @ x[:, j] == 0
            for m in range(j + 1, k):
                if i not in (j, m):
                    assert x[:, i] @ (x[:, j] * x[:, m]) == 0, (i, j, m)


def test_a_half_fraction_of_three_factors_is_not_offered():
    words, runs = design.design_columns(3)
    assert words == [] and len(runs) == 8  # 2^(3-1) would be resolution III: the full factorial instead


def test_fractional_needs_two_level_dimensions():
    _, params, _ = search.parse(["model.mlp.depth=choice(1,2,3)", "model/activation=choice(sigmoid,dice)"])
    with pytest.raises(SweepError, match="two-level"):
        design.fractional(params)


def test_the_default_sweep_answers_its_four_questions_with_seeds():
    from src.sweep.definition import load

    d = load([])
    s = d.settings
    assert s.sampler == "fractional" and s.designed and s.pruner == "none" and s.trials is None
    assert len(s.seeds) >= 2 and s.until == "decided" and s.budget >= 3 * 8 and s.equivalence == 0.001
    assert set(d.params) == {"model.mlp.depth", "model/activation", "model.attention.scale", "model/evolution"}
    points = design.fractional(d.params)
    assert len(points) == 8
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 8
    for key in d.params:  # every level of every factor in half of the configurations
        assert sorted(str(p[key]) for p in points).count(str(d.params[key].values()[0])) == 4


def test_cells_cover_the_design_seed_by_seed():
    points = [{"a": 1}, {"a": 2}, {"a": 3}]
    cells = design.cells(points, [0, 1])
    assert cells == [({"a": 1}, 0), ({"a": 2}, 0), ({"a": 3}, 0), ({"a": 1}, 1), ({"a": 2}, 1), ({"a": 3}, 1)]


def test_a_designed_sweep_is_exactly_its_design_unless_asked():
    from src.sweep.definition import load

    d = load(["sweep=none", "sweep.sampler=grid", "model/activation=choice(sigmoid,dice)"])
    assert d.settings.trials is None and d.settings.pruner == "none"  # the design's cells, nothing pruned
    sampled = load(["sweep=none", "model/activation=choice(sigmoid,dice)"])
    assert sampled.settings.trials == 10 and sampled.settings.pruner == "median"
    asked = load(["sweep=none", "sweep.sampler=grid", "sweep.pruner=median", "sweep.trials=9",
                  "model/activation=choice(sigmoid,dice)"])
    assert asked.settings.pruner == "median" and asked.settings.trials == 9
    with pytest.raises(SweepError, match="until=decided"):
        load(["sweep=none", "sweep.until=decided", "model/activation=choice(sigmoid,dice)"])
