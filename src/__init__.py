"""deep-interest-lab: sweeps over the Deep Interest Network family (DIN, DIEN)."""

import os

# nothing the project runs sends usage reports: MLflow's telemetry (read when mlflow is first imported, so
# set here, before any module of the project imports it) and Ray's usage stats (src/sweep/cluster.py),
# unless the user sets them otherwise
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
