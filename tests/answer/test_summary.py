"""The answer's pieces where users read them: metric keys that MLflow accepts and that name the question,
verdict codes, and a description that holds the verdict table."""

import dataclasses
import math

import numpy as np
import pytest

from src.answer import decision
from src.answer import summary as answer
from src.answer.effects import estimate
from src.answer.effects import key as config_key
from src.answer.records import Cell
from tests.answer.test_effects import FACTORS, fractional


def answer_of(truth, seeds=3, delta=0.002):
    rng = np.random.default_rng(0)
    obs = [{"config": c, "seed": s, "value": 0.7 + sum(truth[k] * (c[k] == FACTORS[k][1]) for k in FACTORS)
            + rng.normal(0, 0.004)} for c in fractional() for s in range(seeds)]
    eff = estimate(obs, FACTORS, "maximize")
    final = decision.decide([{"cells": len(obs), "records": eff["records"]}], "maximize", delta)
    records = [answer.question(r, f, None) for r, f in zip(eff["records"], final)]
    return answer.Answer(records=records, noise=eff["noise"], runs=len(obs), looks=[len(obs)], planned=None,
                         per_seed=8, delta=delta, metric="valid_auc")


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
    text = answer.note(ans, "n", "fractional", 8)
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
            rows.append(Cell(trial=i * 10 + s, state="COMPLETE", params=c, seed_values={str(s): v},
                             eval_bootstrap={str(s): boot}))
    records = [answer.question(r, None, None)
               for r in estimate(answer.observations(rows), FACTORS, "maximize")["records"]]
    src = answer.noise_sources(rows, FACTORS, "maximize", records)
    assert src.replicates == reps and src.cells == 32
    for r in records:
        q = src.questions[r.name]
        # a main effect contrasts 4 configurations with 4: the per-configuration part gives SE eval_sd / sqrt(2)
        assert q.se_eval == pytest.approx(eval_sd / np.sqrt(2), rel=0.3)
        assert q.se_train == r.se and q.dominant == "training (seeds)"
    quiet = answer_of({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0})
    assert "Where the noise comes from" in answer.sources_text(dataclasses.replace(quiet, sources=src))


def test_an_unbounded_interval_prints_as_infinite_with_its_reason_and_a_zero_floor_in_words():
    ans = answer_of({"a": 0.05, "b": 0.0, "c": -0.05, "d": 0.0})
    table = answer.verdict_table(ans)
    assert "(-inf" not in table and "too few seeds" not in table  # every interval bounded: no such line
    ans.records[1] = dataclasses.replace(ans.records[1], verdict="undecided", verdict_low=None,
                                            verdict_high=math.inf)
    table = answer.verdict_table(ans)
    [row] = [ln for ln in table.splitlines() if ln.startswith("| b: y vs x |")]
    assert "| (-inf, +inf) | undecided |" in row and "[-, -]" not in row
    assert table.splitlines()[-1].startswith("(-inf, +inf): too few seeds for this boundary")
    price = decision.Price(seeds=40, trainings=320, more_trainings=296, chance=0.8, least=0.004, towards="better",
                           certain_seeds=90)
    said = answer.price_text(price)
    assert "nothing promised at the hardest effect still plausible" in said and "0%" not in said.replace("80%", "")
    assert "at least 18% whatever the effect" in answer.price_text(dataclasses.replace(price, least=0.18))


def test_a_price_shows_the_range_of_seeds_the_noise_estimate_allows_in_the_table_the_file_and_the_plan():
    import json

    from src.answer import records

    ans = answer_of({"a": 0.002, "b": 0.0, "c": 0.0, "d": 0.0})
    q = ans.records[0]
    price = decision.price({"effect": q.effect, "se": q.se, "df": q.df, "n_eff": q.n_eff}, "maximize", 24, 8,
                           q.alpha_each, 0.002, None)
    assert price.seeds_low < price.seeds < price.seeds_high
    ans.records[0] = q = dataclasses.replace(q, verdict="undecided", price=price)
    said = f"{price.seeds} seeds ({price.seeds_low} to {price.seeds_high} as the noise estimate allows"
    assert said in answer.verdict_table(ans)
    saved = json.loads(records.dump(ans.records, "valid_auc", "maximize"))
    assert {saved["questions"][0]["price"][k] for k in ("seeds_low", "seeds_high")} == {price.seeds_low,
                                                                                     price.seeds_high}
    assert records.load(records.dump(ans.records, "valid_auc", "maximize"))[0].price == price
    # an answer recorded before the range was kept prints without it
    assert "noise estimate" not in answer.price_text(decision.Price.from_dict(
        {k: v for k, v in dataclasses.asdict(price).items() if not k.startswith("seeds_")}))
    ans.plan = answer.plan(ans.records, 24, 8)
    fig = answer.plan_figure(ans)
    [bar] = fig.axes[0].containers  # the price's range as a horizontal error bar from low to high
    assert [t.get_text() for t in fig.axes[0].texts] == [
        f"{q.name}: {price.seeds} ({price.seeds_low}-{price.seeds_high}) seeds, {price.chance:.0%} "
        f"({answer.floor_text(price.least, short=True)})"]
    xs = bar.lines[2][0].get_segments()[0][:, 0]
    assert sorted(xs) == [price.seeds_low, price.seeds_high]


def test_the_summary_file_holds_plain_values_not_the_records_names():
    # report/effects_summary.json is json.dumps(ans.summary(), default=str): a record left inside would be
    # written as its repr, a string no reader can use
    import json

    from src.answer.blocks import Pooled

    across = Pooled(factor="a", level="on", reference="off", blocks=["data=x", "data=y"], effect=0.01, low=0.0,
                    high=0.02, verdict="undecided", random_effects={"mu": 0.01})
    ans = dataclasses.replace(answer_of({"a": 0.05, "b": 0.0, "c": 0.0, "d": 0.0}), pooled=[across])
    doc = json.loads(json.dumps(ans.summary(), default=str))
    assert "records" not in doc and "best" not in doc and doc["runs"] == 24
    assert doc["pooled"] == [{"factor": "a", "level": "on", "reference": "off", "blocks": ["data=x", "data=y"],
                              "effect": 0.01, "low": 0.0, "high": 0.02, "verdict": "undecided",
                              "interaction": "undecided", "random_effects": {"mu": 0.01}}]
