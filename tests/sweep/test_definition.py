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
     ({"heartbeat": -1}, "`sweep.heartbeat`: input should be greater than 0")],
)
def test_a_wrong_setting_names_the_key(values, message):
    with pytest.raises(SweepError) as e:
        check_settings(values)
    assert message in str(e.value)


def test_settings_take_their_defaults_and_survive_a_worker_process():
    s = check_settings({"metric": "valid_logloss", "seeds": 3, "timeout": 600})
    assert s.direction == "minimize" and s.seeds == (3,) and s.timeout == 600.0 and s.trials == 10
    d = load(["sweep=tiny", "sweep.seeds=[0,1]"])
    assert d.settings.seeds == (0, 1) and d.settings.name == "tiny"
    assert pickle.loads(pickle.dumps(d)).settings == d.settings
