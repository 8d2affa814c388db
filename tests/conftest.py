import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import pytest  # noqa: E402

TINY = [
    "data=synthetic", "data.users=60", "data.items=80", "data.cats=4", "data.seq_len=25",
    "data.samples_per_user=8", "data.split.valid=2", "data.split.test=2", "data.max_len=20",
    "data.cache=false",
    "model.embedding.item=8", "model.embedding.cat=4", "model.mlp.width=16",
    "train.batch_size=64", "train.epochs=1", "train.probe.size=4", "train.probe.metrics_size=40",
]


@pytest.fixture
def store(tmp_path):
    """Tracking overrides for a private MLflow store in tmp_path."""
    db = tmp_path / "mlruns" / "mlflow.db"
    return [f"tracking.uri=sqlite:///{db}", f"tracking.artifact_root={tmp_path / 'mlruns' / 'artifacts'}"]


@pytest.fixture(autouse=True)
def _reset_mlflow():
    yield
    try:
        import mlflow

        while mlflow.active_run():
            mlflow.end_run()
    except ImportError:
        pass
