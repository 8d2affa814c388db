"""The answer's pieces where users read them: metric keys that MLflow accepts and that name the question,
verdict codes, and a description that holds the verdict table."""

import numpy as np
import pytest

from src.answer import decision
from src.answer import summary as answer
from src.answer.effects import estimate
from src.answer.effects import key as config_key
from src.sweep.definition import load
from tests.answer.test_effects import FACTORS, fractional


def answer_of(truth, seeds=3, delta=0.002):
    rng = np.random.default_rng(0)
    obs = [{"config": c, "seed": s, "value": 0.7 + sum(truth[k] * (c[k] == FACTORS[k][1]) for k in FACTORS)
            + rng.normal(0, 0.004)} for c in fractional() for s in range(seeds)]
    eff = estimate(obs, FACTORS, "maximize")
    final = decision.decide([{"cells": len(obs), "records": eff["records"]}], "maximize", delta)
    records = [{**r, **{k: f[k] for k in ("verdict", "alpha_each", "adjustment", "decided_at")},
                "ci_low": f["adj_low"], "ci_high": f["adj_high"], "price": None} for r, f in zip(eff["records"], final)]
    return {"records": records, "noise": eff["noise"], "runs": len(obs), "looks": [len(obs)], "planned": None,
            "per_seed": 8, "delta": delta, "metric": "valid_auc"}


def test_each_question_becomes_metrics_mlflow_accepts():
    from mlflow.utils.validation import _validate_metric_name

    ans = answer_of({"a": 0.05, "b": 0.0, "c": -0.05, "d": 0.0})
    m = answer.metrics(ans)
    for k in m:
        _validate_metric_name(k)
    assert m["verdict.a.on"] == decision.VERDICT_CODE["better"] == 1
    assert m["verdict.c.3"] == -1 and m["effect.a.on"] > 0 and m["low.a.on"] < m["effect.a.on"] < m["high.a.on"]
    assert m["trainings"] == 24 and m["seed_noise_sd"] > 0
    assert answer.metric_key("verdict", "model/activation", "dice") == "verdict.model/activation.dice"
    assert answer.metric_key("effect", "x", "a=b") == "effect.x.a_b"


def test_the_description_holds_the_verdict_table_and_the_design():
    ans = answer_of({"a": 0.05, "b": 0.0, "c": -0.05, "d": 0.0})
    text = answer.note(ans, load(["sweep=none", "sweep.sampler=fractional", "sweep.name=n"]), 8)
    assert "| question | effect on valid_auc | interval (adjusted) | verdict |" in text
    assert "| a: on vs off |" in text and "| better |" in text and "| worse |" in text
    assert "fractional design, 8 configurations x 3 seeds = 24 trainings" in text and "seed noise" in text


def test_noise_sources_tell_training_from_the_evaluation_sample():
    # each cell's value = truth + training noise (seed); its bootstrap replicates add evaluation noise that
    # is shared by every cell on the same resample (paired) plus a per-configuration part of known size
    rng = np.random.default_rng(3)
    configs, seeds, reps = fractional(), range(4), 200
    eval_sd = 0.002  # per configuration and resample: a main effect's SE from it is 0.002 * sqrt(2/4) / 1
    shared = rng.normal(0, 0.01, reps)
    per_config = {config_key(c): rng.normal(0, eval_sd, reps) for c in configs}
    rows = []
    for i, c in enumerate(configs):
        for s in seeds:
            v = 0.7 + rng.normal(0, 0.006)
            boot = (v + shared + per_config[config_key(c)]).tolist()
            rows.append({"trial": i * 10 + s, "state": "COMPLETE", "params": c, "seed_values": {str(s): v},
                         "eval_bootstrap": {str(s): boot}})
    d = load(["sweep=none", "sweep.sampler=fractional", *(f"{k}=choice({','.join(map(str, v))})"
                                                          for k, v in FACTORS.items())])
    records = estimate(answer.observations(rows), FACTORS, "maximize")["records"]
    src = answer.noise_sources(rows, d, records)
    assert src["replicates"] == reps and src["cells"] == 32
    for r in records:
        q = src["questions"][decision.question(r)]
        # a main effect contrasts 4 configurations with 4: the per-configuration part gives SE eval_sd / sqrt(2)
        assert q["se_eval"] == pytest.approx(eval_sd / np.sqrt(2), rel=0.3)
        assert q["se_train"] == r["se"] and q["dominant"] == "training (seeds)"
    assert "Where the noise comes from" in answer.sources_text({"sources": src, "metric": "valid_auc"})


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
    final = answer.look(d, study, planned=32)
    reread = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(tmp_path / "j"))))
    [stored] = reread.user_attrs["looks"]
    assert stored["cells"] == 16 and len(stored["records"]) == 4 and isinstance(stored["records"][0]["df"], int)
    assert {r["factor"] for r in final} == set(FACTORS) and all(r["verdict"] in decision.VERDICTS for r in final)
    answer.look(d, reread, planned=32)  # the same cells: no second look
    assert len(reread.user_attrs["looks"]) == 1
