"""Study settings are checked in the config schema's style: the key, the expected type, suggestions."""

import pickle

import pytest

from src.sweep import SweepError
from src.sweep.definition import check_settings, load


@pytest.mark.parametrize(
    "values, message",
    [({"trials": 0}, "`sweep.trials`: input should be greater than 0"),
     ({"trails": 3}, "unknown config key `sweep.trails`. Did you mean trials?"),
     ({"workers": True}, "`sweep.workers`: input should be a valid integer"),
     ({"metric": "auc"}, "`sweep.metric`: input should be 'valid_auc', 'valid_gauc' or 'valid_logloss'"),
     ({"sampler": "bayes"}, "`sweep.sampler`: input should be 'tpe', 'random', 'grid' or 'fractional'"),
     ({"seeds": [1, 1]}, "`sweep.seeds` lists a seed twice"),
     ({"seeds": []}, "`sweep.seeds` must be a non-empty list of integers"),
     ({"grace": 10}, "`sweep.grace` (10.0) must be longer than `sweep.heartbeat` (30)"),
     ({"heartbeat": -1}, "`sweep.heartbeat`: input should be greater than 0"),
     ({"until": "decided"}, "`sweep.until=decided` adds seeds to a design: it needs `sweep.sampler=grid`"),
     ({"until": "best", "race_top": 1}, "`sweep.race_top`: input should be greater than or equal to 2")],
)
def test_a_wrong_setting_names_the_key(values, message):
    with pytest.raises(SweepError) as e:
        check_settings(values)
    assert message in str(e.value)


def test_a_sampled_sweep_may_race_its_top_configurations():
    s = check_settings({"until": "best", "sampler": "tpe", "race_top": 3})
    assert (s.until, s.race_top, s.designed) == ("best", 3, False)


def test_settings_take_their_defaults_and_survive_a_worker_process():
    s = check_settings({"metric": "valid_logloss", "seeds": 3, "timeout": 600})
    assert s.direction == "minimize" and s.seeds == (3,) and s.timeout == 600.0 and s.trials == 10
    d = load(["sweep=tiny", "sweep.seeds=[0,1]"])
    assert d.settings.seeds == (0, 1) and d.settings.name == "tiny"
    assert pickle.loads(pickle.dumps(d)).settings == d.settings


@pytest.mark.parametrize("argv, message", [
    (["sweep=none", "sweep.sampler=grid", "sweep.block=data", "model=choice(din,dien)"],
     "`sweep.block=data` names no dimension"),
    (["sweep=none", "sweep.sampler=grid", "sweep.block=data", "data=choice(synthetic,movielens)"],
     "nothing is left to ask about"),
    (["sweep=none", "sweep.block=data", "data=choice(synthetic,movielens)", "model=choice(din,dien)"],
     "`sweep.block` crosses a design with its levels: it needs `sweep.sampler=grid`"),
])
def test_a_block_must_be_a_dimension_of_a_design_with_something_left_to_ask(argv, message):
    with pytest.raises(SweepError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load(argv)


def test_a_block_is_part_of_the_studys_identity_and_crossed_whole_with_a_fraction():
    from src.config import compose
    from src.sweep import design

    dims = ["model/activation=choice(sigmoid,dice)", "model.mlp.depth=choice(1,2)", "model.mlp.width=choice(16,32)",
            "train.batch_size=choice(64,128)", "data.seed=choice(0,1,2)"]
    blocked = load(["sweep=none", "sweep.sampler=fractional", "sweep.block=data.seed", *dims])
    plain = load(["sweep=none", "sweep.sampler=fractional", *dims[:4]])
    assert blocked.settings.block == ("data.seed",) and blocked.signature() != load(
        ["sweep=none", "sweep.sampler=grid", *dims]).signature()
    points = design.points(blocked.settings, [], blocked.params, compose)
    asked = design.points(plain.settings, [], plain.params, compose)
    assert len(points) == 3 * len(asked) == 3 * 8  # the 2^(4-1) fraction, whole, in each of the 3 blocks
    for seed in (0, 1, 2):
        assert [{k: v for k, v in p.items() if k != "data.seed"} for p in points if p["data.seed"] == seed] == asked
