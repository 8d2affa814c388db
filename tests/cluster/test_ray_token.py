"""A Ray cluster with token authentication (RAY_AUTH_MODE=token): a driver with the cluster's token runs a
sweep on it; a driver without it, or with another, is refused with the sweep's one line, before any study
exists. The cluster runs in a process of its own, so that this one keeps no token state of Ray's."""

import os
import secrets
import subprocess
import sys

import pytest

from src.config.paths import ROOT
from tests.cluster.test_ray import start

pytestmark = pytest.mark.slow

CLUSTER = """
import sys
from ray.cluster_utils import Cluster
c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
c.wait_for_nodes()
print(c.address, flush=True)
sys.stdin.read()  # until the test closes it
c.shutdown()
"""


@pytest.fixture(scope="module")
def token_cluster():
    """(address, token) of a one-node Cluster that asks every client for its token."""
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", CLUSTER], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    address = proc.stdout.readline().strip()
    assert address, "the cluster did not start"
    yield address, token
    proc.stdin.close()
    proc.wait(timeout=120)


def without_token(tmp_path) -> dict:
    """The environment of a driver that has no token: none in the environment, none in its home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    (tmp_path / "home").mkdir(exist_ok=True)
    return {**env, "HOME": str(tmp_path / "home")}


def sweep(tmp_path, address, name, env):
    log = tmp_path / f"{name}.log"
    proc = start([f"sweep.name={name}", "sweep.trials=2", f"sweep.storage=journal:{tmp_path / name}.journal",
                  f"sweep.ray_address={address}", f"tracking.uri=sqlite:///{tmp_path / name}.db",
                  f"tracking.artifact_root={tmp_path / 'artifacts'}"], log, env=env)
    proc.wait(timeout=600)
    return proc.returncode, log.read_text()


def test_a_driver_with_the_token_runs_a_sweep(tmp_path, token_cluster):
    address, token = token_cluster
    env = {**without_token(tmp_path), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    rc, out = sweep(tmp_path, address, "with_token", env)
    assert rc == 0, out[-5000:]
    assert "Ray workers:" in out and "COMPLETE: valid_auc" in out
    assert token not in out  # the token is never printed


@pytest.mark.parametrize("case, says", [
    ("none", "refused this driver: its token is missing or not the cluster's"),  # Ray's mode unset, no token
    ("mode_only", "asks for a token and this driver has none"),  # RAY_AUTH_MODE=token, no token
    ("another", "refused this driver: its token is missing or not the cluster's"),
])
def test_a_driver_without_the_token_is_refused_before_the_study(tmp_path, token_cluster, case, says):
    address, token = token_cluster
    env = without_token(tmp_path)
    if case != "none":
        env["RAY_AUTH_MODE"] = "token"
    if case == "another":
        env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    rc, out = sweep(tmp_path, address, case, env)
    assert rc == 2, out[-5000:]
    [line] = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert f"the Ray cluster at {address} {says}" in line, out[-3000:]
    assert "RAY_AUTH_TOKEN" in line and "ray get-auth-token" in line
    assert "Traceback" not in out, out[-3000:]
    assert not (tmp_path / f"{case}.journal").exists()  # refused before the study exists
    assert token not in out
