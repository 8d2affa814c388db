
import optuna
import pytest

from src.config import compose
from src.config.validate import validate
from src.sweep import SweepError
from src.sweep import space as search


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
