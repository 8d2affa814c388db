import json

import numpy as np
import optuna
import pytest

from src.config import compose
from src.config.validate import validate
from src.sweep import space as search
from src.sweep.space import SweepError


def one(expr):
    base, params, settings = search.parse([expr])
    assert not base and not settings
    (p,) = params.values()
    return p


def test_choice_range_interval_tags():
    p = one("model/activation=choice(sigmoid,dice)")
    assert p.is_group and p.distribution() == optuna.distributions.CategoricalDistribution(["sigmoid", "dice"])
    p = one("model.mlp.depth=range(1,4)")  # Hydra's range: end excluded
    assert p.distribution() == optuna.distributions.IntDistribution(1, 3) and p.values() == [1, 2, 3]
    p = one("model.mlp.width=range(64,257,64)")
    assert p.values() == [64, 128, 192, 256]
    p = one("model.mlp.dropout=range(0.0,0.3,0.1)")
    assert p.kind == "float" and p.values() == [0.0, 0.1, 0.2]
    p = one("model.mlp.taper=interval(0.2,0.8)")  # floats, both ends
    assert p.distribution() == optuna.distributions.FloatDistribution(0.2, 0.8)
    p = one("model.mlp.width=tag(int,interval(16,256))")  # integer interval, both ends included
    assert p.distribution() == optuna.distributions.IntDistribution(16, 256)
    p = one("train.optimizer.lr=tag(log,interval(1e-4,1e-2))")
    assert p.distribution() == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    p = one("model.mlp.width=tag(int,log,interval(16,256))")
    assert p.distribution() == optuna.distributions.IntDistribution(16, 256, log=True)
    p = one("model.attention.scale=choice(true,false)")
    assert p.choices == (True, False) and p.override(False) == "model.attention.scale=false"


def test_plain_overrides_and_settings():
    base, params, settings = search.parse(["data=movielens", "train.epochs=3", "sweep.trials=7",
                                           "sweep.seeds=[0,1]", "model.mlp.depth=choice(1,2)"])
    assert base == ["data=movielens", "train.epochs=3"]
    assert settings == {"trials": 7, "seeds": [0, 1]} and list(params) == ["model.mlp.depth"]


def test_cli_replaces_and_fixes_file_dimensions():
    file_part = search.parse(["model.mlp.depth=range(1,4)", "model/activation=choice(sigmoid,dice)", "train.epochs=2"])
    cli = search.parse(["model.mlp.depth=3", "model/activation=choice(prelu,dice)", "train.epochs=1"])
    base, params, _ = search.merge(file_part, cli)
    assert "model.mlp.depth" not in params and params["model/activation"].choices == ("prelu", "dice")
    assert base == ["model.mlp.depth=3", "train.epochs=1"]
    base, params, _ = search.merge(file_part, search.parse(["~model/activation"]))
    assert "model/activation" not in params and "~model/activation" not in base


@pytest.mark.parametrize(
    "expr, match",
    [("x=choice()", "empty choice"), ("x=interval(5,1)", "inverted interval"), ("x=range(4,1)", "empty range"),
     ("x=tag(foo,interval(1,2))", "unknown tag"), ("x=tag(log,interval(0,1))", "positive lower bound"),
     ("x=tag(int,interval(1.5,3))", "whole-number"), ("x=choice(a,a)", "twice"), ("x=choice(a", "cannot parse"),
     ("sweep.trials=choice(1,2)", "cannot be swept")],
)
def test_grammar_errors_name_the_dimension(expr, match):
    with pytest.raises(SweepError, match=match):
        search.parse([expr])


def test_conditional_dimensions_are_sampled_only_where_they_apply():
    base = ["data=synthetic"]
    _, params, _ = search.parse(["model=choice(din,dien)", "model/evolution=choice(gru,augru)",
                                 "model.aux_loss.alpha=interval(0.1,1.0)", "model.mlp.depth=choice(1,2)"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        overrides = search.sample(trial, base, params, compose)
        chosen = dict(o.split("=", 1) for o in overrides[1:])
        if chosen["model"] == "din":
            assert set(trial.params) == {"model", "model.mlp.depth"}
        else:
            assert set(trial.params) == set(params)
        validate(compose(overrides))
        seen.add(chosen["model"])
        study.tell(trial, 0.5)
    assert seen == {"din", "dien"}


def test_grid_expands_conditional_dimensions():
    _, params, _ = search.parse(["model=choice(din,dien)", "model/evolution=choice(gru,augru)",
                                 "model/activation=choice(sigmoid,dice)"])
    points = search.grid(["data=synthetic"], params, compose)
    assert len(points) == 2 + 4  # din x activation, dien x evolution x activation
    assert {"model": "din", "model/activation": "dice"} in points
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    with pytest.raises(SweepError, match="continuous"):
        search.grid([], search.parse(["train.optimizer.lr=interval(0.1,0.2)"])[1], compose)


@pytest.mark.parametrize(
    "exprs, match",
    [(["model.mlp.dpeth=choice(1,2)"], "model.mlp.dpeth.*did you mean model.mlp.depth"),
     (["model=din", "model/evolution=choice(gru,augru)"], "model/evolution"),
     (["model/activation=choice(sigmoid,dicee)"], "dicee"),
     (["train.batch_size=choice(a,b)"], "train.batch_size"),
     (["model=choice(din,transformer)"], "transformer")],
)
def test_check_fails_before_the_first_trial(exprs, match):
    base, params, _ = search.parse(exprs)
    with pytest.raises(SweepError, match=match):
        search.check(base, params, compose, validate)


@pytest.mark.parametrize("k", range(4, 11))
def test_fractional_designs_keep_main_effects_clear_of_two_factor_interactions(k):
    words, runs = search.design_columns(k)
    assert search.resolution(words) >= 4
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
    words, runs = search.design_columns(3)
    assert words == [] and len(runs) == 8  # 2^(3-1) would be resolution III: the full factorial instead


def test_fractional_needs_two_level_dimensions():
    _, params, _ = search.parse(["model.mlp.depth=choice(1,2,3)", "model/activation=choice(sigmoid,dice)"])
    with pytest.raises(SweepError, match="two-level"):
        search.fractional(params)


def test_the_default_sweep_answers_its_four_questions_with_seeds():
    from src.sweep.definition import load

    d = load([])
    assert d.settings.sampler == "fractional" and len(d.settings.seeds) >= 3 and d.settings.pruner == "none"
    assert set(d.params) == {"model.mlp.depth", "model/activation", "model.attention.scale", "model/evolution"}
    points = search.fractional(d.params)
    assert len(points) == d.settings.trials == 8
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 8
    for key in d.params:  # every level of every factor in half of the configurations
        assert sorted(str(p[key]) for p in points).count(str(d.params[key].values()[0])) == 4


def test_workers_are_placed_round_robin_on_the_gpus():
    from src.sweep.driver import placement

    assert placement(4, ["0", "1"], 2) == ["0", "1", "0", "1"]
    assert placement(3, ["2", "5"], 2) == ["2", "5", "2"]
    assert placement(2, [], 1) == [None, None]
    with pytest.raises(SweepError, match="3 workers do not fit on 1 GPU"):
        placement(3, ["0"], 2)
