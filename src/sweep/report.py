"""What a sweep leaves behind: the results table, the answer, the ablation report, Optuna's plots, the
best config.

The answer (src/answer/summary.py) says, for each level of each discrete dimension against the
reference level (the first listed), better, worse, equivalent or undecided, with the interval the
verdict uses and, if undecided, what deciding would take; as JSON, Markdown and pictures. The
ablation report shows the objective per level with its spread over trials and seeds (complete
trials only; every seed's value counts), as a table and a picture.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from src.answer import records, summary
from src.answer.effects import key as config_key
from src.answer.records import Cell
from src.answer.summary import factors
from src.sweep import answer
from src.sweep.study import rows as trial_rows
from src.sweep.tracking import configuration_metrics, log_answer, log_summary, set_tags

log = logging.getLogger(__name__)


def ablation(rows: list[Cell], params: dict) -> dict:
    """factor -> level -> {mean, std, n} over every seed value of the complete trials at that level,
    for the factors of `factors(params)`."""
    out = {}
    for key, levels_of in factors(params).items():
        levels = {}
        for level in levels_of:
            vals = [v for r in rows if r.state == "COMPLETE" and key in r.params and r.params[key] == level
                    for v in (r.seed_values.values() or [r.value]) if v is not None]
            levels[str(level)] = {"mean": statistics.fmean(vals) if vals else None,
                                  "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0 if vals else None,
                                  "n": len(vals), "values": vals}
        out[key] = levels
    return out


def ablation_table(abl: dict, metric: str) -> str:
    lines = [f"| factor | level | mean {metric} | std | n |", "| --- | --- | --- | --- | --- |"]
    for factor, levels in abl.items():
        for level, s in levels.items():
            mean = "-" if s["mean"] is None else f"{s['mean']:.4f}"
            std = "-" if s["std"] is None else f"{s['std']:.4f}"
            lines.append(f"| {factor} | {level} | {mean} | {std} | {s['n']} |")
    return "\n".join(lines)


def ablation_figure(abl: dict, metric: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    factors = [f for f in abl if any(s["n"] for s in abl[f].values())]
    if not factors:
        return None
    fig, axes = plt.subplots(1, len(factors), figsize=(3.2 * len(factors) + 0.8, 3.6), squeeze=False)
    for ax, factor in zip(axes[0], factors):
        levels = list(abl[factor])
        for i, level in enumerate(levels):
            s = abl[factor][level]
            if not s["n"]:
                continue
            jitter = [i + 0.08 * ((j % 5) - 2) for j in range(len(s["values"]))]
            ax.scatter(jitter, s["values"], s=12, alpha=0.5, color="tab:blue")
            ax.errorbar([i], [s["mean"]], yerr=[s["std"]], fmt="o", color="black", capsize=6, markersize=7)
        ax.set_xticks(range(len(levels)))
        ax.set_xticklabels(levels, rotation=20)
        ax.set_xlim(-0.6, len(levels) - 0.4)
        ax.set_title(factor, fontsize=10)
        ax.set_ylabel(metric)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("ablation: objective per level (dots: trials x seeds; bars: mean +- std)", fontsize=10)
    fig.tight_layout()
    return fig


@dataclass
class Configuration:
    """A configuration's trials: its complete cells' values (every seed), its trials and their states."""

    params: dict
    values: list = field(default_factory=list)
    trials: list = field(default_factory=list)
    states: list = field(default_factory=list)  # COMPLETE, PRUNED@epoch, FAIL, ...

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)


@dataclass
class BestConfig:
    """The configuration best_config.yaml holds: the best set's leader (or, with no set, the best mean)."""

    params: dict
    value: float             # its mean over its complete cells
    cells: int
    overrides: list          # the sampled overrides that make it from the base config
    note: str | None = None  # the best set's line(s): how sure it is
    verdict: str | None = None  # the best set's verdict, when there is one set


def configurations(rows: list[Cell]) -> list[Configuration]:
    """The trials grouped by configuration."""
    groups: dict[str, Configuration] = {}
    for r in rows:
        g = groups.setdefault(config_key(r.params), Configuration(r.params))
        g.trials.append(r.trial)
        g.states.append(r.state + (f"@{r.pruned_at_epoch}" if r.pruned_at_epoch else ""))
        if r.state == "COMPLETE":
            g.values.extend(v for v in (r.seed_values or {"": r.value}).values() if v is not None)
    return list(groups.values())


def results_table(rows: list[Cell], metric: str, direction: str, limit: int = 30) -> str:
    """One line per configuration: the mean and spread of its complete cells, how many, their trials."""
    keys = sorted({k for r in rows for k in r.params})
    groups = configurations(rows)
    done = sorted([g for g in groups if g.values], key=lambda g: g.mean, reverse=direction == "maximize")
    shown = (done + [g for g in groups if not g.values])[:limit]
    header = [metric, "+-", "cells", "not complete"] + keys + ["trials"]
    body = []
    for g in shown:
        mean = f"{g.mean:.4f}" if g.values else ""
        spread = f"{statistics.pstdev(g.values):.4f}" if len(g.values) > 1 else ""
        other = ",".join(st for st in g.states if st != "COMPLETE")
        trials = ",".join(map(str, g.trials[:6])) + ("..." if len(g.trials) > 6 else "")
        body.append([mean, spread, str(len(g.values)), other] + [str(g.params.get(k, "-")) for k in keys]
                    + [trials])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*b) for b in body]
    if len(groups) > limit:
        lines.append(f"... {len(groups) - limit} more configurations in MLflow")
    return "\n".join(lines)


def optuna_plots(study, out: Path) -> list[Path]:
    """Optimisation history, parameter importances, parallel coordinates, intermediate values (PNG + HTML)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vm

    made = []
    plots = {"history": (vm.plot_optimization_history, vis.plot_optimization_history),
             "param_importances": (vm.plot_param_importances, vis.plot_param_importances),
             "parallel_coordinate": (vm.plot_parallel_coordinate, vis.plot_parallel_coordinate),
             "intermediate_values": (vm.plot_intermediate_values, vis.plot_intermediate_values)}
    for name, (mpl_fn, plotly_fn) in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = mpl_fn(study)
                fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
                fig.set_size_inches(8, 5)
                fig.tight_layout()
                path = out / f"{name}.png"
                fig.savefig(path, dpi=100)
                plt.close(fig)
                made.append(path)
                html = out / f"{name}.html"
                plotly_fn(study).write_html(html, include_plotlyjs="cdn")
                made.append(html)
            except Exception as e:  # noqa: BLE001 - e.g. importances need two complete trials; say which
                log.warning("the Optuna plot %s was not made: %s: %s", name, type(e).__name__, str(e)[:200])
                plt.close("all")
    return made


def _save_figure(fig, path: Path) -> None:
    if fig is None:
        return
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out: Path, rows: list[Cell], abl: dict, ans: summary.Answer, s) -> list[Path]:
    """The report's files in `out` (trials, ablation, the answer as JSON, Markdown and pictures); returns them."""
    (out / "trials.json").write_text(json.dumps([asdict(r) for r in rows], indent=1, default=str))
    (out / "ablation.md").write_text(ablation_table(abl, s.metric) + "\n")
    (out / "ablation.json").write_text(json.dumps(abl, indent=1))
    (out / "effects.json").write_text(records.dump(ans.records, s.metric, s.direction, ans.pooled,
                                                   ans.blocks, ans.best))
    (out / "effects_summary.json").write_text(json.dumps(ans.summary(), indent=1, default=str))
    (out / "effects.md").write_text(summary.text(ans) + "\n")
    _save_figure(summary.forest(ans, s.direction), out / "effects.png")
    _save_figure(summary.plan_figure(ans), out / "plan.png")
    _save_figure(summary.blocks_forest(ans, s.direction), out / "blocks.png")
    _save_figure(ablation_figure(abl, s.metric), out / "ablation.png")
    names = ("trials.json", "effects.json", "effects_summary.json", "effects.md", "effects.png", "plan.png",
             "blocks.png", "ablation.md", "ablation.json", "ablation.png")
    return [out / name for name in names if (out / name).exists()]


def _print_summary(rows, abl, best, counts, s, failed, hint, ans) -> None:
    print()
    print(results_table(rows, s.metric, s.direction))
    print()
    if abl:
        print("ablation (complete trials, every seed):")
        print(ablation_table(abl, s.metric))
        print()
    print(f"study {s.name!r}: {counts.finished} finished ({counts.complete} complete, {counts.pruned} "
          f"pruned), {counts.failed} failed")
    if failed:
        print(f"error: {failed}")
    print(f"{hint}  (the sweep's parent run: report/ and optuna/ artifacts, its trials nested under it; "
          f"best_config.yaml reruns with `python -m src.train --config-path <dir> --config-name best_config`)")
    print()
    print("the answer (report/effects.md, effects.png and plan.png on the parent run):")
    print(summary.text(ans))
    print()
    if ans.best:  # the last lines: which configuration to use, and how sure that is
        for b in ans.best:
            print(b_line(b, s.metric))
    elif best is not None:
        print(f"best configuration: {s.metric} {best.value:.4f} over {best.cells} cell(s), one "
              f"configuration: nothing to compare it with  " + " ".join(f"{k}={v}" for k, v in best.params.items()))


def b_line(b, metric: str) -> str:
    """The best set in one line: its verdict, the leader (what best_config.yaml holds) and the members."""
    lead = f"{b.leader.name} ({metric} {b.leader.mean:.4f} over {b.leader.trainings} training(s))"
    if b.verdict == "best":
        return summary.best_headline(b, lead)
    said = f"{summary.best_headline(b)}; best_config.yaml holds the leader, {lead}"
    return said + (", which is not a finding" if b.verdict == "undecided" else "")


def best_configuration(rows: list[Cell], direction: str, leader: dict | None = None) -> BestConfig | None:
    """The configuration with the best mean over its complete cells, or the `leader` of the best set (its
    levels: src/answer/best.py), whose mean takes the seeds' luck out."""
    groups = [g for g in configurations(rows) if g.values]
    if not groups:
        return None
    sign = 1 if direction == "maximize" else -1
    chosen = [g for g in groups if leader is not None and config_key(g.params) == config_key(leader)]
    best = chosen[0] if chosen else max(groups, key=lambda g: sign * g.mean)
    overrides = next(r.overrides or [] for r in rows if r.trial in best.trials)
    return BestConfig(params=best.params, value=best.mean, cells=len(best.values), overrides=overrides)


def finish(definition, study, parent: str, failed: str | None = None, planned: int | None = None,
           design_size: int = 0) -> None:
    """Logs the study summary and the answer to the parent run and prints them."""
    from src.config import compose
    from src.sweep.study import counts as study_counts

    s = definition.settings
    rows = trial_rows(study)
    abl = ablation(rows, definition.params)
    counts = study_counts(study)
    ans = answer.build(definition, study, rows, planned, design_size)
    sets = ans.best or []
    raced = answer.split_race(study, rows)[1]  # a sampled race's leader: its mean over the race's cells
    best = best_configuration(raced or rows, s.direction, sets[0].leader.levels if len(sets) == 1 else None)
    best_cfg = None
    if best is not None:
        best_cfg = compose(list(definition.base) + best.overrides + [f"seed={s.seeds[0]}"])
        best.note = "\n".join(b_line(b, s.metric) for b in sets) if sets else None
        best.verdict = sets[0].verdict if len(sets) == 1 else None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = write_report(out, rows, abl, ans, s)
        (out / "optuna").mkdir()
        plots = optuna_plots(study, out / "optuna")
        metrics = counts.metrics()
        per_config, names = configuration_metrics(definition, summary.observations(rows))
        set_tags(parent, names)
        log_answer(parent, summary.note(ans, s.name, s.sampler, design_size), {**summary.metrics(ans), **per_config})
        hint = log_summary(parent, files, plots, metrics, best, best_cfg, failed)
    _print_summary(rows, abl, best, counts, s, failed, hint, ans)
