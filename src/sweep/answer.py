"""The sweep's side of the answer: its looks, recorded in the study, and the answer assembled from the
study's cells by src/answer (which knows nothing of Optuna or MLflow)."""

from __future__ import annotations

import math

from src.answer import blocks, decision, summary
from src.answer.boundary import Plan
from src.answer.records import Cell
from src.sweep import attrs

SLIM = ("factor", "level", "reference", "block", "effect", "se", "df", "n_eff", "method",  # a look's, per question
        "seeds")


def _plain(v):
    """A value as the study's JSON storage takes it (NumPy numbers become Python ones)."""
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        return v.item()
    return v


def family(definition) -> int:
    """How many questions the sweep can ask: every level but the reference of every factor (the discrete
    dimensions that are not blocks), in every block. Fixed for a study's life (its signature fixes the space)."""
    s = definition.settings
    factors = summary.factors(definition.params)
    per_block = sum(len(v) - 1 for f, v in factors.items() if f not in s.block)
    return per_block * math.prod(len(factors.get(b) or [None]) for b in s.block)


def methods(looks: list[dict]) -> dict:
    """{(block, factor, level): method} of each question at the first look that recorded its method: the
    estimator it keeps for the rest of its life (looks recorded before methods were kept name none)."""
    out = {}
    for lk in looks:
        for r in lk["records"]:
            if r.get("method") in ("paired", "regression"):
                out.setdefault((r.get("block"), r["factor"], str(r["level"])), r["method"])
    return out


def fix_plan(definition, study, budget_seeds: int | None) -> Plan | None:
    """The study's plan (src/answer/boundary.py): fixed before its first look, from `sweep.plan`, else the
    seeds the budget allows (`budget_seeds`, a designed sweep's; none when racing), and recorded; what was
    recorded after that.
    None for a sampled sweep, and for a study whose looks were taken before plans were (they keep the
    procedure they had: the anytime-valid sequence alone)."""
    if not attrs.PLAN.has(study) and not attrs.LOOKS.get(study):
        s = definition.settings
        # racing (until=best) unbalances the cells after its first block, where a plan's boundary does not hold
        last = (s.plan or (budget_seeds if s.until != "best" else None)) if s.designed else None
        fixed = Plan(len(s.seeds), max(last, len(s.seeds))) if last else None
        attrs.PLAN.set(study, fixed.to_dict() if fixed else {})
    return plan(study)


def plan(study) -> Plan | None:
    """The plan the study recorded (`fix_plan`), or None."""
    return Plan.from_dict(attrs.PLAN.get(study))


def plan_note(definition, fixed: Plan | None) -> str | None:
    """A line for the terminal when `sweep.plan` asks for another plan than the one the study fixed."""
    asked = definition.settings.plan
    if asked is None or asked == (fixed.last if fixed else None):
        return None
    held = f"its plan of {fixed.last} seeds" if fixed else "no plan (the anytime-valid sequence alone)"
    return (f"note: sweep.plan={asked} is not used: the study fixed {held} at its first look, and a plan cannot "
            f"change after the data have been seen")


def estimate(definition, study, rows: list[Cell]) -> dict:
    """The cells' estimate, each question by the method of its first look."""
    s = definition.settings
    return blocks.estimate(summary.observations(rows), summary.factors(definition.params), s.direction, s.block,
                           methods(attrs.LOOKS.get(study)))


def look(definition, study, rows: list[Cell] | None = None, eff: dict | None = None) -> list[decision.Decision]:
    """Takes a look: the effects of the complete cells so far and every question's decision, recorded in the
    study with the look (once per number of trainings) and never recomputed; returns the decisions over all
    the looks recorded. Nothing here depends on the budget: a larger one later changes no verdict. `rows`
    (the study's, src/sweep/study.py) and `eff` (their estimate) when the caller has them already."""
    from src.sweep import study as studies

    s = definition.settings
    rows = studies.rows(study) if rows is None else rows
    obs = summary.observations(rows)
    eff = eff or estimate(definition, study, rows)
    records = eff["records"]
    looks = list(attrs.LOOKS.get(study))
    new = obs and (not looks or looks[-1]["cells"] < len(obs))  # a look needs data: none before the first cell
    if new:
        looks.append({"cells": len(obs), "records": [{k: _plain(r.get(k)) for k in SLIM} for r in records]})
    decided = decision.decide(looks, s.direction, s.equivalence, family=family(definition), plan=plan(study))
    if new:
        looks[-1]["decisions"] = {d.name: {k: _plain(v) for k, v in d.recorded().items()} for d in decided}
        attrs.LOOKS.set(study, looks)
    return decided


def split_race(study, rows: list[Cell]) -> tuple[list[Cell], list[Cell] | None]:
    """A sampled sweep's rows, once it races (sweep.until=best), as (its search's trials, its race's cells: the
    trials that carry a seed); the questions are answered from the search, the best set from the race alone
    (the search's values chose the raced configurations, and would carry the winner's curse into the set).
    Any other study's: (rows, None)."""
    if not attrs.RACE.get(study):
        return rows, None
    raced = [r for r in rows if r.seed is not None]
    return [r for r in rows if r.seed is None], raced or None


def build(definition, study, rows: list[Cell], planned: int | None, design_size: int) -> summary.Answer:
    """The whole answer (src/answer/summary.py `assemble`), after a look."""
    s = definition.settings
    rows, raced = split_race(study, rows)
    eff = estimate(definition, study, rows)
    decided = look(definition, study, rows, eff)  # the look and the answer read one estimate
    per_cell = attrs.SECONDS_PER_CELL.get(study) or summary.seconds_per_cell(rows, s.workers or 1)
    per_block = attrs.SECONDS_PER_BLOCK.get(study)
    st = summary.Study(factors=summary.factors(definition.params), direction=s.direction, metric=s.metric,
                       delta=s.equivalence, looks=[lk["cells"] for lk in attrs.LOOKS.get(study)],
                       planned=planned, seconds_per_cell=per_cell, design_size=design_size, blocks=s.block,
                       seconds_per_block=per_block, add_seeds=s.add_seeds, boundary=plan(study))
    return summary.assemble(rows, decided, st, eff, best_rows=raced)
