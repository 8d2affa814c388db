"""Every config group has a schema: a wrong type or unknown key names the key and the expected type,
before TensorFlow loads and before any data is read."""

import subprocess
import sys

import pytest

from src.config import compose
from src.config.paths import CONF_DIR, ROOT
from src.config.validate import ConfigError, validate
from src.run.registry import check_names


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.mlp.depth=abc"], "`model.mlp.depth`: input should be a valid integer, got 'abc'"),
        (["model.mlp.depth=1.5"], "`model.mlp.depth`: input should be a valid integer, got 1.5"),
        (["model.embedding.item=0"], "`model.embedding.item`: input should be greater than 0"),
        (["model.attention.scale=3"], "`model.attention.scale`: input should be a valid boolean"),
        (["model=dien", "model.aux_loss.hidden_units=[8,x]"], "`model.aux_loss.hidden_units.1`"),
        (["model=dien", "+model.evolution.gate=1"], "unknown config key `model.evolution.gate`"),
        (["model=base", "+model.attention.scale=true"], "unknown config key `model.attention`"),
        (["data.max_len=x"], "`data.max_len`: input should be a valid integer"),
        (["data.split.valid=-1"], "`data.split.valid`: input should be greater than 0"),
        (["data.negatives.sampling=zipf"], "`data.negatives.sampling`: input should be 'popularity' or 'uniform'"),
        (["+data.protocol=din"], "unknown config key `data.protocol`"),  # an Amazon key in MovieLens' config
        (["data=taobao", "data.behaviors=[pv,click]"], "`data.behaviors.1`"),
        (["data=amazon", "data.protocol=both"], "`data.protocol`: input should be 'din' or 'dien'"),
        (["data=synthetic", "data.users=1.5"], "`data.users`: input should be a valid integer"),
        (["data=synthetic", "data.noise=2"], "`data.noise`: input should be less than or equal to 1"),
        (["train.epochs=true"], "`train.epochs`: input should be a valid integer, got True"),
        (["train.optimizer.lr=-1"], "`train.optimizer.lr`: input should be greater than 0"),
        (["train.early_stopping.metric=acc"], "`train.early_stopping.metric`: input should be 'auc', 'gauc' or"),
        (["+train.epoch=3"], "Did you mean epochs"),
        (["train.progress=sometimes"], "`train.progress`"),
        (["tracking.uri=5"], "`tracking.uri`: input should be a valid string"),
        (["+tracking.port=5000"], "unknown config key `tracking.port`"),
        (["seed=x"], "`seed`: input should be a valid integer"),
    ],
)
def test_each_group_names_the_key_and_the_type(overrides, message):
    with pytest.raises(ConfigError) as e:
        validate(compose(overrides))
    assert message in str(e.value)


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "data").glob("*.yaml")))
def test_every_shipped_data_option_passes(option):
    validate(compose([f"data={option}"]))


@pytest.mark.parametrize("model", ["base", "din", "dien"])
@pytest.mark.parametrize("activation", sorted(p.stem for p in (CONF_DIR / "model" / "activation").glob("*.yaml")))
def test_every_shipped_model_option_passes(model, activation):
    check_names(validate(compose([f"model={model}", f"model/activation={activation}"])))


def test_registry_names_come_from_the_registries():
    from src.layers.recurrent import cell_names
    from src.run.optim import OPTIMIZERS

    cells = sorted({compose(["model=dien", f"model/evolution={p.stem}"]).model.evolution.cell
                    for p in (CONF_DIR / "model" / "evolution").glob("*.yaml")})
    assert cells == cell_names()  # every shipped cell option is registered, and every registered cell shipped
    for bad, message in [(["model=dien", "model.evolution.cell=lstm"], f"must be one of {cell_names()}"),
                         (["train.optimizer.name=adamw"], f"must be one of {sorted(OPTIMIZERS)}"),
                         (["model.attention.activation=dcie"], "unknown activation 'dcie'")]:
        with pytest.raises(ConfigError, match="must be one of|unknown activation") as e:
            check_names(validate(compose(bad)))
        assert message in str(e.value)


def test_a_bad_override_is_refused_before_tensorflow_loads(tmp_path):
    # with DIL_TF_LOGS=1 TensorFlow's native start-up lines are shown: none may appear
    env = {"DIL_TF_LOGS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "src.train", "model.mlp.depth=abc",
                          f"tracking.uri=sqlite:///{tmp_path}/m.db"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 2
    assert "`model.mlp.depth`: input should be a valid integer, got 'abc'" in out.stderr
    assert "absl" not in out.stderr and "oneDNN" not in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "m.db").exists()
