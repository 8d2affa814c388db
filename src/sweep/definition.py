"""A sweep's definition: the sweep file merged with the command line, checked, frozen.

    sweeps/<name>.yaml     study: {setting: value}, fixed: [override, ...], search: {key: expression}
    command line           plain overrides fix the base config, sweep expressions add or replace
                           dimensions, `~KEY` drops one of the file's, `sweep.KEY=VALUE` sets the study

The result is a `Definition`: plain, frozen and picklable, so that a worker process
receives it as it is and rebuilds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from src.answer.decision import DELTA_DEFAULT
from src.config.paths import SWEEPS_DIR
from src.config.schema import check_section
from src.sweep import SweepError, space
from src.sweep.space import Param

METRICS = {"valid_auc": "maximize", "valid_gauc": "maximize", "valid_logloss": "minimize"}
SAMPLERS = ("tpe", "random", "grid", "fractional")
PRUNERS = ("median", "hyperband", "none")
PosInt = Annotated[int, Field(gt=0)]
Seconds = Annotated[float, Field(gt=0)]


class Settings(BaseModel):
    """The study settings (`sweep.KEY=VALUE`), with their defaults; checked in the schema style of
    src/config/schema.py (strict types, unknown keys refused with suggestions), frozen and picklable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: str | None = None      # study name; default: the sweep file's name
    metric: Literal[tuple(METRICS)] = "valid_auc"  # best-epoch validation metric
    direction: Literal["maximize", "minimize"] | None = None  # default: from the metric
    trials: PosInt | None = None  # finished trials the study should hold; default: a designed sweep's cells
    #                              (configurations x seeds, one trial each), a sampled sweep's 10
    timeout: Seconds | None = None  # seconds after which no new trial starts
    sampler: Literal[SAMPLERS] = "tpe"  # tpe, random, grid (every configuration), fractional (2^(k-p) design)
    pruner: Literal[PRUNERS] | None = None  # median, hyperband, none; default: none for designed sweeps, else median
    seed: int = 0                # sampler seed
    seeds: tuple[int, ...] = (0,)  # training seeds per configuration; the objective is their mean
    launcher: Literal["local", "ray"] = "local"  # local: worker processes here; ray: Ray tasks on every node
    workers: PosInt | None = None  # worker processes (local: default 1); ray: at most this many (default: as
    #                                many as the cluster's nodes hold, more as nodes join)
    trials_per_gpu: PosInt = 1   # workers (so trials at once) sharing one GPU, when there are GPUs
    ray_address: str = "auto"    # the Ray cluster (host:port, ray://...); auto: the running one, else a local one
    ray_cpus: Annotated[float, Field(gt=0)] = 1.0  # CPUs each Ray worker asks for on a node without GPUs
    storage: str | None = None   # Optuna storage URL; default: a journal file under mlruns/
    heartbeat: Seconds = 30      # seconds between a running trial's heartbeats
    grace: Seconds = 90          # seconds without a heartbeat after which another host's trial is dead
    max_initial_failures: PosInt = 3  # stop when this many trials failed before any succeeded
    equivalence: Annotated[float, Field(gt=0)] = DELTA_DEFAULT  # +-delta of "equivalent", in the metric's units
    until: Literal["design", "decided", "best"] = "design"  # decided: add blocks of seeds until every question is
    # decided; best: add seeds only to the configurations still in the best set, until it is decided (racing;
    # a sampled sweep searches first, then races its top `race_top` configurations on fresh seeds)
    race_top: Annotated[int, Field(ge=2)] = 4  # configurations a sampled racing sweep re-seeds after its search
    budget: PosInt | None = None  # most trainings in all (until=decided or best; default: 4 times the first
    #                               block; a sampled race's: of its own cells)
    add_seeds: PosInt = 1        # seeds per added block (until=decided)
    plan: PosInt | None = None   # seeds per configuration this study plans to reach at most: a group-sequential
    #                              boundary over looks up to it takes 80% of each question's error (narrower where
    #                              the plan fits the noise), the anytime-valid sequence the rest; fixed at the first
    #                              look (docs/answer.md). None: the anytime-valid sequence alone
    block: tuple[str, ...] = ()  # dimensions crossed with the design but not asked about (e.g. data): each
    #                              question is answered within each of their levels, and across them

    @field_validator("block", mode="before")
    @classmethod
    def _block_list(cls, v):
        keys = [v] if isinstance(v, str) else list(v) if isinstance(v, list | tuple) else None
        if keys is None or not all(isinstance(k, str) and k for k in keys):
            raise ValueError(f"must be a dimension's key or a list of them, got {v!r}")
        return tuple(keys)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_list(cls, v):
        seeds = list(v) if isinstance(v, list | tuple) else [v]
        if not seeds or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
            raise ValueError(f"must be a non-empty list of integers, got {v!r}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"lists a seed twice: {seeds}")
        return tuple(seeds)

    @model_validator(mode="after")
    def _consistent(self):
        if self.grace <= self.heartbeat:
            raise ValueError(f"`sweep.grace` ({self.grace}) must be longer than `sweep.heartbeat` ({self.heartbeat})")
        if self.until == "decided" and not self.designed:
            raise ValueError(f"`sweep.until=decided` adds seeds to a design: it needs `sweep.sampler=grid` or "
                             f"`fractional`, got {self.sampler!r} (`sweep.until=best` races a sampled sweep's top "
                             f"configurations)")
        if self.plan is not None and not self.designed:
            raise ValueError(f"`sweep.plan` plans seeds of a design: it needs `sweep.sampler=grid` or `fractional`, "
                             f"got {self.sampler!r}")
        if self.plan is not None and self.plan < len(self.seeds):
            raise ValueError(f"`sweep.plan={self.plan}` seeds is fewer than the first block's {len(self.seeds)} "
                             f"(`sweep.seeds`): the plan counts every seed of a configuration, the first block's too")
        defaults = {"direction": METRICS[self.metric], "pruner": "none" if self.designed else "median",
                    "trials": None if self.designed else 10, "workers": 1 if self.launcher == "local" else None}
        for key, value in defaults.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        return self

    @property
    def designed(self) -> bool:
        """A designed sweep (grid, fractional): every configuration is queued, one trial per (configuration,
        seed) cell; otherwise the sampler proposes configurations, one trial each, trained on every seed."""
        return self.sampler in ("grid", "fractional")


DEFAULTS = {k: f.default for k, f in Settings.model_fields.items()}


def check_settings(values: dict) -> Settings:
    """The study settings from the sweep file and the command line, checked; SweepError names the key."""
    try:
        return check_section("sweep", Settings, values)
    except ValueError as e:
        raise SweepError(str(e)) from None


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
        sig = {"space": json.loads(space.signature(fixed, self.params)), "metric": s.metric, "direction": s.direction}
        if not s.designed:  # a sampled trial's value is the mean over its seeds; a designed one is one cell
            sig["seeds"] = list(s.seeds)
        if s.block:  # the looks recorded are per block: another blocking is another study
            sig["block"] = list(s.block)
        return json.dumps(sig, sort_keys=True)


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
    settings = check_settings({**(doc.get("study") or {}), **cli_settings})
    settings = settings.model_copy(update={"name": str(settings.name or name)})
    check_block(settings, params)
    return Definition(file=str(path), base=tuple(base), params=params, settings=settings, argv=tuple(argv))


def check_block(settings: Settings, params: dict) -> None:
    """A block is a discrete dimension of a designed sweep, and something is left to ask about.

    Raises:
        SweepError: names the key and what to write instead.
    """
    if not settings.block:
        return
    if not settings.designed:
        raise SweepError(f"`sweep.block` crosses a design with its levels: it needs `sweep.sampler=grid` or "
                         f"`fractional`, got {settings.sampler!r}")
    for k in settings.block:
        if k not in params:
            raise SweepError(f"`sweep.block={k}` names no dimension of this sweep (its dimensions: "
                             f"{', '.join(params) or 'none'}); add one, e.g. \"{k}=choice(a,b)\"")
    if not set(params) - set(settings.block):
        raise SweepError("every dimension is a block (`sweep.block`): nothing is left to ask about")
