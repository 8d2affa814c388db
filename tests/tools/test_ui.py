"""The URL a run prints opens MLflow's Model training view on that run, in a real browser (headless
Chromium from Debian's package, which .ci/run installs): the run's metric names, and its attention
artifact on the artifacts tab."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from src.config import compose
from src.config.paths import ROOT
from src.run.training import train_run
from src.tools.services import free_port
from tests.conftest import TINY, job_runner_processes

pytestmark = pytest.mark.slow
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def rendered_text(url: str) -> str:
    """The page's text after its scripts ran (Chromium's --dump-dom with a virtual time budget)."""
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium package is needed (apt-get install chromium; .ci/run installs it)"
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000",
                              "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", out.stdout))


@contextlib.contextmanager
def served(store, tmp_path):
    """`python -m src.tools.ui` on the store, on a free port; yields the port."""
    port = free_port()
    db, artifacts = store[0].split("=", 1)[1], store[1].split("=", 1)[1]
    ui = subprocess.Popen([sys.executable, "-m", "src.tools.ui", "--port", str(port), "--uri", db,
                           "--artifact-root", artifacts], cwd=ROOT, stdout=open(tmp_path / "ui.log", "w"),
                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline and ui.poll() is None, (tmp_path / "ui.log").read_text()[-2000:]
                time.sleep(1)
        assert not job_runner_processes(ui.pid), job_runner_processes(ui.pid)
        yield port
    finally:
        os.killpg(ui.pid, 15)
        ui.wait(timeout=30)


def test_the_printed_url_opens_the_model_training_run_page(store, tmp_path):
    lines = []
    result = train_run(compose(TINY + ["model=din"] + store), log=lines.append)
    [hint] = [line for line in lines if line.startswith("browse: ")]
    url = hint.split("then open ", 1)[1]
    assert url.endswith(f"/runs/{result.run_id}?workflowType=machine_learning")
    with served(store, tmp_path) as port:
        url = url.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}")
        page = rendered_text(url)
        # the Model training run page: its tabs and the run's metrics; not the GenAI view's sidebar
        assert "Model metrics" in page and "Artifacts" in page, page[-3000:]
        for name in ("valid_auc", "valid_gauc", "attention_entropy", "best_valid_auc", "test_auc"):
            assert name in page, name
        assert "Judges" not in page and "Evaluation runs" not in page
        artifact = url.replace("?workflowType", "/artifacts/attention/epoch_001.png?workflowType")
        page = rendered_text(artifact)
        assert "attention/epoch_001.png" in page and "epoch_001.npz" in page, page[-3000:]


def test_the_sweeps_overview_page_shows_its_verdicts(store, tmp_path, sweep_main):
    out = sweep_main("sweep=none", *TINY, *store, "model=din", "sweep.name=ui-answer", "sweep.sampler=grid",
                     "sweep.seeds=[0,1]", "sweep.plan=20", f"sweep.storage=journal:{tmp_path / 'j'}",
                     "model/activation=choice(sigmoid,dice)")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    [hint] = [line for line in out.stdout.splitlines() if line.startswith("browse: ")]
    url = hint.split("then open ", 1)[1].split()[0]
    with served(store, tmp_path) as port:
        page = rendered_text(url.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}"))
    # the Overview's description: the verdict table, the design line and the noise floor
    overview = page[page.index("Description"):]
    assert re.search(r"Sweep\s*ui-answer\s*: the answer question effect on valid_auc interval \(adjusted\) verdict",
                     overview), overview[:3000]
    # two pairs are too few for the confidence sequence to bound the interval, and the plan's boundary spends
    # nothing at its first look: it shows as (-inf, +inf), and why
    assert re.search(r"model/activation: dice vs sigmoid [+-]\d\.\d{4} \(-inf, \+inf\) undecided ", overview), \
        overview[:3000]
    assert "too few seeds for this boundary" in overview
    assert "Design : grid design, 2 configurations x 2 seeds = 4 trainings" in overview and "seed noise" in overview
    assert "verdict.model/activation.dice" in overview  # the metrics, beside the description
