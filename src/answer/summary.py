"""A sweep's answer: each question's effect, the interval its verdict uses, the verdict, and, for an
undecided question, what deciding it would take; with the noise floor and a plan of what more seeds
would buy. Built from the study's complete cells (plain dicts the sweep hands over) by src/answer/effects.py
(estimates) and src/answer/decision.py (verdicts over every look taken); its questions are
src/answer/records.py's `Question`s. Nothing here knows Optuna or MLflow.

Verdicts are made on `sweep.metric` alone; the same effects on the best epoch's test metric are
reported beside them, without verdicts.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from src.answer import best, blocks, decision
from src.answer.boundary import Plan
from src.answer.effects import Noise
from src.answer.effects import key as config_key
from src.answer.records import Cell, Question, interval, unbounded

SHOWN_SEEDS = (2, 3, 5, 10, 20, 40, 100, 200)  # the seeds per configuration the plan line names


def factors(params: dict) -> dict:
    """{factor: [reference level, other levels]} for the discrete dimensions with at most 12 levels."""
    out = {}
    for key, p in params.items():
        try:
            levels = p.values()
        except ValueError:  # continuous: no levels
            continue
        if p.kind == "categorical" or len(levels) <= 12:
            out[key] = levels
    return out


def observations(rows: list[Cell], which: str = "seed_values") -> list[dict]:
    """One observation per complete cell: {"config", "seed", "value"} (`which`: seed_values = the
    validation metric, test_values = the test metric of the same best epoch)."""
    return [{"config": r.params, "seed": seed, "value": v} for r in rows if r.state == "COMPLETE"
            for seed, v in (getattr(r, which) or {}).items() if v is not None and math.isfinite(v)]


def question(r: dict, d: decision.Decision | None, price: decision.Price | None) -> Question:
    """A question's record from its estimate (`r`, src/answer/effects.py) and its decision over the looks
    (`d`, src/answer/decision.py; None: no look has decided anything of it yet)."""
    taken = {k: getattr(d, k, None) for k in ("verdict_low", "verdict_high", "verdict_method", "adjustment", "delta",
                                              "decided_at", "boundary", "alpha_each", "looks", "empty_at")}
    return Question(
        factor=r["factor"], level=str(r["level"]), reference=str(r["reference"]), effect=r["effect"], se=r["se"],
        df=r["df"], method=r["method"], n_pairs=r.get("n_pairs"), p_better=r.get("p_better"),
        detectable=r.get("detectable"), ci95_low=r["ci_low"], ci95_high=r["ci_high"],
        verdict=d.verdict if d else "undecided", price=price, n_eff=r.get("n_eff"), block=r.get("block"), **taken)


@dataclass
class Study:
    """What the answer needs to know of the sweep besides its cells."""

    factors: dict          # {factor: [reference, levels...]}
    direction: str        # maximize or minimize
    metric: str
    delta: float          # +-delta of "equivalent"
    looks: list           # the trainings at each look taken
    planned: int | None   # the budget of trainings (sequential sweeps), for the report; verdicts ignore it
    seconds_per_cell: float | None
    design_size: int      # configurations in the design (0: sampled)
    blocks: tuple = ()    # the block dimensions (sweep.block): questions are answered within each block
    seconds_per_block: float | None = None  # a block's fixed cost (workers' start-up, the look), paid per block
    add_seeds: int = 1    # seeds per block of a sequential sweep
    boundary: Plan | None = None  # the study's plan of seeds (src/answer/boundary.py), fixed at its first look


@dataclass(frozen=True)
class LeftOut:
    """The trials the answer leaves out: pruned or failed."""

    trials: int = 0
    pruned: int = 0
    failed: int = 0


@dataclass(kw_only=True)
class Answer:
    """A sweep's answer at one look: what the report, the terminal, tracking and the export read."""

    records: list[Question]   # the questions, on the sweep's metric (src/answer/records.py)
    noise: Noise              # the seed noise (src/answer/effects.py)
    notes: list = field(default_factory=list)    # what the estimate could not do, in words
    runs: int                 # the trainings the questions read
    test: list = field(default_factory=list)     # the same estimates on the best epochs' test metric
    pooled: list = field(default_factory=list)   # the questions asked in several blocks, across them
    blocks: list = field(default_factory=list)   # the block dimensions (sweep.block)
    left_out: LeftOut = field(default_factory=lambda: LeftOut())  # the trials not in the answer
    attention: dict = field(default_factory=dict)  # the attention summary (`attention_summary`)
    looks: list               # the trainings at each look taken
    planned: int | None       # the budget of trainings (sequential sweeps), for the report
    seconds_per_cell: float | None = None
    per_seed: int             # configurations per seed
    plan: Outlook = field(default_factory=lambda: Outlook())  # what more seeds would buy (`plan`)
    delta: float              # +-delta of "equivalent"
    metric: str
    direction: str = "maximize"
    sources: Sources | None = None               # where the noise comes from (`noise_sources`)
    best: list = field(default_factory=list)     # the best configuration's confidence sets (src/answer/best.py)
    raced: int | None = None                     # a sampled race's trainings, which the best sets read

    def summary(self) -> dict:
        """Everything but the questions and the best sets, in field order, as plain JSON-ready values
        (`report/effects_summary.json`)."""
        out = asdict(self)
        del out["records"], out["best"]
        return out


def assemble(rows: list[Cell], decided: list[decision.Decision], st: Study, eff: dict | None = None,
             best_rows: list[Cell] | None = None) -> Answer:
    """The whole answer from the study's cells (`rows`: plain dicts, src/sweep/study.py) and the decisions
    over the looks: the questions (validation metric), the test-metric estimates, noise, plan, notes. `eff`:
    the cells' estimate (src/answer/blocks.py) when the caller has it already; `best_rows`: the cells the best
    set is computed from when they are not `rows` (a sampled sweep's race)."""
    obs = observations(rows)
    eff = eff or blocks.estimate(obs, st.factors, st.direction, st.blocks)
    by_name = {d.name: d for d in decided}
    per_seed = st.design_size or max(1, len({config_key(o["config"]) for o in obs}))
    sizes = block_sizes(obs, st.blocks)
    records = []
    for r in eff["records"]:
        d = by_name.get(decision.question(r))
        undecided = d is None or (d.verdict == "undecided" and not d.empty_at)
        cells, per = sizes.get(r.get("block"), (len(obs), per_seed))
        cost = (decision.price({**r, "now_low": d and d.now_low, "now_high": d and d.now_high}, st.direction,
                               cells, per, (d and d.alpha_each) or decision.ALPHA, st.delta, st.seconds_per_cell,
                               seconds_per_block=st.seconds_per_block, block_cells=st.add_seeds * per,
                               plan=st.boundary)
                if undecided else None)
        records.append(question(r, d, cost))
    left = [r for r in rows if r.state in ("PRUNED", "FAIL")]
    return Answer(
        records=records, noise=eff["noise"], notes=eff["notes"], runs=len(obs),
        test=blocks.estimate(observations(rows, "test_values"), st.factors, st.direction, st.blocks)["records"],
        pooled=blocks.pooled(decided, st.direction, st.delta), blocks=list(st.blocks),
        left_out=LeftOut(trials=len(left), pruned=sum(r.state == "PRUNED" for r in left),
                         failed=sum(r.state == "FAIL" for r in left)),
        attention=attention_summary(rows), looks=list(st.looks), planned=st.planned,
        seconds_per_cell=st.seconds_per_cell, per_seed=per_seed, plan=plan(records, len(obs), per_seed, st.boundary),
        delta=st.delta, metric=st.metric, direction=st.direction,
        sources=noise_sources(rows, st.factors, st.direction, records, st.blocks),
        best=best_sets(obs if best_rows is None else observations(best_rows), st),
        raced=None if best_rows is None else len(observations(best_rows)))


def best_sets(obs: list[dict], st: Study) -> list:
    """The confidence set of the best configuration (src/answer/best.py): one, or one per block."""
    parts = blocks.split(obs, list(st.blocks)) if st.blocks else {None: obs}
    out = []
    for b, o in parts.items():
        per = max(1, len({config_key(x["config"]) for x in o}))
        found = best.confidence_set(o, st.direction, st.delta, per_seed=per, seconds_per_cell=st.seconds_per_cell,
                                    block=b)
        if found is not None:
            out.append(found)
    return out


def block_sizes(obs: list[dict], blocks_: tuple | list) -> dict[str, tuple[int, int]]:
    """{block: (its trainings so far, its configurations per seed)}: a question within a block grows with that
    block's own cells (a block whose questions are all decided gets no more); empty without blocks."""
    if not blocks_:
        return {}
    return {b: (len(o), max(1, len({config_key(x["config"]) for x in o})))
            for b, o in blocks.split(obs, list(blocks_)).items()}


@dataclass(frozen=True)
class Source:
    """One question's standard error from each source of noise, and which dominates."""

    se_train: float   # from training: the spread over seeds, which the verdicts' intervals hold
    se_eval: float    # from the evaluation sample: the same models on resamples of the validation users
    dominant: str     # "training (seeds)" or "evaluation sample"


@dataclass(frozen=True)
class Sources:
    """Where the noise comes from (`noise_sources`)."""

    model_sd: float   # one trained model's metric over the resamples (median SD)
    replicates: int   # the resamples
    cells: int        # the cells with a bootstrap
    questions: dict   # question's name -> Source


def noise_sources(rows: list[Cell], factors_: dict, direction: str, records: list, blocks_=()) -> Sources | None:
    """Where the noise comes from (Bouthillier et al. 2021): training (initialisation and data order: the
    spread over seeds, which the verdicts' intervals hold) against the evaluation sample (the same trained
    models on resamples of the validation users, the same resamples for every cell, so that each question's
    effect is bootstrapped in pairs). None without the runs' bootstrap (train.eval_bootstrap=0)."""
    import numpy as np

    cells = [(r.params, seed, b) for r in rows if r.state == "COMPLETE"
             for seed, b in (r.eval_bootstrap or {}).items() if b]
    if not cells or min(len(b) for _, _, b in cells) < 10:
        return None
    reps = min(len(b) for _, _, b in cells)
    model_sd = float(np.median([np.nanstd(b, ddof=1) for _, _, b in cells]))
    per_rep = {}
    for k in range(reps):
        obs = [{"config": c, "seed": seed, "value": b[k]} for c, seed, b in cells if math.isfinite(b[k])]
        for r in blocks.estimate(obs, factors_, direction, blocks_)["records"]:
            if r["effect"] is not None:
                per_rep.setdefault(decision.question(r), []).append(r["effect"])
    questions = {}
    for r in records:
        effects = per_rep.get(r.name, [])
        if r.se is None or len(effects) < 10:
            continue
        se_eval = float(np.std(effects, ddof=1))
        questions[r.name] = Source(se_train=r.se, se_eval=se_eval,
                                   dominant="training (seeds)" if r.se >= se_eval else "evaluation sample")
    return Sources(model_sd=model_sd, replicates=reps, cells=len(cells), questions=questions)


def sources_text(ans: Answer) -> str | None:
    src = ans.sources
    if not src or not src.questions:
        return None
    lines = ["", f"Where the noise comes from: one trained model's {ans.metric} varies by SD {src.model_sd:.4f} "
             f"over {src.replicates} resamples of the validation users (the evaluation sample); per question, the "
             f"standard error of its effect from each source:", "",
             "| question | from training (seeds) | from the evaluation sample | dominates |",
             "| --- | --- | --- | --- |"]
    for q, v in src.questions.items():
        lines.append(f"| {q} | {v.se_train:.4f} | {v.se_eval:.4f} | {v.dominant} |")
    train = sum(v.dominant.startswith("training") for v in src.questions.values())
    lines += ["", f"Training noise dominates {train} of {len(src.questions)} questions. More seeds shrink the "
              "training part (four times the seeds halve it) and the verdicts' intervals with it; the evaluation part "
              "does not shrink with seeds, only with more validation users (more data: four times the users halve "
              "it; a larger `data.split.valid` adds samples of the same users, which helps little). The verdicts are "
              "about this validation set: the evaluation part is what another sample of users would add."]
    return "\n".join(lines)


def seconds_per_cell(rows: list[Cell], workers: int) -> float | None:
    """Wall seconds per training at the sweep's parallelism, from the complete trials' durations."""
    secs = [r.seconds / max(len(r.seed_values or {}), 1) for r in rows
            if r.state == "COMPLETE" and r.seconds]
    return statistics.fmean(secs) / max(workers, 1) if secs else None


@dataclass
class Outlook:
    """What more seeds would buy (`plan`): the detectable effect at each number of seeds per configuration
    and each undecided question's price, beside the seeds spent and the plan's end."""

    curve: list = field(default_factory=list)   # [(seeds per configuration, smallest effect found 80% of the time)]
    prices: list = field(default_factory=list)  # [(question, seeds, |effect|, chance, least, seeds_low, seeds_high)]
    seeds_now: float = 0.0                      # seeds per configuration spent
    plan_seeds: int | None = None               # the plan's last seed (None: no plan)


def plan(records: list[Question], cells: int, per_seed: int, boundary: Plan | None = None) -> Outlook:
    """The effect the design detects (80% of the time, at the family's error rate) at each number of seeds per
    configuration, for the question of median standard error now, with the boundary the verdicts will use then;
    and each undecided question's price (seeds, its effect), the same numbers as its line of the table."""
    known = sorted((r for r in records if r.se), key=lambda r: r.se)
    each = next((r.alpha_each for r in records if r.alpha_each), decision.ALPHA)
    now = {"seeds_now": cells / max(per_seed, 1), "plan_seeds": boundary.last if boundary else None}
    if not known or not cells:
        return Outlook(**now)
    mid = known[len(known) // 2]
    seeds = sorted({int(round(1.25 ** k)) for k in range(28)} | set(SHOWN_SEEDS))  # 1 to about 400, log-spaced
    prices = [(r.name, r.price.seeds, abs(r.effect), r.price.chance, r.price.least, r.price.seeds_low,
               r.price.seeds_high) for r in records
              if r.verdict == "undecided" and r.price]
    whole = cells / per_seed if per_seed and cells % per_seed == 0 else None
    estimate = {"se": mid.se, "df": mid.df, "n_eff": mid.n_eff, "seeds": whole}
    return Outlook(curve=decision.detectable_curve(estimate, cells, per_seed, each, seeds, boundary), prices=prices,
                   **now)


def attention_summary(rows: list[Cell]) -> dict:
    """Mean attention summary of the complete trials' best epochs (entropy 1 = uniform weights)."""
    vals = {}
    for r in rows:
        if r.state != "COMPLETE":
            continue
        for per_seed in (r.attention or {}).values():
            for k, v in per_seed.items():
                vals.setdefault(k, []).append(v)
    return {k: statistics.fmean(v) for k, v in vals.items() if v}


def _fmt(v, digits=4, signed=False):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


UNBOUNDED = ("(-inf, +inf): too few seeds for this boundary (at that look no effect, however large, reaches the "
             "confidence sequence's threshold: the seed noise is estimated from too few degrees of freedom)")


EMPTY = ("coverage failed for {name}: its interval at {at} trainings shares no effect with the earlier looks', so "
         "one of them missed the true effect (a chance the family's error allows) or the runs are not the "
         "exchangeable draws the procedure assumes (a changed data set, drift between runs); no verdict is read off "
         "it. Look for what changed between the looks, or ask the question again in a new sweep.")


def floor_text(least: float, short: bool = False) -> str:
    """The price's chance at the hardest effect the interval still allows, in words: a floor that rounds to 0%
    promises nothing, and says so (`short`: as the plan picture labels it)."""
    if round(least * 100) == 0:
        return "nothing promised at the hardest effect" + ("" if short else " still plausible")
    return f"at least {least:.0%}" + ("" if short else " whatever the effect")


def minutes_text(p: decision.Price) -> str:
    return f", about {p.minutes:.0f} min more" if p.minutes is not None else ""


def price_text(p: decision.Price | None) -> str:
    if not p:
        return f"not within {decision.MOST_SEEDS} seeds at this effect and margin"
    sure = f"; decided whatever the effect by {p.certain_seeds} seeds" if p.certain_seeds else ""
    least = f", {floor_text(p.least)}" if p.least is not None else ""
    return (f"{p.seeds} seeds{range_text(p)} ({p.trainings} trainings{minutes_text(p)}): {p.chance:.0%} chance to "
            f"decide on average over the effects still plausible{least}, most likely {p.towards}{sure}")


def range_text(p: decision.Price) -> str:
    """The price's range as the noise estimate allows it, in words (empty for answers recorded without it)."""
    if p.seeds_low is None:
        return ""
    high = f"{p.seeds_high}" if p.seeds_high else f"over {decision.MOST_SEEDS}"
    last = p.plan_seeds
    past = (f"; its high end is past the plan's {last} seeds" if last and p.seeds <= last and
            (not p.seeds_high or p.seeds_high > last) else "")
    return f" ({p.seeds_low} to {high} as the noise estimate allows, {decision.NOISE_LEVEL:.0%} range{past})"


def to_decide(r) -> str | None:
    """What deciding a question would take, as its table row says it: its price (undecided), that its coverage
    failed (no price is read off an empty interval), or None (decided)."""
    if r.empty_at:
        return f"coverage failed at {r.empty_at} trainings (see below)"
    return price_text(r.price) if r.verdict == "undecided" else None


def pooled_table(ans: Answer) -> str | None:
    """The questions asked in several blocks, across them: the average effect and the interval its verdict
    uses, whether the effect depends on the block, and the random-effects reading with its heterogeneity."""
    pooled = ans.pooled or []
    if not pooled:
        return None
    lines = ["", f"Across the blocks ({', '.join(ans.blocks or [])}): the average of the blocks' effects, its "
             "interval the average of theirs (valid with them, at no cost to the family); whether the effect depends "
             "on the block (two intervals apart: depends; all within delta: the same everywhere); and, for reading, "
             "the random-effects mean over such blocks:", "",
             "| question | average effect | interval | verdict | depends on the block? | random effects, 95% | "
             "Q (p) | I^2 | tau^2 |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in pooled:
        re = p.random_effects or {}
        rand = (f"{_fmt(re.get('mu'), signed=True)} [{_fmt(re.get('low'), signed=True)}, "
                f"{_fmt(re.get('high'), signed=True)}]" if re else "-")
        q = f"{re['q']:.2f} ({re['q_p']:.3f})" if re else "-"
        said = blocks.interaction_text(p.interaction, ans.blocks)
        lines.append(f"| {p.label} | {_fmt(p.effect, signed=True)} | {interval(p.low, p.high)} | {p.verdict} | "
                     f"{said} | {rand} | {q} | {_fmt(re.get('i2'), 2)} | {_fmt(re.get('tau2'), 6)} |")
    lines.append("")
    lines.append("Random effects: " + (next((p.random_effects["estimator"] for p in pooled if p.random_effects),
                                             "-")) + "; it speaks of blocks like these, the verdicts of these blocks.")
    return "\n".join(lines)


def verdict_table(ans: Answer) -> str:
    m, delta, records = ans.metric, ans.delta, ans.records
    lines = [f"| question | effect on {m} | interval (adjusted) | verdict | decided at | to decide |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in records:
        at = f"{r.decided_at} trainings" if r.decided_at else "-"
        cost = to_decide(r) or "-"
        lines.append(f"| {r.label} | {_fmt(r.effect, signed=True)} | "
                     f"{interval(r.verdict_low, r.verdict_high)} | {r.verdict} | "
                     f"{at} | {cost} |")
    lines.append("")
    lines.append(f"equivalent: the interval lies inside +-{delta:g} (`sweep.equivalence`); better / worse: it excludes "
                 f"0. Intervals: {records[0].adjustment if records else '-'}; the chance of any "
                 f"false call over all questions and looks is at most {decision.ALPHA:.0%}.")
    if any(unbounded(r.verdict_low, r.verdict_high) for r in records):
        lines.append(UNBOUNDED + ".")
    lines += [EMPTY.format(name=r.label, at=r.empty_at) for r in records if r.empty_at]
    return "\n".join(lines)


def detail_table(ans: Answer) -> str:
    test = {decision.question(r): r for r in ans.test}
    lines = [f"| factor | level vs reference | effect on {ans.metric} | 95% interval (unadjusted) | P(better) | "
             f"method | effect on test | test 95% interval |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in ans.records:
        t = test.get(r.name, {})
        method = f"paired ({r.n_pairs})" if r.method == "paired" else r.method
        lines.append(f"| {r.factor} | {r.level} vs {r.reference} | {_fmt(r.effect, signed=True)} | "
                     f"[{_fmt(r.ci95_low, signed=True)}, {_fmt(r.ci95_high, signed=True)}] | "
                     f"{_fmt(r.p_better, 2)} | {method} | {_fmt(t.get('effect'), signed=True)} | "
                     f"[{_fmt(t.get('ci_low'), signed=True)}, {_fmt(t.get('ci_high'), signed=True)}] |")
    return "\n".join(lines)


def _noise_line(ans: Answer) -> str:
    n = ans.noise
    if n.sd_median is None:
        return "seed noise: not measured (one seed per configuration)"
    return (f"seed noise (one configuration's spread over seeds, SD): median {n.sd_median:.4f}, range "
            f"{n.sd_min:.4f} to {n.sd_max:.4f} over {n.configs} configurations")


def _plan_line(ans: Answer) -> str:
    curve = dict(ans.plan.curve)
    if not curve:
        return ""
    shown = [s for s in SHOWN_SEEDS if s in curve]
    return ("detectable effect (80% power, at the family's error rate) with " +
            ", ".join(f"{s} seeds {curve[s]:.4f}" for s in shown) + f"; delta is {ans.delta:g}.")


def text(ans: Answer) -> str:
    """The answer as Markdown: verdicts first, then the unadjusted estimates beside the test metric, the
    noise, the plan and the notes."""
    lo = ans.left_out
    looks = ", ".join(str(c) for c in ans.looks) or str(ans.runs)
    parts = [verdict_table(ans), pooled_table(ans), *best_lines(ans), "",
             f"{ans.runs} trainings; the verdicts account for {len(ans.looks) or 1} look(s), at {looks} "
             f"trainings" + (f", within a budget of {ans.planned}" if ans.planned else "")
             + f"; {_noise_line(ans)}.",
             _plan_line(ans), "", "Estimates, unadjusted, beside the same best epochs' test metric (verdicts use "
             f"{ans.metric} alone):", "", detail_table(ans), sources_text(ans)]
    if lo.trials:
        parts.append(f"\nleft out: {lo.trials} trials ({lo.pruned} pruned, {lo.failed} failed).")
    parts += [_attention_line(ans, prefix, when) for prefix, when in (("", "the best epoch"),
                                                                       ("last_", "the last epoch"))]
    parts += ans.notes
    return "\n".join(p for p in parts if p is not None)


def best_lines(ans: Answer) -> list[str]:
    """The best configuration's confidence set(s), as the report's lines (none for answers without them)."""
    out = []
    for b in ans.best or []:
        out += ["", *best_text(b, ans.metric)]
    return out


def _attention_line(ans: Answer, prefix: str, when: str) -> str | None:
    att = ans.attention or {}
    if f"{prefix}attention_entropy" not in att:
        return None
    line = (f"attention at {when} (mean over runs): normalised entropy {att[prefix + 'attention_entropy']:.3f} "
            f"(1 = uniform weights)")
    if f"{prefix}attention_peak" in att:
        line += f", largest weight {att[prefix + 'attention_peak']:.2f} x the uniform share (1 = uniform)"
    if f"{prefix}attention_recent_weight" in att:
        line += (f", weight on the 5 most recent steps {att[prefix + 'attention_recent_weight']:.3f} "
                 f"(uniform: {att.get(prefix + 'attention_recent_uniform', float('nan')):.3f})")
    return line + "."


def forest(ans: Answer, direction: str):
    """Each question's effect with the interval its verdict uses, the +-delta band of equivalence, 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in ans.records if r.effect is not None]
    if not recs:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 0.6 * len(recs) + 1.8))
    colors = {"better": "tab:green", "worse": "tab:red", "equivalent": "tab:blue"}
    for i, r in enumerate(reversed(recs)):
        c = colors.get(r.verdict, "tab:gray")
        if r.verdict_low is not None and math.isfinite(r.verdict_low):
            ax.plot([r.verdict_low, r.verdict_high], [i, i], color=c, lw=2.5)
        ax.plot([r.effect], [i], "o", color=c, ms=7)
    ax.axvline(0, color="black", lw=1)
    ax.axvspan(-ans.delta, ans.delta, color="0.88", zorder=0, label=f"+-delta = {ans.delta:g} (equivalent)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8, frameon=False)
    ax.set_yticks(range(len(recs)))
    ax.set_yticklabels([f"{r.label} ({r.verdict})" for r in reversed(recs)],
                       fontsize=9)
    ax.set_xlabel(f"effect on {ans.metric} ({'higher' if direction == 'maximize' else 'lower'} is better)")
    ax.set_title("verdicts: green better, red worse, blue equivalent, grey undecided", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def blocks_forest(ans: Answer, direction: str):
    """With blocks: one panel per question, a row per block (its effect and the interval its verdict uses) and
    the pooled diamond (the average effect, the interval across the blocks); None without blocks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pooled = [p for p in ans.pooled or [] if p.effect is not None]
    if not pooled:
        return None
    fig, axes = plt.subplots(len(pooled), 1, figsize=(8.5, sum(0.5 * len(p.blocks) + 1.6 for p in pooled)),
                             squeeze=False)
    colors = {"better": "tab:green", "worse": "tab:red", "equivalent": "tab:blue"}
    for ax, p in zip(axes[:, 0], pooled):
        rows = [r for r in ans.records if (r.factor, r.level, r.reference) == (p.factor, p.level, p.reference)
                and r.block]
        for i, r in enumerate(rows):
            y = len(rows) - i
            if r.verdict_low is not None and math.isfinite(r.verdict_low) and math.isfinite(r.verdict_high):
                ax.plot([r.verdict_low, r.verdict_high], [y, y], color=colors.get(r.verdict, "tab:gray"), lw=2.5)
            ax.plot([r.effect], [y], "s", color=colors.get(r.verdict, "tab:gray"), ms=6)
        lo, hi = p.low, p.high
        if math.isfinite(lo) and math.isfinite(hi):
            ax.fill([lo, p.effect, hi, p.effect], [0, 0.25, 0, -0.25], color=colors.get(p.verdict, "tab:gray"))
        ax.axvline(0, color="black", lw=1)
        ax.axvspan(-ans.delta, ans.delta, color="0.88", zorder=0)
        ax.set_yticks(range(len(rows) + 1))
        ax.set_yticklabels([f"pooled ({p.verdict})"] + [f"{r.block} ({r.verdict})" for r in reversed(rows)],
                           fontsize=8)
        said = blocks.interaction_text(p.interaction, ans.blocks)
        ax.set_title(f"{p.label} ({said})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel(f"effect on {ans.metric} ({'higher' if direction == 'maximize' else 'lower'} is "
                           f"better); grey band: +-delta")
    fig.tight_layout()
    return fig


def plan_figure(ans: Answer):
    """Detectable effect against seeds per configuration, with delta, the seeds spent and the plan's end marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = ans.plan.curve
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    xs, ys = zip(*curve)
    ax.plot(xs, ys, color="tab:blue", label="smallest effect found 80% of the time")
    ax.axhline(ans.delta, color="tab:red", ls="--", label=f"delta = {ans.delta:g}")
    ax.axvline(ans.plan.seeds_now, color="0.4", ls=":", label=f"now: {ans.plan.seeds_now:.0f} seeds")
    if ans.plan.plan_seeds:  # where the planned boundary ends (sweep.plan)
        ax.axvline(ans.plan.plan_seeds, color="tab:green", ls="-.",
                   label=f"the plan's end: {ans.plan.plan_seeds} seeds")
    for name, seeds, effect, chance, *rest in ans.plan.prices:  # the table's "to decide"
        least, low, high = (list(rest) + [None, None, None])[:3]
        if low:  # the seeds the noise estimate allows (its 80% range), as a horizontal bar
            right = high or decision.MOST_SEEDS
            ax.errorbar([seeds], [effect], xerr=[[seeds - low], [right - seeds]], fmt="o", color="tab:orange",
                        capsize=3, lw=1)
        else:
            ax.plot([seeds], [effect], "o", color="tab:orange")
        floor = "" if least is None else f" ({floor_text(least, short=True)})"
        span = "" if not low else f" ({low}-{high or f'>{decision.MOST_SEEDS}'})"
        ax.annotate(f"{name}: {seeds}{span} seeds, {chance:.0%}{floor}", (seeds, effect), fontsize=7,
                    xytext=(-4, 4), textcoords="offset points", ha="right")  # leftwards: prices sit on the right
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seeds per configuration")
    ax.set_ylabel(f"detectable effect on {ans.metric}")
    ax.set_title("what more seeds would buy (from the noise measured so far)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def print_look(ans: Answer) -> None:
    """What a look of a sequential sweep says: each question's verdict and interval, and for an undecided one
    its price; the noise floor; what more seeds would buy."""
    per_cell = ans.seconds_per_cell
    raced = ans.raced  # a sampled sweep's race: its look is at the best set (the search's answer is done)
    print(f"look at {raced or ans.runs} {'race ' if raced else ''}trainings"
          + (f" ({per_cell:.1f} s per training)" if per_cell else "") + ":", flush=True)
    if raced:
        for b in ans.best or []:
            print(f"  {best_headline(b)}; leader {b.leader.name} ({b.leader.mean:.4f})", flush=True)
        return
    for r in ans.records:
        cost = f"; to decide: {to_decide(r)}" if to_decide(r) else ""
        print(f"  {r.name}: {r.verdict}  effect {_fmt(r.effect, signed=True)}  interval "
              f"{interval(r.verdict_low, r.verdict_high)}{cost}", flush=True)
    for b in ans.best or []:
        print(f"  {best_headline(b)}; leader {b.leader.name} ({b.leader.mean:.4f})", flush=True)
    print(f"  {_noise_line(ans)}", flush=True)
    if _plan_line(ans):
        print(f"  {_plan_line(ans)}", flush=True)


def note(ans: Answer, name: str, sampler: str, design_size: int) -> str:
    """The parent run's description (MLflow renders it as Markdown on the run's Overview): the verdict table,
    the noise floor, one line on the design (sweep `name`, its `sampler`)."""
    seeds = ans.runs / max(ans.per_seed, 1)
    looks = ", ".join(str(c) for c in ans.looks) or str(ans.runs)
    design = (f"{sampler} design, {design_size} configurations x {seeds:.0f} seeds = {ans.runs} trainings"
              if design_size else f"{sampler} sampler, {ans.runs} trainings")
    return "\n".join([
        f"## Sweep `{name}`: the answer", "", verdict_table(ans), pooled_table(ans) or "", "",
        f"**Design**: {design}; looks at {looks} trainings"
        + (f", within a budget of {ans.planned}" if ans.planned else "") + f"; metric `{ans.metric}`.",
        f"**Noise**: {_noise_line(ans)}.", "",
        "Details: `report/effects.md`, `report/effects.png`, `report/plan.png` (Artifacts).",
    ])


def metric_key(stat: str, factor: str, level, block: str | None = None) -> str:
    """`effect.model/activation.dice`: a question's number as an MLflow metric key (what the UI compares);
    within a block `effect.model/activation.dice in data_movielens`, across them `... in all blocks`."""
    import re

    return re.sub(r"[^/\w.\- :]", "_", f"{stat}.{factor}.{level}" + (f" in {block}" if block else ""))


DEPENDS_CODE = {blocks.DEPENDS: 1, blocks.SAME: 0, blocks.UNDECIDED: -1}  # `depends.F.L in all blocks`, searchable


def metrics(ans: Answer) -> dict:
    """Every question's effect, interval ends and verdict code (decision.VERDICT_CODE) as parent-run metrics."""
    out = {}
    for r in ans.records:
        values = {"effect": r.effect, "low": r.verdict_low, "high": r.verdict_high,
                  "verdict": decision.VERDICT_CODE[r.verdict]}
        out.update({metric_key(k, r.factor, r.level, r.block): v for k, v in values.items() if v is not None})
    for p in ans.pooled or []:
        values = {"effect": p.effect, "low": p.low, "high": p.high,
                  "verdict": decision.VERDICT_CODE[p.verdict], "depends": DEPENDS_CODE[p.interaction]}
        out.update({metric_key(k, p.factor, p.level, "all blocks"): v for k, v in values.items()
                    if v is not None})
    n = ans.noise.sd_median
    if n is not None:
        out["seed_noise_sd"] = n
    out["trainings"] = ans.runs
    return out


def best_headline(b, lead: str | None = None) -> str:
    """A best set's verdict in words, the one wording of the report, the terminal and the summary line: "best
    configuration: best: <the leader, or `lead`>, shown better than the other 7", "... any of these 3, each
    within +-delta of the best of the others (equivalent)", "... undecided among 8 of 8 configurations (...)"."""
    where = f" [{b.block}]" if b.block else ""
    n = len(b.members)
    if b.verdict == "best":
        return f"best configuration{where}: best: {lead or b.leader.name}, shown better than the other " \
               f"{b.configurations - 1}"
    if b.verdict == "any of these":
        return (f"best configuration{where}: any of these {n}, each within +-{b.delta:g} of the best of the others "
                f"(equivalent)")
    return (f"best configuration{where}: undecided among {n} of {b.configurations} configurations (they cannot be "
            f"told from the best yet)")


def best_text(b, metric: str) -> list[str]:
    """A best set (src/answer/best.py) as the report's lines: the verdict, then each member with its mean,
    interval and trainings."""
    head = best_headline(b)
    if b.verdict == "any of these":
        head += f"; the other {b.configurations - len(b.members)} are shown worse"
    lines = [head + f"; the set holds the best with {1 - b.alpha:.0%} at every look (Hsu's comparisons with the "
             f"best, each at {b.alpha_each:.4g}, anytime-valid)", "",
             f"| configuration | mean {metric} | its mean minus the best of the others | trainings |",
             "| --- | --- | --- | --- |"]
    for m in b.members:
        lines.append(f"| {m.name} | {m.mean:.4f} | {interval(m.low, m.high)} | {m.trainings} |")
    if b.reason:
        lines += ["", b.reason]
    elif any(m.low is None or m.high is None or not (math.isfinite(m.low) and math.isfinite(m.high))
             for m in b.members):
        lines += ["", UNBOUNDED + "."]
    elif b.verdict == "undecided":
        p = b.price
        if p:
            lines += ["", f"to decide: {p.seeds} seeds per configuration{range_text(p)} ({p.trainings} "
                      f"trainings{minutes_text(p)}): {p.chance:.0%} chance that the closest comparison with the "
                      f"leader decides"]
        else:
            lines += ["", f"to decide: not within {decision.MOST_SEEDS} seeds per configuration at these "
                      f"differences and delta"]
    return lines
