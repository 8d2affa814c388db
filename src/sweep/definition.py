"""A sweep's definition: the sweep file merged with the command line, checked, frozen.

    sweeps/<name>.yaml     study: {setting: value}, fixed: [override, ...], search: {key: expression}
    command line           plain overrides fix the base config, sweep expressions add or replace
                           dimensions, `~KEY` drops one of the file's, `sweep.KEY=VALUE` sets the study

The result is a `Definition`: plain, frozen and picklable, so that a worker process
receives it as it is and rebuilds nothing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import yaml

from src.config.paths import SWEEPS_DIR
from src.sweep import SweepError, space
from src.sweep.space import Param

METRICS = {"valid_auc": "maximize", "valid_gauc": "maximize", "valid_logloss": "minimize"}
SAMPLERS = ("tpe", "random", "grid", "fractional")
PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class Settings:
    """The study settings (`sweep.KEY=VALUE`), with their defaults."""

    name: str | None = None      # study name; default: the sweep file's name
    metric: str = "valid_auc"    # best-epoch validation metric: valid_auc, valid_gauc, valid_logloss
    direction: str | None = None  # maximize / minimize; default: from the metric
    trials: int = 10             # finished (complete or pruned) trials the study should hold
    timeout: float | None = None  # seconds after which no new trial starts
    sampler: str = "tpe"         # tpe, random, grid (every configuration), fractional (2^(k-p) design)
    pruner: str = "median"       # median, hyperband, none
    seed: int = 0                # sampler seed
    seeds: tuple = (0,)          # training seeds per configuration; the objective is their mean
    workers: int = 1             # worker processes on this machine
    trials_per_gpu: int = 1      # workers (so trials at once) sharing one GPU, when there are GPUs
    storage: str | None = None   # Optuna storage URL; default: a journal file under mlruns/
    heartbeat: float = 30        # seconds between a running trial's heartbeats
    grace: float = 90            # seconds without a heartbeat after which another host's trial is dead
    max_initial_failures: int = 3  # stop when this many trials failed before any succeeded


DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}


@dataclass(frozen=True)
class Definition:
    """What a sweep is: where it came from, the fixed overrides, the dimensions, the settings."""

    file: str
    base: tuple[str, ...]
    params: dict[str, Param] = field(hash=False)
    settings: Settings
    argv: tuple[str, ...] = ()

    @property
    def s(self) -> Settings:
        return self.settings

    def signature(self) -> str:
        """What makes two invocations the same study (tracking overrides aside)."""
        fixed = [o for o in self.base if not o.lstrip("+~").startswith("tracking")]
        s = self.settings
        return json.dumps({"space": json.loads(space.signature(fixed, self.params)), "metric": s.metric,
                           "direction": s.direction, "seeds": list(s.seeds)}, sort_keys=True)


def _check(s: dict) -> Settings:
    unknown = set(s) - set(DEFAULTS)
    if unknown:
        raise SweepError(f"unknown study setting(s) {sorted('sweep.' + k for k in unknown)}; known: "
                         f"{', '.join('sweep.' + k for k in DEFAULTS)}")
    s = {**DEFAULTS, **s}
    if s["metric"] not in METRICS:
        raise SweepError(f"`sweep.metric` must be one of {sorted(METRICS)}, got {s['metric']!r}")
    s["direction"] = s["direction"] or METRICS[s["metric"]]
    if s["direction"] not in ("maximize", "minimize"):
        raise SweepError(f"`sweep.direction` must be maximize or minimize, got {s['direction']!r}")
    for k in ("trials", "workers", "trials_per_gpu", "max_initial_failures"):
        if not isinstance(s[k], int) or isinstance(s[k], bool) or s[k] < 1:
            raise SweepError(f"`sweep.{k}` must be a positive integer, got {s[k]!r}")
    for k in ("heartbeat", "grace"):
        if not isinstance(s[k], int | float) or isinstance(s[k], bool) or s[k] <= 0:
            raise SweepError(f"`sweep.{k}` must be a positive number of seconds, got {s[k]!r}")
    if s["grace"] <= s["heartbeat"]:
        raise SweepError(f"`sweep.grace` ({s['grace']}) must be longer than `sweep.heartbeat` ({s['heartbeat']})")
    if s["sampler"] not in SAMPLERS:
        raise SweepError(f"`sweep.sampler` must be one of {', '.join(SAMPLERS)}, got {s['sampler']!r}")
    if s["pruner"] not in PRUNERS:
        raise SweepError(f"`sweep.pruner` must be one of {', '.join(PRUNERS)}, got {s['pruner']!r}")
    seeds = list(s["seeds"]) if isinstance(s["seeds"], list | tuple) else [s["seeds"]]
    if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        raise SweepError(f"`sweep.seeds` must be a non-empty list of integers, got {s['seeds']!r}")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"`sweep.seeds` lists a seed twice: {seeds}")
    s["seeds"] = tuple(seeds)
    return Settings(**s)


def load(argv: list[str]) -> Definition:
    """sweeps/<name>.yaml merged with the command line (see src/sweep/space.py for the grammar)."""
    name, rest = "default", []
    for a in argv:
        if a.startswith("sweep="):
            name = a.split("=", 1)[1]
        else:
            rest.append(a)
    path = SWEEPS_DIR / f"{name}.yaml"
    if name == "none":  # the command line alone
        doc = {}
    elif not path.is_file():
        known = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))
        raise SweepError(f"no sweep file {path}; known sweeps: {', '.join(known)} (or sweep=none: the command "
                         f"line alone)")
    else:
        doc = yaml.safe_load(path.read_text()) or {}
    unknown = set(doc) - {"study", "fixed", "search"}
    if unknown:
        raise SweepError(f"{path}: unknown sections {sorted(unknown)}; expected study, fixed, search")
    fbase, fparams, _ = space.parse(list(doc.get("fixed") or []) +
                                    [f"{k}={v}" for k, v in (doc.get("search") or {}).items()])
    base, params, cli_settings = space.merge((fbase, fparams, {}), space.parse(rest))
    settings = _check({**(doc.get("study") or {}), **cli_settings})
    settings = dataclasses.replace(settings, name=str(settings.name or name))
    return Definition(file=str(path), base=tuple(base), params=params, settings=settings, argv=tuple(argv))
