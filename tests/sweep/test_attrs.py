"""What a study remembers (src/sweep/attrs.py): every key round-trips through a real Optuna storage with
its type, a value of another type is refused before it is written, and no two keys share a name."""

import optuna
import pytest

from src.sweep import attrs

SAMPLES = {int: 3, float: 0.25, str: "x", list: ["a=1"], dict: {"0": 0.7}, bool: True}


@pytest.fixture
def study(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")


def test_keys_have_distinct_names():
    names = [k.name for k in attrs.TRIAL + attrs.STUDY]
    assert len(names) == len(set(names))


def test_every_key_round_trips_with_its_type_and_reads_its_default_when_missing(study):
    trial = study.ask()
    for k in attrs.TRIAL:
        assert not k.has(trial) and k.get(trial) == k.missing()
        k.set(trial, SAMPLES[k.kinds[0]])
    for k in attrs.STUDY:
        k.set(study, SAMPLES[k.kinds[0]])
    study.tell(trial, 0.5)
    again = optuna.load_study(study_name=study.study_name, storage=study._storage)
    [frozen] = again.get_trials()
    assert all(k.get(frozen) == SAMPLES[k.kinds[0]] for k in attrs.TRIAL)
    assert all(k.get(again) == SAMPLES[k.kinds[0]] for k in attrs.STUDY)


@pytest.mark.parametrize("key,value", [(attrs.SEED, "0"), (attrs.SEED, True), (attrs.SEED_VALUES, [0.7]),
                                       (attrs.FAILURE, None), (attrs.SURPLUS, 1)])
def test_a_value_of_another_type_is_refused_and_nothing_is_written(study, key, value):
    trial = study.ask()
    with pytest.raises(TypeError, match=key.name):
        key.set(trial, value)
    assert not key.has(study.get_trials()[0])
    with pytest.raises(TypeError, match=key.name):
        attrs.enqueued({key: value})


def test_an_enqueued_cell_carries_its_seed(study):
    study.enqueue_trial({"x": 1}, user_attrs=attrs.enqueued({attrs.SEED: 2}))
    [waiting] = study.get_trials()
    assert attrs.SEED.get(waiting) == 2 and attrs.enqueued_params(waiting) == {"x": 1}
