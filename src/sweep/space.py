"""The sweep grammar -> Optuna distributions, and sampling a trial's overrides.

Search dimensions use Hydra's sweep syntax:

    choice(a, b, c)                 categorical
    range(start, stop[, step])      the values start, start + step, ... below stop (stop excluded,
                                    as in Hydra); sampled as a stepped int (or float) distribution
    interval(low, high)             a float in [low, high] (Hydra parses the bounds as floats)
    tag(int, interval(low, high))   an int in [low, high], both ends included
    tag(log, interval(low, high))   log-uniform; with `int` too: a log-uniform int

A dimension whose key is a config group (`model`, `model/activation`) picks a
config file; the others set values (`model.mlp.depth`). A dimension is sampled
only where it applies: `model/evolution` and `model.aux_loss.alpha` exist only
in DIEN's config, so a trial that picked `model=din` does not sample them.
"""

from __future__ import annotations

import difflib
import itertools
import json
from dataclasses import dataclass

from omegaconf import OmegaConf

from src.sweep import SweepError

__all__ = ["Param", "SweepError", "parse", "merge", "sample", "check", "signature"]
MISSING = object()


@dataclass(frozen=True)
class Param:
    key: str
    kind: str  # "categorical", "int", "float"
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    expr: str = ""

    @property
    def is_group(self) -> bool:
        return "." not in self.key

    @property
    def depth(self) -> int:
        return self.key.count("/")

    def distribution(self):
        import optuna.distributions as d

        if self.kind == "categorical":
            return d.CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial):
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def values(self) -> list:
        """All values of a discrete dimension (grid sampling)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.kind == "float" and self.step is not None:
            n = int(round((self.high - self.low) / self.step))
            return [round(self.low + i * self.step, 12) for i in range(n + 1)]
        raise SweepError(f"grid sampling needs discrete dimensions; `{self.key}={self.expr}` is continuous")

    def extremes(self) -> list:
        return self.values() if self.kind == "categorical" else [self.low, self.high]

    def override(self, value) -> str:
        return f"{self.key}={format_value(value)}"

    def signature(self) -> dict:
        return {"key": self.key, "kind": self.kind, "choices": list(self.choices), "low": self.low, "high": self.high,
                "step": self.step, "log": self.log}


def format_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _param_from_sweep(key: str, sweep, expr: str) -> Param:
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    tags = set(getattr(sweep, "tags", set()) or set())
    unknown = tags - {"int", "log"}
    if unknown:
        raise SweepError(f"`{key}={expr}`: unknown tag(s) {sorted(unknown)}; known tags: int, log")
    if isinstance(sweep, ChoiceSweep):
        if not sweep.list:
            raise SweepError(f"`{key}={expr}`: empty choice")
        if tags:
            raise SweepError(f"`{key}={expr}`: tags apply to interval() only")
        choices = tuple(sweep.list)
        if any(isinstance(c, list | dict) for c in choices):
            choices = tuple(json.dumps(c) if isinstance(c, list | dict) else c for c in choices)
        if len(set(map(repr, choices))) != len(choices):
            raise SweepError(f"`{key}={expr}`: a choice is listed twice")
        return Param(key, "categorical", choices=choices, expr=expr)
    if isinstance(sweep, RangeSweep):
        start, stop, step = sweep.start, sweep.stop, sweep.step
        if step == 0:
            raise SweepError(f"`{key}={expr}`: range step must not be 0")
        if step < 0:
            raise SweepError(f"`{key}={expr}`: only increasing ranges are supported")
        n = 0
        while start + n * step < stop - 1e-12 * max(1, abs(stop)):
            n += 1
        if n == 0:
            raise SweepError(f"`{key}={expr}`: empty range (Hydra's range excludes its end: range(a, b) "
                             f"is a, a+step, ... < b)")
        last = start + (n - 1) * step
        if all(isinstance(v, int) for v in (start, stop, step)):
            return Param(key, "int", low=start, high=last, step=step, expr=expr)
        return Param(key, "float", low=float(start), high=float(round(last, 12)), step=float(step), expr=expr)
    if isinstance(sweep, IntervalSweep):
        low, high = sweep.start, sweep.end
        if low > high:
            raise SweepError(f"`{key}={expr}`: inverted interval ({low} > {high})")
        if "log" in tags and low <= 0:
            raise SweepError(f"`{key}={expr}`: a log interval needs a positive lower bound")
        if "int" in tags:
            if low != int(low) or high != int(high):
                raise SweepError(f"`{key}={expr}`: tag(int, ...) needs whole-number bounds")
            return Param(key, "int", low=int(low), high=int(high), step=1, log="log" in tags, expr=expr)
        if low == high:
            raise SweepError(f"`{key}={expr}`: empty interval")
        return Param(key, "float", low=float(low), high=float(high), log="log" in tags, expr=expr)
    raise SweepError(f"`{key}={expr}`: unsupported sweep expression (use choice, range or interval)")


def parse(items: list[str]) -> tuple[list[str], dict[str, Param], dict]:
    """Splits overrides into (plain overrides, search dimensions by key, `sweep.*` settings)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    base, params, settings = [], {}, {}
    for item in items:
        try:
            o = parser.parse_override(item)
        except HydraException as e:
            raise SweepError(f"cannot parse override `{item}`: {e}") from None
        key = o.key_or_group
        if key.startswith("sweep."):
            if o.is_sweep_override():
                raise SweepError(f"`{item}`: study settings cannot be swept")
            settings[key[len("sweep."):]] = o.value()
            continue
        expr = item.split("=", 1)[1] if "=" in item else ""
        if o.is_sweep_override():
            if o.is_add() or o.is_delete():
                raise SweepError(f"`{item}`: a search dimension cannot add (+) or delete (~) a key")
            params[key] = _param_from_sweep(key, o.value(), expr)
        else:
            base.append(item)
    return base, params, settings


def merge(file_part, cli_part):
    """CLI over file: a CLI search dimension replaces the file's; a CLI plain override of a key fixes
    it; `~key` on the CLI drops the file's dimension `key`."""
    fbase, fparams, fsettings = file_part
    cbase, cparams, csettings = cli_part
    dropped = {o[1:].split("=", 1)[0] for o in cbase if o.startswith("~") and o[1:].split("=", 1)[0] in fparams}
    cbase = [o for o in cbase if not (o.startswith("~") and o[1:].split("=", 1)[0] in dropped)]
    fparams = {k: v for k, v in fparams.items() if k not in dropped}
    fixed = {o.split("=", 1)[0].lstrip("+~") for o in cbase}
    params = {k: v for k, v in fparams.items() if k not in fixed}
    params.update(cparams)
    base = [o for o in fbase if o.split("=", 1)[0].lstrip("+~") not in fixed | set(cparams)] + cbase
    return base, params, {**fsettings, **csettings}


def ordered(params: dict[str, Param]) -> list[Param]:
    """Config groups first (outer before inner), then values, each in key order."""
    return sorted(params.values(), key=lambda p: (not p.is_group, p.depth, p.key))


def applies(param: Param, cfg) -> bool:
    """Whether a dimension means something in a composed config."""
    if param.is_group:
        if param.depth == 0:
            return True
        return OmegaConf.select(cfg, param.key.replace("/", "."), default=MISSING) is not MISSING
    return OmegaConf.select(cfg, param.key, default=MISSING) is not MISSING


def sample(trial, base: list[str], params: dict[str, Param], compose) -> list[str]:
    """Suggests each applicable dimension; returns the trial's overrides (base + sampled)."""
    plist = ordered(params)
    chosen = []
    top = [p for p in plist if p.is_group and p.depth == 0]
    for p in top:
        chosen.append(p.override(p.suggest(trial)))
    cfg = compose(base + chosen)
    for p in plist:
        if p in top:
            continue
        if applies(p, cfg):
            chosen.append(p.override(p.suggest(trial)))
    return base + chosen


def structural_combinations(params: dict[str, Param]) -> list[list[str]]:
    """Every combination of the top-level group choices (model=..., data=...)."""
    top = [p for p in ordered(params) if p.is_group and p.depth == 0]
    if not top:
        return [[]]
    return [[p.override(v) for p, v in zip(top, combo)] for combo in itertools.product(*[p.values() for p in top])]


def check(base: list[str], params: dict[str, Param], compose, validate) -> None:
    """Composes what the sweep will compose, before the first trial: unknown keys, bad options and
    values of the wrong type fail here, naming the dimension."""
    from hydra.errors import HydraException

    def try_compose(overrides, what):
        try:
            cfg = compose(overrides)
            validate(cfg)
            return cfg
        except (HydraException, ValueError) as e:
            raise SweepError(f"{what}: {e}") from None

    combos = structural_combinations(params)
    cfgs = [try_compose(base + c, "the sweep's base config" + (f" with {' '.join(c)}" if c else "")) for c in combos]
    for p in ordered(params):
        if p.is_group and p.depth == 0:
            continue
        where = [(c, cfg) for c, cfg in zip(combos, cfgs) if applies(p, cfg)]
        if not where:
            keys = sorted(_keys(cfgs[0]))
            near = difflib.get_close_matches(p.key, keys, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            ctx = f" (for {', '.join(' '.join(c) for c in combos)})" if combos != [[]] else ""
            raise SweepError(f"search dimension `{p.key}` is not in the config{ctx}{hint}")
        combo, _ = where[0]
        for v in p.extremes():
            try_compose(base + combo + [p.override(v)], f"search dimension `{p.key}={p.expr}` at {format_value(v)}")


def _keys(cfg, prefix=""):
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        yield key
        if OmegaConf.is_dict(v):
            yield from _keys(v, key + ".")


def signature(base: list[str], params: dict[str, Param]) -> str:
    """What makes two sweeps the same study: the fixed overrides and the dimensions."""
    return json.dumps({"fixed": sorted(base), "space": [p.signature() for p in ordered(params)]}, sort_keys=True)
