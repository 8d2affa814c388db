"""`make dashboard`: Optuna's dashboard serves a study read-only."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from src.config.paths import ROOT
from src.tools.dashboard import ReadOnlyStorage
from src.tools.services import free_port


def study_in(path):
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="looked-at", storage=storage, direction="maximize")
    for v in (0.6, 0.7):
        study.add_trial(optuna.trial.create_trial(params={"x": v}, distributions={
            "x": optuna.distributions.FloatDistribution(0, 1)}, value=v))
    return storage


def test_reads_go_through_and_writes_are_refused(tmp_path):
    ro = ReadOnlyStorage(study_in(tmp_path / "j"))
    study = optuna.load_study(study_name="looked-at", storage=ro)
    assert study.best_value == 0.7 and len(study.trials) == 2
    with pytest.raises(PermissionError, match="read-only"):
        study.set_user_attr("note", "x")
    with pytest.raises(PermissionError, match="read-only"):
        optuna.delete_study(study_name="looked-at", storage=ro)


@pytest.mark.slow
def test_the_dashboard_serves_the_study_and_refuses_to_delete_it(tmp_path):
    study_in(tmp_path / "j")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "src.tools.dashboard", f"journal:{tmp_path / 'j'}",
                             "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=5))["study_summaries"]
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None
                time.sleep(0.5)
        [s] = studies
        assert s["study_name"] == "looked-at"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/studies/{s['study_id']}", method="DELETE"),
                                   timeout=10)
        assert optuna.load_study(study_name="looked-at",
                                 storage=JournalStorage(JournalFileBackend(str(tmp_path / "j")))).best_value == 0.7
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_no_journal_yet_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "src.tools.dashboard", f"journal:{tmp_path / 'none'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "no study journal" in out.stderr and "make sweep" in out.stderr
