"""A sweep's answer as records: one `Question` per factor level against its reference, each field with one
meaning, and the file the report writes (`report/effects.json`, schema in docs/answer.md).

    from src.answer import records
    frame = records.frame(records.load(text))      # a pandas DataFrame, one row per question
    print(records.latex(records.load(text)))       # a table for a paper

`python -m src.tools.answer RUN_ID [--latex | --markdown | --csv]` prints a finished sweep's answer from its
MLflow parent run; `src.sweep.tracking.answer_frame(RUN_ID)` returns the DataFrame in a notebook.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

from src.answer import best as best_mod
from src.answer.decision import Price, name

SCHEMA = "deep-interest-lab/effects"
VERSION = 5  # 1: a bare list of records whose ci_low/ci_high were the verdict's interval; 2: group-sequential
READS = (2, 3, 4, 5)  # verdicts, no n_eff or looks; 3: anytime-valid verdicts, with n_eff, looks and the price's
# chance; 4: a question's block, and the "pooled" records of the questions asked in several blocks; 5: "best",
# the confidence set of the best configuration (src/answer/best.py), one per block


@dataclass(frozen=True)
class Cell:
    """One trial of a study as the answer reads it (src/sweep/study.py `rows`): a designed sweep's or a race's
    (configuration, seed) cell, or a sampled trial trained on every seed of the sweep."""

    trial: int
    state: str                      # COMPLETE, PRUNED, FAIL, RUNNING or WAITING
    params: dict                    # its configuration
    value: float | None = None      # the mean of its seeds' best validation metric (COMPLETE only)
    seed: int | None = None         # a cell's seed; None: a sampled trial, over every seed of the sweep
    seed_values: dict = field(default_factory=dict)     # seed -> best validation metric
    test_values: dict = field(default_factory=dict)     # seed -> the test metric at that epoch
    eval_bootstrap: dict = field(default_factory=dict)  # seed -> bootstrap of the validation metric
    spread: float | None = None     # the seeds' standard deviation
    overrides: list = field(default_factory=list)       # the sampled overrides ("k=v")
    attention: dict = field(default_factory=dict)       # seed -> attention summary
    pruned_at_epoch: int | None = None
    failure: str | None = None
    seconds: float | None = None    # from its start to its end


@dataclass
class Question:
    """One question of a sweep: `level` of `factor` against its `reference`, on the sweep's metric.

    effect: the estimated difference, level minus reference (sign as the metric: see `direction`).
    verdict_low, verdict_high: the interval the verdict uses (adjusted over the family's questions and over
        the looks taken, see `adjustment`); better / worse when it excludes 0, equivalent when it lies inside
        +-delta.
    ci95_low, ci95_high: the unadjusted 95% interval of this look alone (for reading, not for verdicts).
    verdict: better, worse, equivalent or undecided; decided_at: the trainings at the look that decided it.
    price: for an undecided question, {"seeds", "trainings", "minutes", "towards", "chance", "least",
        "certain_seeds", "seeds_low", "seeds_high", "plan_seeds"}: the fewest seeds whose look decides with that
        chance (at least 80%; `towards`: the likeliest verdict), the effect as uncertain as estimated and the noise as
        estimated; the chance there at the hardest effect the interval still allows; the seeds whose look
        decides whatever the effect; and the price's range when the noise is as uncertain as its estimate
        (the residual variance at either end of its 80% interval; seeds_high None: beyond 10,000 seeds);
        `plan_seeds`, the study's plan (`sweep.plan`), past which only the confidence sequence's share of the
        error is left (None: no plan).
    n_eff: the estimate's information, (residual SD / se) squared; looks: the looks the verdict accounts for.
    block: the block (`sweep.block`) the question is answered within, e.g. `data=movielens`; None: no blocks.
    empty_at: the trainings at the look whose interval shared no effect with the earlier looks' (the running
        intersection is empty: coverage has failed, and no verdict is read off it); None: it never emptied.
    """

    factor: str
    level: str
    reference: str
    effect: float | None
    se: float | None
    df: float | None
    method: str
    n_pairs: int | None
    p_better: float | None
    detectable: float | None
    ci95_low: float | None
    ci95_high: float | None
    verdict: str
    verdict_low: float | None
    verdict_high: float | None
    verdict_method: str | None
    adjustment: str | None
    delta: float | None
    decided_at: int | None
    boundary: float | None
    alpha_each: float | None
    price: Price | None = None
    n_eff: float | None = None
    looks: int | None = None
    block: str | None = None
    empty_at: int | None = None

    @property
    def name(self) -> str:
        """`factor=level vs reference` (and ` @ block` within a block), as the report names a question."""
        return name(self.factor, self.level, self.reference, self.block)

    @property
    def label(self) -> str:
        """As the tables name it: `factor: level vs reference`, and `[block]` within a block."""
        return f"{self.factor}: {self.level} vs {self.reference}" + (f" [{self.block}]" if self.block else "")


def _number(v):
    """A JSON-safe number: None for a missing or infinite one."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _plain(d: dict) -> dict:
    return {k: (_plain(v) if isinstance(v, dict) else v if isinstance(v, str | list) or v is None else _number(v))
            for k, v in d.items()}


def dump(questions: list[Question], metric: str, direction: str, pooled: list | None = None,
         blocks: list[str] | None = None, best: list | None = None) -> str:
    """`report/effects.json`: {"schema", "version", "metric", "direction", "blocks", "questions": [...],
    "pooled": [...], "best": [...]} (pooled: src/answer/blocks.py, one record per question asked in several
    blocks; best: src/answer/best.py's confidence sets of the best configuration, one per block)."""
    rows = [{k: (_number(v) if not isinstance(v, dict | str) else v) for k, v in asdict(q).items()}
            for q in questions]
    return json.dumps({"schema": SCHEMA, "version": VERSION, "metric": metric, "direction": direction,
                       "blocks": list(blocks or []), "questions": rows,
                       "pooled": [_plain(asdict(p)) for p in pooled or []],
                       "best": [best_mod.to_dict(b) for b in best or []]}, indent=1, default=str)


def load_best(text: str) -> list:
    """The confidence sets of the best configuration of an effects.json ([] before version 5)."""
    load(text)  # the same checks
    return [best_mod.from_dict(b) for b in json.loads(text).get("best") or []]


def load(text: str) -> list[Question]:
    """The questions of an effects.json, checked against this version of the schema."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"not an effects.json of this project (schema {SCHEMA!r}); a sweep finished before "
                         f"version {VERSION} wrote a bare list: finish it again (run the same command) to rewrite it")
    if doc.get("version") not in READS:
        raise ValueError(f"effects.json version {doc.get('version')} is not one this code reads {READS}")
    names = {f.name for f in fields(Question)}
    return [Question(**{**{k: v for k, v in q.items() if k in names}, "price": Price.from_dict(q.get("price"))})
            for q in doc["questions"]]


COLUMNS = ("factor", "level", "reference", "effect", "verdict_low", "verdict_high", "verdict", "decided_at",
           "ci95_low", "ci95_high", "p_better", "method")


def frame(questions: list[Question]):
    """A pandas DataFrame, one row per question, every field a column (the main ones first)."""
    import pandas as pd

    rows = [asdict(q) for q in questions]
    df = pd.DataFrame(rows, columns=[f.name for f in fields(Question)])
    return df[list(COLUMNS) + [c for c in df.columns if c not in COLUMNS]]


def _finite(v) -> bool:
    return v is not None and not (isinstance(v, float) and not math.isfinite(v))


def _cell(v, signed=True) -> str:
    if not _finite(v):
        return "--"
    return f"{v:+.4f}" if signed else f"{v}"


def interval(low, high) -> str:
    """`[low, high]` with signed ends; an unbounded end (missing or infinite: the confidence sequence's boundary
    is infinite at that look) as -inf or +inf behind an open bracket, `(-inf, +inf)`; `empty` when the looks'
    intervals share no effect (coverage has failed)."""
    if _finite(low) and _finite(high) and low > high:
        return "empty"
    return f"{f'[{low:+.4f}' if _finite(low) else '(-inf'}, {f'{high:+.4f}]' if _finite(high) else '+inf)'}"


def unbounded(low, high) -> bool:
    """Whether an end of the interval is missing or infinite."""
    return not (_finite(low) and _finite(high))


def _rows(questions: list[Question]) -> list[list[str]]:
    return [[q.label, _cell(q.effect),
             interval(q.verdict_low, q.verdict_high), q.verdict,
             _cell(q.decided_at, signed=False)] for q in questions]


HEADER = ["question", "effect", "interval (adjusted)", "verdict", "decided at (trainings)"]


def markdown(questions: list[Question]) -> str:
    """The verdict table as Markdown."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in _rows(questions)])


LATEX_SPECIAL = (("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"),
                 ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"))


def _tex(text: str) -> str:
    """Text with LaTeX's special characters escaped."""
    out = text.replace("\\", "\0")
    for char, escaped in LATEX_SPECIAL:
        out = out.replace(char, escaped)
    return out.replace("\0", r"\textbackslash{}")


def latex(questions: list[Question], caption: str = "Each question's effect, the interval its verdict uses "
          "(adjusted over the questions and the looks), and the verdict.") -> str:
    """The verdict table as a LaTeX `table` (booktabs)."""
    body = [" & ".join(_tex(c) for c in r) + r" \\" for r in _rows(questions)]
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\begin{tabular}{lrlll}", r"\toprule",
                      " & ".join(_tex(h) for h in HEADER) + r" \\", r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}", rf"\caption{{{_tex(caption)}}}", r"\end{table}"])


BEST_HEADER = ["configuration", "mean", "minus the best of the others", "trainings"]


def _best_rows(sets: list) -> list[list[str]]:
    return [[m.name + (f" [{b.block}]" if b.block else ""), f"{m.mean:.4f}", interval(m.low, m.high),
             str(m.trainings)] for b in sets for m in b.members]


def best_caption(sets: list) -> str:
    """The best sets' verdicts in words, for a table's caption or heading."""
    said = [f"{b.verdict}" + (f" [{b.block}]" if b.block else "") + f": {len(b.members)} of {b.configurations} "
            f"configurations" for b in sets]
    return ("The configurations that cannot be told from the best (a set that holds the best with "
            f"{1 - sets[0].alpha:.0%} at every look): " + "; ".join(said) + ".") if sets else ""


def best_markdown(sets: list) -> str:
    """The best configuration's confidence set(s) as a Markdown table under its verdict ('' without one)."""
    if not sets:
        return ""
    lines = [best_caption(sets), "", "| " + " | ".join(BEST_HEADER) + " |", "|" + " --- |" * len(BEST_HEADER)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in _best_rows(sets)])


def best_latex(sets: list) -> str:
    """The same as a LaTeX `table` (booktabs)."""
    if not sets:
        return ""
    body = [" & ".join(_tex(c) for c in r) + r" \\" for r in _best_rows(sets)]
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\begin{tabular}{lrlr}", r"\toprule",
                      " & ".join(_tex(h) for h in BEST_HEADER) + r" \\", r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}", rf"\caption{{{_tex(best_caption(sets))}}}", r"\end{table}"])


def best_frame(sets: list):
    """The members of the best set(s) as a pandas DataFrame: one row per member, with its set's verdict."""
    import pandas as pd

    rows = [{**m.levels, "configuration": m.name, "mean": m.mean, "low": m.low, "high": m.high,
             "trainings": m.trainings, "verdict": b.verdict, "block": b.block, "leader": i == 0}
            for b in sets for i, m in enumerate(b.members)]
    return pd.DataFrame(rows)
