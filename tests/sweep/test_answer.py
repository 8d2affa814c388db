"""The sweep's side of the answer: a look is recorded in the study's storage and read back, once per number
of trainings."""

import numpy as np
import pytest

from src.answer import decision
from src.sweep import answer
from src.sweep.definition import load
from tests.answer.test_effects import FACTORS, fractional


def prepared(d, study, resumed=False, **kw):
    """The driver's Sweep on `study`, as `prepare` builds it, with no tracking server behind it."""
    from src.sweep import driver

    return driver.Sweep(definition=d, url="journal", study=study, parent_run_id="parent", epochs=1, tracking={},
                        resumed=resumed, **kw)


def test_a_look_is_recorded_in_a_real_study_storage_and_read_back(tmp_path):
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    d = load(["sweep=none", "sweep.sampler=fractional", *(f"{k}=choice({','.join(map(str, v))})"
                                                          for k, v in FACTORS.items())])
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "j")))
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    rng = np.random.default_rng(4)
    dists = {k: CategoricalDistribution(v) for k, v in FACTORS.items()}
    for seed in range(2):
        for c in fractional():
            v = 0.7 + 0.01 * (c["a"] == "on") + rng.normal(0, 0.004)
            study.add_trial(optuna.trial.create_trial(params=c, distributions=dists, value=v,
                                                      user_attrs={"seed": seed, "seed_values": {str(seed): v}}))
    final = answer.look(d, study)
    reread = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(tmp_path / "j"))))
    [stored] = reread.user_attrs["looks"]
    assert stored["cells"] == 16 and len(stored["records"]) == 4 and isinstance(stored["records"][0]["df"], int)
    assert {r.factor for r in final} == set(FACTORS) and all(r.verdict in decision.VERDICTS for r in final)
    assert set(stored["decisions"]) == {r.name for r in final}  # taken with the look, kept
    assert [stored["decisions"][r.name]["verdict"] for r in final] == [r.verdict for r in final]
    answer.look(d, reread)  # the same cells: no second look
    assert len(reread.user_attrs["looks"]) == 1


def test_a_block_whose_questions_are_all_decided_gets_no_more_seeds_and_keeps_them_on_resume(tmp_path):
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from src.config import compose
    from src.sweep import attrs, design
    from src.sweep.study import rows

    d = load(["sweep=none", "data=synthetic", "sweep.sampler=grid", "sweep.until=decided",
              "sweep.block=data.segment_effect", "data.segment_effect=choice(3.0,0.0)",
              "model/activation=choice(sigmoid,dice)"])
    points = design.points(d.settings, list(d.base), d.params, compose)
    assert len(points) == 4
    journal = str(tmp_path / "j")
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(journal)),
                                direction="maximize")
    dists = {k: CategoricalDistribution(p.values()) for k, p in d.params.items()}
    rng = np.random.default_rng(0)
    for seed in range(6):  # dice is far better where the segment matters (3.0); in the other block, noise only
        for p in points:
            big = p["data.segment_effect"] == 3.0
            v = 0.7 + (0.05 if big and p["model/activation"] == "dice" else 0.0) + rng.normal(0, 0.004 if big else 0.03)
            study.add_trial(optuna.trial.create_trial(params=p, distributions=dists, value=v,
                                                      user_attrs={"seed": seed, "seed_values": {str(seed): v}}))
    sw = prepared(d, study, design=points, seeds=list(range(6)))
    ans = answer.build(d, study, rows(study), None, len(points))
    verdicts = {r.block: r.verdict for r in ans.records}
    assert verdicts == {"data.segment_effect=3.0": "better", "data.segment_effect=0.0": "undecided"}, verdicts
    [price] = [r.price for r in ans.records if r.verdict == "undecided"]  # priced in its own block's trainings
    assert price.more_trainings == price.trainings - 12 and price.trainings == price.seeds * 2, price
    assert sw.end_decided_blocks(ans.records) == ["data.segment_effect=3.0"]
    assert sw.end_decided_blocks(ans.records) == []  # ended once, at the seeds it held then
    assert [p["data.segment_effect"] for p in sw.open_points()] == [0.0, 0.0]
    assert sw.add_seeds([6, 7]) == 4 and sw.cells == 6 * 4 + 2 * 2  # the undecided block alone trains on
    queued = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.WAITING]
    assert {attrs.enqueued_params(t)["data.segment_effect"] for t in queued} == {0.0}
    # a resume reads the ended block back and queues none of its cells for the seeds it never had
    again = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(journal)))
    assert again.user_attrs["ended_blocks"] == {"data.segment_effect=3.0": 6}
    sw2 = prepared(d, again, resumed=True, design=points, ended=dict(attrs.ENDED_BLOCKS.get(again)))
    assert sw2.add_seeds([0, 1, 2, 3, 4, 5, 6, 7, 8]) == 2 and sw2.cells == 6 * 4 + 3 * 2


def test_a_question_keeps_the_estimator_of_its_first_look(tmp_path):
    """A fractional design's first look has no pairs (regression); cells of the whole grid added later would
    give pairs for more than half of each level's runs. The question stays with the regression, so that its
    looks are one sequence of one estimator."""
    import itertools

    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from src.sweep.study import rows

    d = load(["sweep=none", "sweep.sampler=random", *(f"{k}=choice({','.join(map(str, v))})"
                                                      for k, v in FACTORS.items())])
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(tmp_path / "j"))),
                                direction="maximize")
    rng = np.random.default_rng(4)
    dists = {k: CategoricalDistribution(v) for k, v in FACTORS.items()}
    grid = [dict(zip(FACTORS, c)) for c in itertools.product(*FACTORS.values())]

    def add(configs, seed):
        for c in configs:
            v = 0.7 + 0.01 * (c["a"] == "on") + rng.normal(0, 0.004)
            study.add_trial(optuna.trial.create_trial(params=c, distributions=dists, value=v,
                                                      user_attrs={"seed": seed, "seed_values": {str(seed): v}}))

    for seed in range(2):
        add(fractional(), seed)
    first = answer.build(d, study, rows(study), None, 0)
    assert {r.method for r in first.records} == {"regression"}
    for seed in range(2, 6):
        add(grid, seed)
    today = answer.blocks.estimate(answer.summary.observations(rows(study)), answer.summary.factors(d.params),
                                   "maximize")
    assert {r["method"] for r in today["records"]} == {"paired"}  # what a first look now would use
    later = answer.build(d, study, rows(study), None, 0)
    assert {r.method for r in later.records} == {"regression"}
    looks = study.user_attrs["looks"]
    assert len(looks) == 2 and all(r["method"] == "regression" for lk in looks for r in lk["records"])


def test_a_block_whose_cells_come_after_the_first_look_adds_no_share_the_first_questions_spent(tmp_path):
    """The family is every question the definition can ask, in every block: a first look taken when only one
    block had cells (a sweep stopped early) gives its questions alpha over the whole family, not alpha over
    the questions it saw, so the block that comes later has its share left."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    d = load(["sweep=none", "data=synthetic", "sweep.sampler=grid", "sweep.block=data.segment_effect",
              "data.segment_effect=choice(3.0,0.0)", "model/activation=choice(sigmoid,dice)",
              "model.mlp.depth=choice(1,2,3)"])
    assert answer.family(d) == 2 * (1 + 2)
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(tmp_path / "j"))),
                                direction="maximize")
    dists = {k: CategoricalDistribution(p.values()) for k, p in d.params.items()}
    rng = np.random.default_rng(1)

    def add(block):
        for seed in range(3):
            for act in ("sigmoid", "dice"):
                for depth in (1, 2, 3):
                    p = {"data.segment_effect": block, "model/activation": act, "model.mlp.depth": depth}
                    v = 0.7 + rng.normal(0, 0.004)
                    study.add_trial(optuna.trial.create_trial(params=p, distributions=dists, value=v, user_attrs={
                        "seed": seed, "seed_values": {str(seed): v}}))

    add(3.0)
    first = answer.look(d, study)
    assert len(first) == 3 and {r.alpha_each for r in first} == {decision.ALPHA / 6}
    assert first[0].adjustment.startswith("Bonferroni over 6 question(s)")
    add(0.0)
    later = answer.look(d, study)
    assert len(later) == 6 and {r.alpha_each for r in later} == {decision.ALPHA / 6}
    first_share = {}  # each question's share at its first look: over the family, at most alpha
    for lk in study.user_attrs["looks"]:
        for q, dec in lk["decisions"].items():
            first_share.setdefault(q, dec["alpha_each"])
    assert len(first_share) == 6 and sum(first_share.values()) == pytest.approx(decision.ALPHA)


def test_racing_queues_seeds_only_for_the_configurations_still_in_the_best_set_and_a_resume_keeps_it(tmp_path):
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from src.config import compose
    from src.sweep import attrs, design
    from src.sweep.study import rows

    d = load(["sweep=none", "data=synthetic", "sweep.sampler=grid", "sweep.until=best",
              "model/activation=choice(sigmoid,dice)", "model.mlp.depth=choice(1,2)"])
    points = design.points(d.settings, list(d.base), d.params, compose)
    journal = str(tmp_path / "j")
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(journal)),
                                direction="maximize")
    dists = {k: CategoricalDistribution(p.values()) for k, p in d.params.items()}
    rng = np.random.default_rng(0)
    for seed in range(4):  # dice clearly above sigmoid; depth does nothing
        for p in points:
            v = 0.7 + (0.05 if p["model/activation"] == "dice" else 0.0) + rng.normal(0, 0.004)
            study.add_trial(optuna.trial.create_trial(params=p, distributions=dists, value=v,
                                                      user_attrs={"seed": seed, "seed_values": {str(seed): v}}))
    sw = prepared(d, study, design=points, seeds=list(range(4)))
    ans = answer.build(d, study, rows(study), None, len(points))
    [b] = ans.best
    assert b.verdict != "best" and {m.levels["model/activation"] for m in b.members} == {"dice"}
    assert sw.race(ans.best) == (2, 4)
    assert sw.add_seeds([4]) == 2  # the new seed goes to the two configurations still racing
    queued = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.WAITING]
    assert {attrs.enqueued_params(t)["model/activation"] for t in queued} == {"dice"}
    again = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(journal)))
    dropped = again.user_attrs["dropped"]
    assert len(dropped) == 2 and set(dropped.values()) == {4}  # each holds the 4 seeds it had
    resumed = prepared(d, again, resumed=True, design=points, seeds=list(range(5)), dropped=dict(dropped))
    assert len(resumed.queued_cells()) == 4 * 4 + 2


def test_a_sampled_sweep_races_its_top_configurations_on_fresh_seeds_and_the_set_reads_those_cells_alone(
        tmp_path, capsys):
    # sweep.race_top: after the search, the top configurations by mean get fresh seeds as cells; the best set
    # is computed from those cells alone (the search's lucky value does not make a leader), the questions
    # from the search alone, and a resume finds the race where it was
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from src.sweep import attrs, design, driver, report
    from src.sweep.study import rows

    d = load(["sweep=none", "data=synthetic", "sweep.sampler=random", "sweep.until=best", "sweep.race_top=2",
              "sweep.trials=4", "model/activation=choice(sigmoid,dice)", "model.mlp.depth=choice(1,2)"])
    journal = str(tmp_path / "j")
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(journal)),
                                direction="maximize")
    dists = {k: CategoricalDistribution(p.values()) for k, p in d.params.items()}
    searched = {("dice", 1): 0.80, ("sigmoid", 2): 0.79, ("sigmoid", 1): 0.70, ("dice", 2): 0.69}
    for (act, depth), v in searched.items():  # one seed each, as the search trains them
        study.add_trial(optuna.trial.create_trial(
            params={"model/activation": act, "model.mlp.depth": depth}, distributions=dists, value=v,
            user_attrs={"seed_values": {"0": v}}))
    sw = prepared(d, study)
    assert sw.target == 4 and driver.queue_cells(sw) == 0  # searching: nothing queued
    assert driver._start_race(sw)
    top = [{"model/activation": "dice", "model.mlp.depth": 1}, {"model/activation": "sigmoid", "model.mlp.depth": 2}]
    assert sw.design == top and sw.seeds == [1, 2] and sw.cells == 4 and sw.target == 8
    assert attrs.RACE.get(study) == {"points": top, "searched": 4, "first": 2}
    assert "racing: the top 2 configurations of the search by mean, on fresh seeds [1, 2]" in capsys.readouterr().out
    job = sw.job()
    assert (job.target, job.design_cells, job.searched) == (8, 4, 4)
    assert not design.exhausted(job.design_cells, job.target - job.searched, study.get_trials())
    rng = np.random.default_rng(0)
    while True:  # as a worker does: the queued cells, each told once; the second configuration is the better
        trials = study.get_trials()
        if design.exhausted(job.design_cells, job.target - job.searched, trials):
            break
        t = study.ask(dists)
        v = (0.75 if t.params["model/activation"] == "sigmoid" else 0.70) + rng.normal(0, 0.002)
        t.set_user_attr("seed_values", {str(attrs.SEED.get(t)): v})
        study.tell(t, v)
    assert len(study.get_trials()) == 8 and all(attrs.SEED.get(t) in (1, 2) for t in study.get_trials()[4:])
    ans = answer.build(d, study, rows(study), driver.budget(sw), driver.design_size(sw))
    [b] = ans.best
    assert b.leader.levels == top[1] and b.trainings == 4 and {m.trainings for m in b.members} == {2}
    assert ans.runs == 4  # the questions read the search's four trials
    picked = report.best_configuration(answer.split_race(study, rows(study))[1], "maximize", b.leader.levels)
    assert picked.cells == 2 and picked.value == pytest.approx(0.75, abs=0.01)
    again = prepared(d, optuna.load_study(study_name="s", storage=JournalStorage(
        JournalFileBackend(journal))), resumed=True)
    assert driver.queue_cells(again) == 0 and again.design == top and again.seeds == [1, 2] and again.target == 8


def test_the_plan_is_fixed_before_the_first_look_and_a_study_without_one_keeps_its_procedure(tmp_path, capsys):
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from src.answer import boundary
    from src.answer.boundary import Plan
    from src.sweep import attrs
    from src.sweep.definition import SweepError

    space = [f"{k}=choice({','.join(map(str, v))})" for k, v in FACTORS.items()]
    planned = load(["sweep=none", "sweep.sampler=fractional", "sweep.until=decided", "sweep.seeds=[0,1]",
                    "sweep.plan=3", *space])
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "j")))
    dists = {k: CategoricalDistribution(v) for k, v in FACTORS.items()}

    def study_with_cells(name):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        rng = np.random.default_rng(4)
        for seed in range(3):
            for c in fractional():
                v = 0.7 + 0.01 * (c["a"] == "on") + rng.normal(0, 0.004)
                study.add_trial(optuna.trial.create_trial(params=c, distributions=dists, value=v,
                                                          user_attrs={"seed": seed, "seed_values": {str(seed): v}}))
        return study

    study = study_with_cells("planned")
    assert answer.fix_plan(planned, study, budget_seeds=8) == Plan(2, 3)  # sweep.plan over the budget's seeds
    [d] = [r for r in answer.look(planned, study) if r.factor == "a"]
    assert "group-sequential boundary over a plan of seeds 2 to 3" in d.adjustment
    at_end = boundary.multiplier(Plan(2, 3), 3, d.df, d.alpha_each)  # the plan's last look
    assert d.boundary == at_end < decision.multiplier(d.df, d.n_eff, d.alpha_each)
    other = load(["sweep=none", "sweep.sampler=fractional", "sweep.until=decided", "sweep.plan=80", *space])
    assert answer.fix_plan(other, study, budget_seeds=8) == Plan(2, 3)  # fixed: a later sweep.plan changes nothing
    assert "sweep.plan=80 is not used" in answer.plan_note(other, Plan(2, 3))

    unplanned = load(["sweep=none", "sweep.sampler=fractional", "sweep.until=decided", *space])
    assert answer.fix_plan(unplanned, study_with_cells("default"), budget_seeds=8) == Plan(1, 8)  # the budget's
    racing = load(["sweep=none", "sweep.sampler=fractional", "sweep.until=best", *space])
    assert answer.fix_plan(racing, study_with_cells("racing"), budget_seeds=8) is None  # unbalanced after a block

    old = study_with_cells("recorded-before-plans")
    answer.look(unplanned, old)  # a look taken as studies were before plans: none recorded
    assert not attrs.PLAN.get(old) and answer.fix_plan(planned, old, budget_seeds=8) is None
    [d] = [r for r in answer.look(planned, old) if r.factor == "a"]
    assert d.boundary == decision.multiplier(d.df, d.n_eff, d.alpha_each)  # the sequence alone

    for bad, says in ((["sweep.sampler=fractional", "sweep.plan=1"], "fewer than the first block"),
                      (["sweep.sampler=tpe", "sweep.plan=10"], "plans seeds of a design")):
        with pytest.raises(SweepError, match=says):
            load(["sweep=none", "sweep.seeds=[0,1]", *bad, *space])
