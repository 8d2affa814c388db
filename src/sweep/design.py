"""Designs: which configurations a designed sweep trains (every one, or a two-level fraction), and
when a design has run.

    grid         every distinct configuration of a discrete space, a dimension expanded only
                 where it applies
    fractional   a 2^(k-p) design of resolution IV or better over k two-level dimensions
"""

from __future__ import annotations

import itertools

from src.answer import blocks
from src.answer.effects import key as config_key
from src.sweep import SweepError, attrs
from src.sweep import study as studies
from src.sweep.space import Param, applies, format_value, ordered, structural_combinations


def grid(base: list[str], params: dict[str, Param], compose) -> list[dict]:
    """All distinct configurations of a discrete space, expanding a dimension only where it applies."""
    out = []
    for combo in structural_combinations(params):
        cfg = compose(base + combo)
        top = dict(zip([p.key for p in ordered(params) if p.is_group and p.depth == 0],
                       [c.split("=", 1)[1] for c in combo]))
        rest = [p for p in ordered(params) if not (p.is_group and p.depth == 0) and applies(p, cfg)]
        tops = {p.key: v for p in ordered(params) if p.is_group and p.depth == 0
                for v in p.values() if format_value(v) == top[p.key]}
        for values in itertools.product(*[p.values() for p in rest]):
            out.append({**tops, **{p.key: v for p, v in zip(rest, values)}})
    return out


# Generators of two-level fractional factorials of resolution IV or better (Box, Hunter & Hunter,
# "Statistics for Experimenters", 2nd ed., table 6.22): k factors in 2^(k-p) runs. Letters are the
# base factors of the full 2^(k-p) factorial; each generator defines one more factor as their product.
GENERATORS = {
    4: ["ABC"],                              # 2^(4-1)_IV, 8 configurations
    5: ["ABCD"],                             # 2^(5-1)_V, 16
    6: ["ABC", "BCD"],                       # 2^(6-2)_IV, 16
    7: ["ABC", "BCD", "ACD"],                # 2^(7-3)_IV, 16
    8: ["BCD", "ACD", "ABC", "ABD"],         # 2^(8-4)_IV, 16
    9: ["ABCD", "ABCE", "ABDE", "ACDE"],     # 2^(9-4)_IV, 32
    10: ["ABCD", "ABCE", "ABDE", "ACDE", "BCDE"],  # 2^(10-5)_IV, 32
}


def design_columns(k: int) -> tuple[list[str], list[list[int]]]:
    """The defining words and the -1/+1 runs of the smallest resolution-IV (or better) design for k
    two-level factors; a full factorial for k <= 3 (a half fraction of 3 factors would be resolution III)."""
    if k > max(GENERATORS):
        raise SweepError(f"a fractional design supports at most {max(GENERATORS)} two-level factors, got {k}")
    gens = GENERATORS.get(k, [])
    base = k - len(gens)
    letters = "ABCDEFGHIJ"[:base]
    runs = []
    for bits in itertools.product((-1, 1), repeat=base):
        row = list(bits)
        for g in gens:
            v = 1
            for ch in g:
                v *= bits[letters.index(ch)]
            row.append(v)
        runs.append(row)
    words = [g + "ABCDEFGHIJKLMNOP"[base + i] for i, g in enumerate(gens)]
    return words, runs


def resolution(words: list[str]) -> int | None:
    """The resolution of a design with these generator words: the shortest word of the defining
    relation (all products of the generators); None for a full factorial."""
    if not words:
        return None
    shortest = None
    for r in range(1, len(words) + 1):
        for combo in itertools.combinations(words, r):
            letters = set()
            for w in combo:
                letters ^= set(w)
            shortest = len(letters) if shortest is None else min(shortest, len(letters))
    return shortest


def fractional(params: dict[str, Param]) -> list[dict]:
    """The configurations of a 2^(k-p) design (resolution IV or better) over k two-level dimensions:
    main effects are not confounded with two-factor interactions. Level -1 is a dimension's first value."""
    plist = ordered(params)
    for p in plist:
        try:
            n = len(p.values())
        except SweepError:
            n = 0
        if n != 2:
            raise SweepError(f"a fractional design needs two-level dimensions; `{p.key}={p.expr}` has "
                             f"{n or 'continuous'} levels (write choice(a, b))")
    _, runs = design_columns(len(plist))
    return [{p.key: p.values()[0 if x < 0 else 1] for p, x in zip(plist, row)} for row in runs]


def points(settings, base: list[str], params: dict[str, Param], compose) -> list[dict]:
    """The configurations a designed sweep queues: every one (grid), or a 2^(k-p) fraction crossed with every
    level of the blocks (`sweep.block`, never part of the fraction); none when sampled."""
    if settings.sampler == "grid":
        return grid(base, params, compose)
    if settings.sampler == "fractional":
        block = getattr(settings, "block", ())
        asked = fractional({k: p for k, p in params.items() if k not in block})
        levels = [[(k, v) for v in params[k].values()] for k in block]
        return [{**point, **dict(combo)} for combo in itertools.product(*levels) for point in asked]
    return []


def cells(points: list[dict], seeds, block=(), ended: dict | None = None,
          dropped: dict | None = None) -> list[tuple[dict, int]]:
    """The (configuration, seed) cells of a design, seed by seed: a block of seeds covers the whole design
    before the next one starts, so the design stays balanced however far it got. A block of the design
    (`sweep.block`) named in `ended` (its name -> a count n) holds only the first n seeds: its questions were
    all decided then. A configuration in `dropped` (its `race_key` -> n) holds only its first n seeds: racing
    (sweep.until=best) showed it worse than another."""
    ended, dropped = ended or {}, dropped or {}
    return [(p, seed) for i, seed in enumerate(seeds) for p in points
            if i < min(ended.get(block_of(p, block), len(seeds)), dropped.get(race_key(p, block), len(seeds)))]


def race_key(point: dict, block=(), levels: dict | None = None, block_name: str | None = None) -> str:
    """A configuration as racing names it: its block and its levels within the block (the best set's members,
    src/answer/best.py, carry the same: `levels` and `block_name`)."""
    if levels is None:
        levels = {k: v for k, v in point.items() if k not in block}
        block_name = block_of(point, block)
    return f"{block_name or ''}|{config_key(levels)}"


def block_of(point: dict, block) -> str:
    """The name of the block (`sweep.block`) a configuration is in, as the answer names it; "" without blocks."""
    return blocks.name({k: point.get(k) for k in block}) if block else ""


def exhausted(design_cells: int, target: int, trials) -> bool:
    """A designed sweep samples nothing outside its design unless its target (of cells: a sampled sweep's race
    counts its search apart) asks for more; once every cell was tried, the workers stop."""
    from optuna.trial import TrialState

    if not design_cells or target > design_cells:
        return False
    asked = [t for t in trials if not attrs.SURPLUS.get(t) and attrs.SEED.has(t)]  # the cells, not a search's
    waiting = any(t.state == TrialState.WAITING for t in asked)
    tried = {studies.cell_key(t) for t in asked if t.state != TrialState.WAITING}
    return not waiting and len(tried) >= design_cells
