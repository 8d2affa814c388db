"""The sweep's side of the answer: a look is recorded in the study's storage and read back, once per number
of trainings."""

import numpy as np

from src.answer import decision
from src.sweep import answer
from src.sweep.definition import load
from tests.answer.test_effects import FACTORS, fractional


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
    assert {r["factor"] for r in final} == set(FACTORS) and all(r["verdict"] in decision.VERDICTS for r in final)
    assert set(stored["decisions"]) == {decision.question(r) for r in final}  # taken with the look, kept
    assert [stored["decisions"][decision.question(r)]["verdict"] for r in final] == [r["verdict"] for r in final]
    answer.look(d, reread)  # the same cells: no second look
    assert len(reread.user_attrs["looks"]) == 1
