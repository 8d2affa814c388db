"""End-to-end sweeps on a tiny synthetic set. The first test, and every sweep that is killed, interrupted or
runs several workers, runs in a process of its own as a user runs it (`python -m src.sweep ...`); the others
call the same command's `main` in the test's process (`sw.run`, tests/conftest.py: sweep_main)."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from src.answer import records as answer_records
from src.config.paths import ROOT
from tests.conftest import mlflow_db_at, native_lines

pytestmark = pytest.mark.slow

TINY = ["sweep=tiny", "data.users=60", "data.items=80", "data.cats=4", "data.seq_len=25", "data.samples_per_user=6",
        "data.max_len=20", "data.cache=false", "model.embedding.item=8", "model.embedding.cat=4",
        "model.mlp.width=16", "train.batch_size=64", "train.probe.size=4", "train.probe.metrics_size=40"]
# the sweeps whose assertions are the sweep's, not the model's, train DIN: it traces in half DIEN's time
DIN = ["model=din", "~model/evolution"]


def sweep_cmd(args):
    """`python -m src.sweep ARGS`, as a user (or a machine starting a worker) types it."""
    return [sys.executable, "-m", "src.sweep", *args]


@pytest.fixture
def sw(tmp_path, empty_mlflow_db, sweep_main):
    class Sweep:
        journal = tmp_path / "optuna.journal"
        db = mlflow_db_at(tmp_path / "mlflow.db", empty_mlflow_db)
        args = [f"sweep.storage=journal:{journal}", f"tracking.uri=sqlite:///{db}",
                f"tracking.artifact_root={tmp_path / 'artifacts'}"]

        def run(self, *extra, base=TINY):
            """`python -m src.sweep` with these arguments, in this process (tests/conftest.py: sweep_main)."""
            return sweep_main(*base, *self.args, *extra)

        def command(self, *extra):
            """The sweep's command line, as a user types it."""
            return sweep_cmd([*TINY, *self.args, *extra])

        def process(self, *extra, timeout=600):
            """The same sweep in a process of its own, as a user runs it."""
            return subprocess.run(self.command(*extra), cwd=ROOT, capture_output=True, text=True, timeout=timeout)

        def popen(self, *extra):
            return subprocess.Popen(self.command(*extra), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)

        def study(self, name):
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(self.journal))))

        def client(self):
            mlflow.set_tracking_uri(f"sqlite:///{self.db}")
            return mlflow.MlflowClient()

        def runs(self):
            c = self.client()
            return c.search_runs([e.experiment_id for e in c.search_experiments()], max_results=1000)

    return Sweep()


def states(study):
    return Counter(t.state.name for t in study.get_trials() if not t.user_attrs.get("surplus"))


def test_two_trial_sweep_end_to_end(sw, tmp_path):
    out = sw.process("sweep.name=e2e", "sweep.trials=2", "sweep.sampler=random", "sweep.pruner=none")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "new study 'e2e'" in out.stdout and "ablation" in out.stdout and "browse: " in out.stdout
    assert "?workflowType=machine_learning" in out.stdout
    study = sw.study("e2e")
    assert states(study) == {"COMPLETE": 2}
    runs = sw.runs()
    parents = [r for r in runs if r.data.tags.get("sweep_role") == "parent"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["study"] == "e2e"
    from src.run.logger import ui_url
    from src.tools.ui import latest_sweep

    assert latest_sweep(f"sqlite:///{sw.db}")[1] == parent.info.run_id  # what `make ui` points at
    assert ui_url(parent.info.experiment_id, parent.info.run_id) in out.stdout
    assert "best_value" in parent.data.metrics and any(k.startswith("best.") for k in parent.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2
    assert {r.data.tags["trial"] for r in children} == {"0", "1"}
    assert all(r.data.tags["trial_state"] == "COMPLETE" and r.info.status == "FINISHED" for r in children)
    assert all("valid_auc" in r.data.metrics and r.data.params["model.name"] for r in children)
    client = sw.client()
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.yaml", "best_config.yaml", "report", "optuna", "invocations"} <= files
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/ablation.md", "report/ablation.png", "report/trials.json"} <= report
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "optuna")}
    assert "optuna/history.png" in plots
    # best_config.yaml reruns with plain Hydra
    local = client.download_artifacts(parent.info.run_id, "best_config.yaml", str(tmp_path))
    rerun = subprocess.run([sys.executable, "-m", "src.train", "--config-path", str(tmp_path), "--config-name",
                            "best_config", "--cfg", "job"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "name: synthetic" in rerun.stdout
    del local


def test_pruning_prunes_a_hopeless_trial(sw):
    # grid order: two learning configs first, then one that cannot learn (lr 1e-9): below the median at epoch 1
    out = sw.run("sweep.name=prune", "sweep.sampler=grid", "sweep.trials=3", "sweep.pruner=median",
                 "~model/evolution", "model=din", "model/activation=sigmoid", "train.epochs=3",
                 "data.current=6", "data.partner=6", "data.bias=-3", "data.users=150",
                 "train.optimizer.lr=choice(0.02,0.0201,1e-9)")
    assert out.returncode == 0, out.stdout + out.stderr
    study = sw.study("prune")
    by_lr = {t.params["train.optimizer.lr"]: t for t in study.get_trials()}
    assert by_lr[1e-9].state == TrialState.PRUNED, out.stdout
    assert by_lr[0.02].state == TrialState.COMPLETE
    killed = [r for r in sw.runs() if r.data.tags.get("trial") == str(by_lr[1e-9].number)]
    assert killed[0].info.status == "KILLED" and killed[0].data.tags["pruned_at_epoch"] == "1"
    # with one epoch, epoch 1 is the last: a pruner would save nothing and lose a complete result, so the same
    # hopeless trial completes, and the search and the answer see its value
    out = sw.run("sweep.name=prune-last", "sweep.sampler=grid", "sweep.trials=3", "sweep.pruner=median",
                 "~model/evolution", "model=din", "model/activation=sigmoid", "train.epochs=1",
                 "data.current=6", "data.partner=6", "data.bias=-3", "data.users=150",
                 "train.optimizer.lr=choice(0.02,0.0201,1e-9)")
    assert out.returncode == 0, out.stdout + out.stderr
    trials = sw.study("prune-last").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3, out.stdout[-2000:]
    hopeless = next(t for t in trials if t.params["train.optimizer.lr"] == 1e-9)
    assert hopeless.value < min(t.value for t in trials if t is not hopeless)


def test_first_trials_all_failing_stop_the_sweep(sw):
    out = sw.run("sweep.name=allfail", "sweep.trials=6", "sweep.pruner=none", "model=base", "~model/evolution",
                 "~model/activation", "train.optimizer.name=sgd", "train.optimizer.lr=tag(log,interval(1e29,1e30))")
    assert out.returncode == 1
    assert "first 3 trials all failed" in out.stdout
    assert states(sw.study("allfail")) == {"FAIL": 3}


def test_same_name_different_space_is_refused(sw):
    assert sw.run("sweep.name=same", "sweep.trials=1", "model=din", "~model/evolution").returncode == 0
    out = sw.run("sweep.name=same", "sweep.trials=2", "model=din", "~model/evolution",
                 "model.mlp.depth=choice(1,2)")
    assert out.returncode == 2 and "different search space" in out.stderr
    assert states(sw.study("same")) == {"COMPLETE": 1}  # untouched
    # a resume that finds a better trial records the new best over the old one
    again = sw.run("sweep.name=same", "sweep.trials=3", "model=din", "~model/evolution")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming study 'same'" in again.stdout


def wait_for(predicate, proc, timeout=240, output=None):
    """predicate()'s first true value while the sweep `proc` runs; `output()` says what it printed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended early:\n{output() if output else proc.stdout.read()}")
        v = predicate()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out{':' + chr(10) + output() if output else ''}")


def running_trial(sw, name, other_than=None):
    try:
        study = sw.study(name)
    except KeyError:
        return None
    for t in study.get_trials(states=(TrialState.RUNNING,)):
        if t.user_attrs.get("mlflow_run_ids") and t.user_attrs.get("pid") != other_than:
            return t
    return None


def assert_clean(sw, name, trials):
    study = sw.study(name)
    s = states(study)
    assert s["COMPLETE"] + s["PRUNED"] == trials and s["RUNNING"] == 0, s
    assert all(r.info.status != "RUNNING" for r in sw.runs())
    return study


def test_resume_after_sigkill_mid_trial(sw):
    args = ["sweep.name=killed", "sweep.trials=3", "sweep.pruner=none", "train.epochs=3", *DIN]
    proc = sw.popen(*args)
    victim = wait_for(lambda: running_trial(sw, "killed"), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    out = sw.run(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resuming study 'killed'" in out.stdout and "dead worker" in out.stdout
    study = assert_clean(sw, "killed", 3)
    dead = study.get_trials()[victim.number]
    assert dead.state == TrialState.FAIL
    [retry] = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == victim.number]
    assert "worker died" in retry.user_attrs["retry_reason"] and retry.params == dead.params
    killed = [r for r in sw.runs() if r.info.run_id in victim.user_attrs["mlflow_run_ids"]]
    assert killed and all(r.info.status == "KILLED" for r in killed)


def test_killed_grid_resumes_without_queueing_twice(sw):
    # a grid of 4: kill the sweep once a trial is running, resume it; every configuration ends COMPLETE
    # exactly once and nothing stays WAITING (a resume queues only what is neither finished nor queued)
    args = ["sweep.name=grid-resume", "sweep.trials=4", "sweep.sampler=grid", "sweep.pruner=none",
            "train.epochs=2", "model=din", "~model/evolution", "~train.optimizer.lr",
            "model.mlp.depth=choice(1,2)", "model/activation=choice(sigmoid,dice)"]
    proc = sw.popen(*args)
    wait_for(lambda: running_trial(sw, "grid-resume"), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert states(sw.study("grid-resume"))["WAITING"] == 3  # the rest of the grid was queued once
    out = sw.run(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    study = assert_clean(sw, "grid-resume", 4)
    assert states(study)["WAITING"] == 0, [(t.number, t.state.name, t.system_attrs) for t in study.get_trials()]
    done = [tuple(sorted(t.params.items())) for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(done) == len(set(done)) == 4


PLANTED = ["sweep=none", "data=synthetic", "data.users=500", "data.items=200", "data.cats=8", "data.seq_len=30",
           "data.samples_per_user=8", "data.split.valid=3", "data.split.test=3", "data.max_len=25",
           "data.cache=false", "data.partner=4", "data.current=1", "model.embedding.item=8", "model.embedding.cat=4",
           "model.mlp.width=32", "train.batch_size=128", "train.epochs=4", "train.optimizer.lr=0.005",
           "train.probe.size=4", "train.probe.metrics_size=200", "sweep.sampler=grid", "sweep.seeds=[0,1,2]",
           "model=choice(base,din)", "train.shuffle_seed=choice(100,200)"]


def test_planted_truth_gets_the_right_verdicts_and_the_sequential_sweep_stops_early(sw):
    # clicks follow the target's partner item in the history: attention pooling (din) must beat sum pooling
    # (base), with an interval above zero; the order of the training data (shuffle_seed) changes nothing by
    # construction: equivalent at a margin this small data set can resolve. Sequential: blocks of one seed
    # after the first three, a plan of 7 seeds; the sweep must stop once both are decided, before the plan.
    out = sw.run("sweep.name=planted", "sweep.until=decided", "sweep.budget=28", "sweep.equivalence=0.05",
                 base=PLANTED)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    parent = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"][0]
    records = {r["factor"]: r for r in json.loads(mlflow.artifacts.load_text(
        f"runs:/{parent.info.run_id}/report/effects.json"))["questions"]}
    model, order = records["model"], records["train.shuffle_seed"]
    assert (model["level"], model["reference"], model["method"]) == ("din", "base", "paired"), model
    assert model["verdict"] == "better" and model["verdict_low"] > 0, out.stdout[-2500:]
    assert order["verdict"] == "equivalent" and -0.05 < order["verdict_low"] <= 0 <= order["verdict_high"] < 0.05, \
        out.stdout[-2500:]
    assert order["delta"] == 0.05 and "Bonferroni over 2" in order["adjustment"]
    assert "every question is decided" in out.stdout and "look at 12 trainings" in out.stdout
    study = sw.study("planted")
    cells = states(study)["COMPLETE"]
    assert cells < 28 and cells % 4 == 0, cells  # stopped before its plan, whole blocks only
    assert "the answer" in out.stdout and "seed noise" in out.stdout
    files = {a.path for a in sw.client().list_artifacts(parent.info.run_id, "report")}
    assert {"report/effects.json", "report/effects.md", "report/effects.png", "report/plan.png"} <= files
    # every cell's run carries its configuration as one tag: grouped by it, each group is one configuration's
    # seeds, as MLflow's group-by shows them (mean, min, max over seeds)
    cells_ = [r for r in sw.runs() if r.data.tags.get("trial") and r.info.status == "FINISHED"]
    groups = {}
    for r in cells_:
        groups.setdefault(r.data.tags["config"], []).append(r)
    assert len(groups) == 4 and sum(map(len, groups.values())) == cells, {k: len(v) for k, v in groups.items()}
    for runs_ in groups.values():
        assert len({r.data.tags["config_levels"] for r in runs_}) == 1
        assert len({r.data.tags["trial_seed"] for r in runs_}) == len(runs_) == cells // 4
        assert len({r.data.params["model.name"] for r in runs_}) == 1
    # and the parent run carries each configuration's mean and interval over its seeds, by the same tag
    top = sw.client().get_run(parent.info.run_id).data
    for tag, runs_ in groups.items():
        values = [r.data.metrics["best_valid_auc"] for r in runs_]
        assert top.metrics[f"config.{tag}.mean"] == pytest.approx(sum(values) / len(values), abs=1e-9)
        assert top.metrics[f"config.{tag}.low"] < top.metrics[f"config.{tag}.mean"] < top.metrics[f"config.{tag}.high"]
        assert top.metrics[f"config.{tag}.trainings"] == len(runs_)
        assert top.tags[f"config.{tag}"] == runs_[0].data.tags["config_levels"]


def _answer(sw) -> dict:
    parent = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"][0]
    return {r["factor"]: r for r in json.loads(mlflow.artifacts.load_text(
        f"runs:/{parent.info.run_id}/report/effects.json"))["questions"]}


def test_a_verdict_reached_within_a_budget_is_kept_when_a_resume_raises_the_budget(sw):
    # what an undecided question's price invites: the sweep ends at its budget of 16 trainings with the model
    # question decided and the order question not (a margin this data cannot resolve); the same command with
    # a budget of 200 (and a timeout that keeps the test short) keeps that verdict and its decided_at, and goes
    # on from the looks recorded
    args = ("sweep.name=raise", "sweep.until=decided", "sweep.equivalence=0.0001")
    first = sw.run(*args, "sweep.budget=16", base=PLANTED)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    before = _answer(sw)
    assert before["model"]["verdict"] == "better" and before["model"]["decided_at"], first.stdout[-2500:]
    assert before["train.shuffle_seed"]["verdict"] == "undecided" and before["train.shuffle_seed"]["price"]
    assert "another block would pass the budget of 16" in first.stdout
    # the price's minutes pay each block's fixed cost (workers' start-up, the look) besides the trainings
    kept = sw.study("raise").user_attrs
    price = before["train.shuffle_seed"]["price"]
    assert kept["seconds_per_block"] > 0 and kept["seconds_per_cell"] > 0, kept
    more = price["more_trainings"]
    assert price["minutes"] == pytest.approx((more * kept["seconds_per_cell"] + math.ceil(more / 4)
                                              * kept["seconds_per_block"]) / 60, rel=1e-6), (price, kept)
    looks = len(sw.study("raise").user_attrs["looks"])
    again = sw.run(*args, "sweep.budget=200", "sweep.timeout=40", base=PLANTED)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = _answer(sw)
    assert len(sw.study("raise").user_attrs["looks"]) > looks, again.stdout[-2500:]  # it went on, and looked
    for k in ("verdict", "decided_at", "verdict_low", "verdict_high"):  # the effect is the latest estimate
        assert after["model"][k] == before["model"][k], (k, before["model"], after["model"])
    assert after["model"]["looks"] > before["model"]["looks"]


FEATURES = ["sweep=none", "data=synthetic_features", "data.users=1000", "data.items=200", "data.cats=8",
            "data.seq_len=40", "data.samples_per_user=16", "data.split.valid=2", "data.split.test=2", "data.max_len=20",
            "data.cache=false", "data.partner=4", "data.current=1", "model.embedding.item=8", "model.embedding.cat=4",
            "model.mlp.width=32", "train.batch_size=128", "train.epochs=3", "train.optimizer.lr=0.005",
            "train.probe.size=4", "train.probe.metrics_size=200", "model=din", "sweep.sampler=grid",
            "sweep.seeds=[0,1,2]", "data.features.segment.enabled=choice(false,true)",
            "data.features.mood.enabled=choice(false,true)"]


def test_racing_for_the_best_ends_best_on_the_configuration_with_the_planted_feature(sw):
    # sweep.until=best on the planted segment feature: the set of configurations that cannot be told from the
    # best ends as the one that sees the segment ("best"), every configuration without it excluded, and
    # best_config.yaml is that configuration and says how sure it is
    base = [a for a in FEATURES if not a.startswith("data.features.mood")]
    out = sw.run("sweep.name=race", "sweep.until=best", "sweep.budget=16", base=base)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    parent = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"][0]
    text = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/report/effects.json")
    [found] = answer_records.load_best(text)
    assert found.verdict == "best", out.stdout[-3000:]
    assert [m.levels for m in found.members] == [{"data.features.segment.enabled": True}], found
    assert found.excluded == ["data.features.segment.enabled=False"] and found.leader.low == 0.0
    assert "the best configuration is decided (best): the sweep stops here" in out.stdout
    assert parent.data.tags["best_verdict"] == "best" and parent.data.tags["best.data.features.segment.enabled"] == \
        "True"
    said = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/best_config.yaml").splitlines()[0]
    assert said.startswith("# best configuration: best: data.features.segment.enabled=True"), said
    assert out.stdout.rstrip().splitlines()[-2].startswith("best configuration: best: "), out.stdout[-1500:]


def test_a_sampled_sweep_races_its_top_configurations_on_fresh_seeds_and_ends_best_on_the_planted_feature(sw):
    # sweep.until=best on a random search (unpruned: both levels complete): its top 2 configurations get fresh
    # seeds as cells, never pruned, and the best set read from those cells alone ends "best" on the
    # configuration that sees the planted segment
    base = [a for a in FEATURES if not a.startswith(("data.features.mood", "sweep.sampler", "sweep.seeds"))]
    out = sw.run("sweep.name=searched", "sweep.sampler=random", "sweep.trials=4", "sweep.seeds=[0]",
                 "sweep.pruner=none", "sweep.until=best", "sweep.race_top=2", "sweep.budget=16", base=base)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "racing: the top 2 configurations of the search by mean, on fresh seeds [1, 2] (4 trainings)" in \
        out.stdout, out.stdout[-3000:]
    study = sw.study("searched")
    cells = [t for t in study.get_trials() if "seed" in t.user_attrs]
    assert len(cells) >= 4 and all(t.number >= 4 and t.state.name == "COMPLETE" for t in cells), states(study)
    assert {t.user_attrs["seed"] for t in cells} >= {1, 2}
    parent = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"][0]
    [found] = answer_records.load_best(mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/report/effects.json"))
    assert found.verdict == "best" and found.trainings == len(cells), out.stdout[-3000:]
    assert [m.levels for m in found.members] == [{"data.features.segment.enabled": True}], found
    assert "the best configuration is decided (best): the sweep stops here" in out.stdout
    assert f"look at {len(cells)} race trainings" in out.stdout, out.stdout[-3000:]  # a race's look: its cells


def test_a_planted_user_feature_is_called_better_and_one_with_no_effect_equivalent(sw):
    # conf/data/synthetic_features.yaml: the click rises when the user's segment is the target's style (planted),
    # the user's mood does nothing; the model that sees the segment must be called better, the one that sees
    # the mood equivalent within +-0.03 AUC (this data set's seed noise is about 0.01)
    out = sw.run("sweep.name=features", "sweep.until=decided", "sweep.budget=28", "sweep.equivalence=0.03",
                 base=FEATURES)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    parent = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"][0]
    records = {r["factor"]: r for r in json.loads(mlflow.artifacts.load_text(
        f"runs:/{parent.info.run_id}/report/effects.json"))["questions"]}
    segment, mood = records["data.features.segment.enabled"], records["data.features.mood.enabled"]
    assert (segment["level"], segment["reference"]) == ("True", "False"), segment
    assert segment["verdict"] == "better" and segment["verdict_low"] > 0, out.stdout[-2500:]
    assert mood["verdict"] == "equivalent" and -0.03 < mood["verdict_low"] <= mood["verdict_high"] < 0.03, \
        out.stdout[-2500:]
    # the same answer for a notebook, and as a table for a paper
    from src.sweep.tracking import answer_frame

    df = answer_frame(parent.info.run_id, f"sqlite:///{sw.db}").set_index("factor")
    assert df.loc["data.features.segment.enabled", "verdict"] == "better"
    assert df.loc["data.features.mood.enabled", "verdict_high"] == mood["verdict_high"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"}  # as a user has it
    tex = subprocess.run([sys.executable, "-m", "src.tools.answer", parent.info.run_id, "--latex",
                          "--uri", f"sqlite:///{sw.db}"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=env)
    assert tex.returncode == 0, tex.stderr[-2000:]
    assert "Downloading artifacts" not in tex.stdout + tex.stderr, tex.stderr[-2000:]  # no progress bars
    assert "\\begin{tabular}" in tex.stdout and "data.features.segment.enabled: True vs False" in tex.stdout
    assert "better" in tex.stdout and "equivalent" in tex.stdout
    # the best configuration's confidence set, in the export and for a notebook: it is led by the segment
    from src.sweep.tracking import best_frame

    assert "cannot be told from the best" in tex.stdout and "\\begin{tabular}{lrlr}" in tex.stdout
    members = best_frame(parent.info.run_id, f"sqlite:///{sw.db}")
    assert members.loc[members["leader"], "data.features.segment.enabled"].tolist() == [True], members


def test_a_block_of_two_data_sets_answers_in_each_and_says_the_effect_depends_on_the_data_set(sw):
    # two synthetic data sets, a block (sweep.block): in one the user's segment raises the click (planted, strong
    # enough that the interval of its first deciding look, which stops that block, lies clear of the other's), in
    # the other it does nothing. Seeing the segment must be called better in the first, equivalent in the second
    # (within +-0.05: this data set's seed noise is about 0.015), and the effect must be found to depend on the
    # data set
    base = [a for a in FEATURES if not a.startswith("data.features.mood")]
    out = sw.run("sweep.name=blocks", "sweep.until=decided", "sweep.budget=40", "sweep.equivalence=0.05",
                 "sweep.block=data.segment_effect", "data.segment_effect=choice(6.0,0.0)", base=base)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    parent = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"][0]
    doc = json.loads(mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/report/effects.json"))
    assert doc["version"] == answer_records.VERSION and doc["blocks"] == ["data.segment_effect"]
    assert {b["block"] for b in doc["best"]} == {"data.segment_effect=6.0", "data.segment_effect=0.0"}  # per block
    by_block = {q["block"]: q for q in doc["questions"]}
    assert set(by_block) == {"data.segment_effect=6.0", "data.segment_effect=0.0"}, by_block
    assert by_block["data.segment_effect=6.0"]["verdict"] == "better", out.stdout[-3000:]
    assert by_block["data.segment_effect=0.0"]["verdict"] == "equivalent", out.stdout[-3000:]
    [pooled] = doc["pooled"]
    assert pooled["interaction"] == "depends on the block", pooled
    assert pooled["random_effects"]["k"] == 2 and pooled["random_effects"]["i2"] > 0.5
    assert "depends on the data set" in out.stdout and "[data.segment_effect=6.0]" in out.stdout
    assert "report/blocks.png" in {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "report")}
    metrics = parent.data.metrics
    assert metrics.get("depends.data.features.segment.enabled.True in all blocks") == 1, sorted(metrics)
    assert metrics["verdict.data.features.segment.enabled.True in data.segment_effect_6.0"] == 1
    # the planted block, decided first, got no more seeds while the other went on (sequential per block)
    study = sw.study("blocks")
    ended = study.user_attrs["ended_blocks"]
    trained = Counter(str(t.params["data.segment_effect"]) for t in study.get_trials() if t.state.name == "COMPLETE")
    assert "data.segment_effect=6.0" in ended and trained["6.0"] == 2 * ended["data.segment_effect=6.0"], trained
    assert trained["6.0"] < trained["0.0"] and "it gets no more seeds" in out.stdout, trained


GRID = ["sweep.sampler=grid", "sweep.pruner=none", "train.epochs=1", "model=din", "~model/evolution",
        "~train.optimizer.lr", "model.mlp.depth=choice(1,2)", "model/activation=choice(sigmoid,dice)"]


def test_running_runs_no_live_trial_owns_are_ended_by_the_next_start(sw):
    # planted under a finished sweep: a second run of a COMPLETE trial's cell, a run of a trial the study does not
    # hold, and a COMPLETE trial's own run whose end was lost (set back to RUNNING)
    args = ("sweep.name=leftover", *GRID, "sweep.trials=1")
    out = sw.run(*args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    client = sw.client()
    [parent] = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"]
    own = sorted((r for r in sw.runs() if r.data.tags.get("trial") is not None), key=lambda r: r.data.tags["trial"])
    assert len(own) == 4 and {r.info.status for r in own} == {"FINISHED"}
    tags = {"sweep_parent": parent.info.run_id, "mlflow.parentRunId": parent.info.run_id}
    exp = parent.info.experiment_id
    second = client.create_run(exp, tags={**tags, "trial": own[0].data.tags["trial"]}).info.run_id
    stray = client.create_run(exp, tags={**tags, "trial": "99"}, start_time=int((time.time() - 600) * 1000)).info.run_id
    client.update_run(own[1].info.run_id, status="RUNNING")
    again = sw.run(*args)  # the same command: nothing to train, the store reconciled with the study
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    second, stray, lost = (client.get_run(r) for r in (second, stray, own[1].info.run_id))
    assert second.info.status == "KILLED" and "a second run of trial" in second.data.tags["end_reason"]
    assert stray.info.status == "KILLED" and second.data.tags["trial_state"] == "COMPLETE"
    assert stray.data.tags["end_reason"] == "its trial 99 is not in the study"
    assert stray.data.tags["trial_state"] == "unknown"
    assert lost.info.status == "FINISHED" and "the run's end was lost" in lost.data.tags["end_reason"]
    assert {client.get_run(r.info.run_id).info.status for r in own} == {"FINISHED"}  # the cells' own runs stay
    assert not [r.info.run_id for r in sw.runs() if r.info.status == "RUNNING"]


def test_more_seeds_on_a_finished_design_train_only_the_new_cells(sw):
    out = sw.run("sweep.name=grow", *GRID, "sweep.seeds=[0]")
    assert out.returncode == 0, out.stdout + out.stderr
    first = states(sw.study("grow"))
    assert first == {"COMPLETE": 4}  # exactly the design: 4 configurations x 1 seed, nothing sampled
    parent = [r for r in sw.runs() if r.data.tags.get("sweep_role") == "parent"][0]
    before = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/report/effects.md")
    again = sw.run("sweep.name=grow", *GRID, "sweep.seeds=[0,1]")
    assert again.returncode == 0, again.stdout + again.stderr
    study = sw.study("grow")
    assert states(study) == {"COMPLETE": 8}  # 4 configurations x 1 new seed more
    cells = [(tuple(sorted(t.params.items())), t.user_attrs["seed"]) for t in study.get_trials()]
    assert len(set(cells)) == len(cells) == 8
    children = [r for r in sw.runs() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 8 and len({r.info.run_name for r in children}) == 8
    assert all(r.info.run_name.endswith(f"seed={r.data.tags['trial_seed']}") for r in children)
    after = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/report/effects.md")
    assert after != before and "the verdicts account for 2 look(s), at 4, 8 trainings" in after  # a resume is a look
    # the answer where users look: the parent's description and its numbers as metrics, found by search
    parent = sw.client().get_run(parent.info.run_id)
    note = parent.data.tags["mlflow.note.content"]
    assert "| model/activation: dice vs sigmoid |" in note and "8 trainings" in note
    assert parent.data.metrics["trainings"] == 8 and "verdict.model/activation.dice" in parent.data.metrics
    assert "effect.model.mlp.depth.2" in parent.data.metrics
    # 4 pairs are too few for the confidence sequence to bound the interval: its ends are infinite, not logged
    depth = {r["factor"]: r for r in json.loads(mlflow.artifacts.load_text(
        f"runs:/{parent.info.run_id}/report/effects.json"))["questions"]}["model.mlp.depth"]
    assert ("low.model.mlp.depth.2" in parent.data.metrics) == (depth["verdict_low"] is not None)
    found = mlflow.search_runs(search_all_experiments=True, filter_string=(
        "tags.sweep_role = 'parent' and metrics.`verdict.model/activation.dice` >= -1"))
    assert list(found["run_id"]) == [parent.info.run_id]
    experiment = sw.client().get_experiment(parent.info.experiment_id)
    assert "users" in experiment.tags["mlflow.note.content"] and "samples: train" in experiment.tags[
        "mlflow.note.content"]


def test_killing_a_worker_mid_cell_loses_only_that_cell(sw):
    # also the test of two workers on one grid with one of them killed: they take distinct trials
    args = ["sweep.name=cells", *GRID, "sweep.seeds=[0]", "sweep.workers=2", "train.epochs=2"]
    proc = sw.popen(*args)
    victim = wait_for(lambda: running_trial(sw, "cells", other_than=proc.pid), proc)
    os.kill(victim.user_attrs["pid"], signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert not native_lines(output), output[:3000]  # nor from the spawned workers (stdout and stderr)
    study = assert_clean(sw, "cells", 4)
    trials = study.get_trials()
    assert trials[victim.number].state == TrialState.FAIL
    [retry] = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert retry.params == victim.params and retry.user_attrs["seed"] == victim.user_attrs["seed"]
    done = [(tuple(sorted(t.params.items())), t.user_attrs["seed"]) for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == len(set(done)) == 4  # every cell once, the lost one trained again and nothing else
    assert len({params for params, _ in done}) == 4  # two workers took distinct trials: every grid point
    assert len({t.user_attrs["pid"] for t in trials if "pid" in t.user_attrs}) >= 2
    finished = [r for r in sw.runs() if r.info.status == "FINISHED" and r.data.tags.get("trial") is not None]
    assert len(finished) == 4  # no finished run that belongs to no trial


def test_several_trials_per_gpu_are_placed_printed_and_logged(sw):
    # one GPU named by DIL_GPUS (on a CPU machine the workers simply see none), shared by two workers; the
    # round-robin over several GPUs is tests/sweep/test_placement.py's
    env = {**os.environ, "DIL_GPUS": "0"}
    args = sw.command(*DIN, "sweep.name=gpus", "sweep.trials=2", "sweep.workers=2", "sweep.trials_per_gpu=2",
                      "sweep.pruner=none")
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert not native_lines(out.stdout + out.stderr), out.stderr[:3000]  # nor from the spawned workers
    for i in range(2):
        assert f"worker {i} of 2 on GPU 0 (shared by 2)" in out.stdout
    placements = {r.data.tags.get("placement") for r in sw.runs() if r.data.tags.get("trial") is not None}
    assert placements and all("of 2 on GPU 0" in p and "(shared by 2)" in p for p in placements)
    refused = subprocess.run(args[:-3] + ["sweep.name=gpus2", "sweep.workers=3", "sweep.trials_per_gpu=2"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 2 and "3 workers do not fit on 1 GPU(s)" in refused.stderr
    with pytest.raises(KeyError):
        sw.study("gpus2")  # refused before the study existed


def test_a_designed_sweep_never_samples_outside_its_design(sw):
    # a grid of three learning rates, one of which diverges: the sweep goes on, two finish, the failed one
    # is left out (its run FAILED, with the reason) and not replaced by a random configuration; a resume
    # gives the failed one its second chance
    args = ["sweep.name=design", "sweep.sampler=grid", "sweep.trials=3", "sweep.pruner=none", "model=base",
            "~model/evolution", "~model/activation", "~train.optimizer.lr", "train.optimizer.name=sgd",
            "train.optimizer.lr=choice(1e30,0.05,0.1)"]
    out = sw.run(*args)
    assert out.returncode == 0, out.stdout + out.stderr  # a failing trial does not stop the sweep
    assert "the design's 3 cells have all run" in out.stdout
    study = sw.study("design")
    assert states(study) == {"FAIL": 1, "COMPLETE": 2}
    assert {t.params["train.optimizer.lr"] for t in study.get_trials()} == {1e30, 0.05, 0.1}
    failed = [t for t in study.get_trials() if t.state == TrialState.FAIL][0]
    assert "Diverged" in failed.user_attrs["failure"]
    run = [r for r in sw.runs() if r.data.tags.get("trial") == str(failed.number)][0]
    assert run.info.status == "FAILED" and "diverg" in run.data.tags["failure"].lower()
    again = sw.run(*args)
    assert again.returncode == 0 and states(sw.study("design")) == {"FAIL": 2, "COMPLETE": 2}
