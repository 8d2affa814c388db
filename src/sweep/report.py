"""What a sweep leaves behind: the results table, the effects report, the ablation report, Optuna's
plots, the best config.

The effects report answers "does this factor help?": each level of each discrete dimension
against the reference level (the first listed), with a 95% interval, P(better), the number of
matched pairs and a verdict held against seed noise (src/sweep/effects.py), as JSON, Markdown
and a forest plot. The ablation report shows the objective per level with its spread over
trials and seeds (complete trials only; every seed's value counts), as a table and a picture.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import tempfile
from pathlib import Path

from src.sweep.tracking import log_summary

log = logging.getLogger(__name__)


def trial_rows(study) -> list[dict]:
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):
            continue
        rows.append({
            "trial": t.number, "state": t.state.name,
            "value": t.value if t.state == TrialState.COMPLETE else None,
            "spread": t.user_attrs.get("spread"),
            "seed_values": t.user_attrs.get("seed_values", {}),
            "params": dict(t.params),
            "attention": t.user_attrs.get("attention", {}),
            "pruned_at_epoch": t.user_attrs.get("pruned_at_epoch"),
            "failure": t.user_attrs.get("failure"),
            "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start else None,
        })
    return rows


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


def ablation(rows: list[dict], params: dict) -> dict:
    """factor -> level -> {mean, std, n} over every seed value of the complete trials at that level,
    for the factors of `factors(params)`."""
    out = {}
    for key, levels_of in factors(params).items():
        levels = {}
        for level in levels_of:
            vals = [v for r in rows if r["state"] == "COMPLETE" and key in r["params"] and r["params"][key] == level
                    for v in (r["seed_values"].values() or [r["value"]]) if v is not None]
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


def results_table(rows: list[dict], metric: str, direction: str, limit: int = 30) -> str:
    keys = sorted({k for r in rows for k in r["params"]})
    done = [r for r in rows if r["value"] is not None]
    rest = [r for r in rows if r["value"] is None]
    done.sort(key=lambda r: r["value"], reverse=direction == "maximize")
    shown = (done + rest)[:limit]
    header = ["trial", "state", metric, "+-"] + keys
    body = []
    for r in shown:
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        spread = "" if not r["spread"] else f"{r['spread']:.4f}"
        state = r["state"] + (f"@{r['pruned_at_epoch']}" if r["pruned_at_epoch"] else "")
        body.append([str(r["trial"]), state, value, spread] + [str(r["params"].get(k, "-")) for k in keys])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*b) for b in body]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more trials in MLflow")
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


def effects_report(rows: list[dict], params: dict, direction: str, seeds) -> dict:
    """The effects of every factor level (src/sweep/effects.py) from the complete trials' per-seed values;
    pruned and failed trials are left out, and counted."""
    from src.sweep.effects import estimate

    obs = [{"config": r["params"], "seed": seed, "value": v} for r in rows if r["state"] == "COMPLETE"
           for seed, v in r["seed_values"].items() if v is not None and math.isfinite(v)]
    out = estimate(obs, factors(params), direction, len(seeds))
    left = [r for r in rows if r["state"] in ("PRUNED", "FAIL")]
    out["left_out"] = {"trials": len(left), "pruned": sum(r["state"] == "PRUNED" for r in left),
                       "failed": sum(r["state"] == "FAIL" for r in left)}
    out["runs"] = len(obs)
    out["attention"] = attention_summary(rows)
    return out


def attention_summary(rows: list[dict]) -> dict:
    """Mean attention summary of the complete trials' best epochs (entropy 1 = uniform weights)."""
    vals = {}
    for r in rows:
        if r["state"] != "COMPLETE":
            continue
        for per_seed in (r.get("attention") or {}).values():
            for k, v in per_seed.items():
                vals.setdefault(k, []).append(v)
    return {k: statistics.fmean(v) for k, v in vals.items() if v}


def _fmt(v, digits=4, signed=False):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def effects_table(eff: dict, metric: str) -> str:
    lines = [f"| factor | level vs reference | effect on {metric} | 95% interval | P(better) | pairs | "
             f"detectable | verdict |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in eff["records"]:
        pairs = str(r["n_pairs"]) if r["method"] == "paired" else f"({r['method']})"
        lines.append(f"| {r['factor']} | {r['level']} vs {r['reference']} | {_fmt(r['effect'], signed=True)} | "
                     f"[{_fmt(r['ci_low'], signed=True)}, {_fmt(r['ci_high'], signed=True)}] | "
                     f"{_fmt(r['p_better'], 2)} | {pairs} | {_fmt(r['detectable'])} | {r['verdict']} |")
    return "\n".join(lines)


def effects_text(eff: dict, metric: str, seeds) -> str:
    """The effects table with the noise floor, what was left out and the notes, as Markdown."""
    n = eff["noise"]
    noise = (f"seed noise (one configuration's spread over {len(seeds)} seeds, SD): median {n['sd_median']:.4f}, "
             f"range {n['sd_min']:.4f} to {n['sd_max']:.4f} over {n['configs']} configurations"
             if n["sd_median"] is not None else "seed noise: not measured (one seed per configuration)")
    lo = eff["left_out"]
    parts = [effects_table(eff, metric), "", f"{eff['runs']} runs; {noise}.",
             "detectable: the smallest true effect this design finds 80% of the time (5% two-sided)."]
    if lo["trials"]:
        parts.append(f"left out: {lo['trials']} trials ({lo['pruned']} pruned, {lo['failed']} failed) and the pairs "
                     f"they were part of.")
    att = eff.get("attention") or {}
    for prefix, when in (("", "the best epoch"), ("last_", "the last epoch")):
        if f"{prefix}attention_entropy" in att:
            line = (f"attention at {when} (mean over runs): normalised entropy {att[prefix + 'attention_entropy']:.3f} "
                    f"(1 = uniform weights)")
            if f"{prefix}attention_peak" in att:
                line += f", largest weight {att[prefix + 'attention_peak']:.2f} x the uniform share (1 = uniform)"
            if f"{prefix}attention_recent_weight" in att:
                line += (f", weight on the 5 most recent steps {att[prefix + 'attention_recent_weight']:.3f} "
                         f"(uniform: {att.get(prefix + 'attention_recent_uniform', float('nan')):.3f})")
            parts.append(line + ".")
    parts += eff["notes"]
    return "\n".join(parts)


def effects_figure(eff: dict, metric: str, direction: str):
    """Forest plot: each level's effect against its reference with the 95% interval, a line at zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in eff["records"] if r["effect"] is not None]
    if not recs:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(recs) + 1.6))
    colors = {"better": "tab:green", "worse": "tab:red"}
    for i, r in enumerate(reversed(recs)):
        c = colors.get(r["verdict"].split(" ")[0], "tab:gray")
        lo, hi = r["ci_low"], r["ci_high"]
        if lo is not None and math.isfinite(lo):
            ax.plot([lo, hi], [i, i], color=c, lw=2.5)
        ax.plot([r["effect"]], [i], "o", color=c, ms=7)
    ax.axvline(0, color="black", lw=1)
    n = eff["noise"]["sd_median"]
    if n:
        ax.axvspan(-n, n, color="0.9", zorder=0, label=f"± seed noise SD ({n:.4f})")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(range(len(recs)))
    ax.set_yticklabels([f"{r['factor']}: {r['level']} vs {r['reference']}" for r in reversed(recs)], fontsize=9)
    ax.set_xlabel(f"effect on {metric} ({'higher' if direction == 'maximize' else 'lower'} is better)")
    ax.set_title("effects with 95% intervals (green: better, red: worse, grey: no difference detectable)",
                 fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _save_figure(fig, path: Path) -> None:
    if fig is None:
        return
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out: Path, study, rows: list[dict], abl: dict, eff: dict, eff_text: str, s) -> list[Path]:
    """The report's files in `out` (trials, ablation, effects as JSON, Markdown and pictures); returns them."""
    (out / "trials.json").write_text(json.dumps(rows, indent=1, default=str))
    (out / "ablation.md").write_text(ablation_table(abl, s.metric) + "\n")
    (out / "ablation.json").write_text(json.dumps(abl, indent=1))
    (out / "effects.json").write_text(json.dumps(eff["records"], indent=1, default=str))
    (out / "effects_summary.json").write_text(json.dumps({k: v for k, v in eff.items() if k != "records"},
                                                         indent=1, default=str))
    (out / "effects.md").write_text(eff_text + "\n")
    _save_figure(effects_figure(eff, s.metric, s.direction), out / "effects.png")
    _save_figure(ablation_figure(abl, s.metric), out / "ablation.png")
    names = ("trials.json", "effects.json", "effects_summary.json", "effects.md", "effects.png", "ablation.md",
             "ablation.json", "ablation.png")
    return [out / name for name in names if (out / name).exists()]


def _best(study):
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def _print_summary(rows, abl, best, counts, s, failed, hint, eff_text) -> None:
    print()
    print(results_table(rows, s.metric, s.direction))
    print()
    if abl:
        print("ablation (complete trials, every seed):")
        print(ablation_table(abl, s.metric))
        print()
    if best is not None:
        print(f"best trial {best.number}: {s.metric} {best.value:.4f}  "
              + " ".join(f"{k}={v}" for k, v in best.params.items()))
    print(f"study {s.name!r}: {counts['finished']} finished ({counts['complete']} complete, {counts['pruned']} "
          f"pruned), {counts['failed']} failed")
    if failed:
        print(f"error: {failed}")
    print(f"{hint}  (the sweep's parent run: report/ and optuna/ artifacts, its trials nested under it; "
          f"best_config.yaml reruns with `python -m src.train --config-path <dir> --config-name best_config`)")
    print()
    print("effects against the reference level (report/effects.md, effects.png on the parent run):")
    print(eff_text)


def finish(definition, study, parent: str, failed: str | None = None) -> None:
    """Logs the study summary to the parent run and prints the results."""
    from src.config import compose
    from src.sweep.study import counts as study_counts

    s = definition.settings
    rows = trial_rows(study)
    abl = ablation(rows, definition.params)
    counts = study_counts(study)
    eff = effects_report(rows, definition.params, s.direction, s.seeds)
    eff_text = effects_text(eff, s.metric, s.seeds)
    best = _best(study)
    best_cfg = None
    if best is not None:
        best_cfg = compose(list(definition.base) + best.user_attrs.get("overrides", []) + [f"seed={s.seeds[0]}"])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        files = write_report(out, study, rows, abl, eff, eff_text, s)
        (out / "optuna").mkdir()
        plots = optuna_plots(study, out / "optuna")
        metrics = {f"trials_{k}": v for k, v in counts.items()}
        hint = log_summary(parent, files, plots, metrics, best, best_cfg, failed)
    _print_summary(rows, abl, best, counts, s, failed, hint, eff_text)
