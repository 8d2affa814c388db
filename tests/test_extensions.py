"""Extensions in the user's own code, named from the config with no edit under src/: the worked example of
docs/extending.md (docs/examples/mylab) adds a data source and an activation, and a sweep uses both."""

import subprocess

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from src.config import compose
from src.config.paths import ROOT
from src.config.validate import ConfigError, validate
from src.data import DataError, load_data
from tests.sweep.test_sweep import sweep_cmd

SOURCE = "docs.examples.mylab.sources:SessionLog"


def sessions(path, users=60, items=80, cats=4, per_user=12, seed=0):
    """A session log: each user keeps to one category; times increase along a session."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for u in range(users):
            c = u % cats
            picks = [int(rng.integers(0, items // cats)) * cats + c for _ in range(per_user)]
            f.write(f"user{u}\t" + " ".join(f"i{i}:c{i % cats}:{1000 + 10 * t}" for t, i in enumerate(picks)) + "\n")
    return path


def test_a_source_in_the_users_code_is_named_from_the_config_and_checked_by_its_own_schema(tmp_path):
    log = sessions(tmp_path / "log.txt")
    cfg = compose(["data=sessions_example", f"data.path={log}", "data.cache=false"])
    config = validate(cfg)
    assert type(config.data).__name__ == "SessionLogConfig"
    d = load_data(config.plain["data"])
    assert d.vocab["cat"] == 4 + 2 and d.size("test") == 2 * 60  # each user's last sample and its negative
    with pytest.raises(ConfigError, match=r"protocl"):  # a typo in its keys, refused as any other
        validate(compose(["data=sessions_example", "+data.protocl=din"]))
    with pytest.raises(ConfigError, match=r"`data.source`: cannot import 'mylab_nowhere'"):
        validate(compose(["data=sessions_example", "data.source=mylab_nowhere:Log"]))
    with pytest.raises(ConfigError, match=r"has no 'Nope' \(it has .*'SessionLog'"):
        validate(compose(["data=sessions_example", "data.source=docs.examples.mylab.sources:Nope"]))
    write_bad = tmp_path / "bad.txt"
    write_bad.write_text("u1\ti1:c1:10 i2:c1\n")
    with pytest.raises(DataError, match=r"bad.txt:1: 'i2:c1' is not item:category:time"):
        load_data({**config.plain["data"], "path": str(write_bad)})


def test_an_activation_in_the_users_code_joins_the_registry_when_the_config_lists_its_module():
    from src.run.registry import check_names

    cfg = compose(["model=din", "model.activation.name=swish", "extensions=[docs.examples.mylab.layers]"])
    check_names(validate(cfg))  # imported, registered, found
    with pytest.raises(ConfigError, match=r"`extensions`: cannot import 'mylab_nowhere'"):
        check_names(validate(compose(["extensions=[mylab_nowhere]"])))


def test_a_model_of_the_users_own_is_built_by_target_trained_and_tracked(tmp_path, store):
    from src.run.registry import check_names
    from src.run.training import train_run
    from tests.conftest import TINY

    target = "+model._target_=docs.examples.mylab.models.max_pooling"
    overrides = [*TINY, "model=base", target, *store]
    result = train_run(compose(overrides), overrides, log=lambda m: None)
    assert 0 < result.test["auc"] < 1
    import mlflow

    run = mlflow.get_run(result.run_id)
    assert run.data.params["model._target_"] == "docs.examples.mylab.models.max_pooling"
    with pytest.raises(ConfigError, match=r"`model._target_`: cannot import 'mylab_nowhere'"):
        check_names(validate(compose(["model=base", "+model._target_=mylab_nowhere.build"])))
    with pytest.raises(ConfigError, match=r"`model._target_`: 'docs.examples.mylab.models' has no function 'nope'"):
        check_names(validate(compose(["model=base", "+model._target_=docs.examples.mylab.models.nope"])))


@pytest.mark.slow
def test_a_sweep_asks_about_an_activation_of_the_users_own_on_a_source_of_the_users_own(tmp_path, empty_mlflow_db):
    from tests.conftest import mlflow_db_at

    log = sessions(tmp_path / "log.txt")
    db = mlflow_db_at(tmp_path / "mlflow.db", empty_mlflow_db)
    journal = tmp_path / "optuna.journal"
    args = ["sweep=none", "data=sessions_example", f"data.path={log}", "data.cache=false",
            "extensions=[docs.examples.mylab.layers]", "model=din", "model.mlp.width=16",
            "model.embedding.item=8", "model.embedding.cat=4", "train.epochs=1", "train.batch_size=64",
            "train.probe.size=4", "train.probe.metrics_size=40", "sweep.sampler=grid", "sweep.pruner=none",
            "sweep.trials=1", "sweep.seeds=[0]", "model.activation.name=choice(sigmoid,swish)", "sweep.name=ext",
            f"sweep.storage=journal:{journal}", f"tracking.uri=sqlite:///{db}",
            f"tracking.artifact_root={tmp_path / 'artifacts'}"]
    out = subprocess.run(sweep_cmd(args), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="ext", storage=JournalStorage(JournalFileBackend(str(journal))))
    done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert sorted(t.params["model.activation.name"] for t in done) == ["sigmoid", "swish"], out.stdout[-3000:]
