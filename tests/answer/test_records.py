"""The answer's records: one meaning per field, a versioned effects.json, and the tables a paper or a notebook
takes (src/answer/records.py)."""

import json

import pytest

from src.answer import records
from src.answer.records import Question


def q(factor="model/activation", level="dice", reference="sigmoid", verdict="better", low=0.002, high=0.01):
    return Question(factor=factor, level=level, reference=reference, effect=0.006, se=0.002, df=7, method="paired",
                    n_pairs=8, p_better=0.99, detectable=0.004, ci95_low=0.003, ci95_high=0.009, verdict=verdict,
                    verdict_low=low, verdict_high=high, verdict_method="repeated CI", adjustment="Bonferroni over 2",
                    delta=0.001, decided_at=16, boundary=2.9, alpha_each=0.025)


def test_effects_json_holds_its_schema_and_version_and_reads_back():
    questions = [q(), q(factor="model.mlp.depth", level="3", reference="1", verdict="undecided", low=float("-inf"))]
    text = records.dump(questions, "valid_auc", "maximize")
    doc = json.loads(text)
    assert (doc["schema"], doc["version"], doc["metric"]) == (records.SCHEMA, records.VERSION, "valid_auc")
    assert doc["questions"][1]["verdict_low"] is None  # an infinite bound is no number JSON can hold
    back = records.load(text)
    assert back[0] == questions[0] and back[1].verdict_low is None
    with pytest.raises(ValueError, match="bare list"):
        records.load(json.dumps([{"factor": "a"}]))
    with pytest.raises(ValueError, match=r"version 1 is not one this code reads \(2, 3, 4, 5\)"):
        records.load(json.dumps({**doc, "version": 1}))
    old = {**doc, "version": 2, "questions": [{k: v for k, v in q.items() if k not in ("n_eff", "looks")}
                                              for q in doc["questions"]]}
    assert records.load(json.dumps(old))[0].n_eff is None  # version 2 (group-sequential verdicts) still reads
    v4 = {k: v for k, v in {**doc, "version": 4}.items() if k != "best"}
    assert records.load(json.dumps(v4)) == back and records.load_best(json.dumps(v4)) == []  # no best set before 5


def test_the_interval_of_the_verdict_and_the_95_percent_interval_have_their_own_names():
    df = records.frame([q()])
    assert list(df.columns[:8]) == ["factor", "level", "reference", "effect", "verdict_low", "verdict_high",
                                    "verdict", "decided_at"]
    assert df.loc[0, "ci95_low"] == 0.003 and df.loc[0, "verdict_low"] == 0.002


def test_the_latex_and_markdown_tables_hold_every_question_escaped():
    tex = records.latex([q(), q(factor="train.optimizer.lr_x", level="0.01", reference="0.001", verdict="undecided",
                            low=None, high=None)])
    assert tex.startswith("\\begin{table}") and "\\toprule" in tex and tex.rstrip().endswith("\\end{table}")
    assert "model/activation: dice vs sigmoid & +0.0060 & [+0.0020, +0.0100] & better & 16 \\\\" in tex
    assert "train.optimizer.lr\\_x: 0.01 vs 0.001" in tex and "(-inf, +inf)" in tex  # unbounded: infinite ends
    md = records.markdown([q()])
    assert md.splitlines()[2] == "| model/activation: dice vs sigmoid | +0.0060 | [+0.0020, +0.0100] | better | 16 |"
