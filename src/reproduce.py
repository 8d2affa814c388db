"""Rerun a logged run from its config and compare.

    python -m src.reproduce RUN_ID [key=value ...] [--allow-changed-data]

Fetches the run's logged `config.yaml`, applies any `key=value` overrides to it,
trains again through the same code path, logs a new run tagged
`reproduces=RUN_ID`, and prints the original and reproduced metrics side by
side. On CPU, with the logged seed and deterministic ops, they match exactly.

Before anything trains, the data's fingerprint (its files and the data config, as the
run logged them) is compared with the run's `data.fingerprint` tag: data that changed
since the run stops it with both fingerprints, unless `--allow-changed-data` asks to
go on with a warning.
"""

from __future__ import annotations

import math
import sys

COMPARED = ("best_epoch", "best_valid_auc", "best_valid_gauc", "best_valid_logloss", "test_auc", "test_gauc",
            "test_logloss")


def compare(original: dict, new: dict) -> tuple[str, bool]:
    lines = [f"{'metric':<20} {'original':>12} {'reproduced':>12} {'difference':>12}"]
    same = True
    for k in COMPARED:
        a, b = original.get(k), new.get(k)
        if a is None or b is None:
            continue
        diff = b - a
        same &= (a == b) or (math.isnan(a) and math.isnan(b))
        lines.append(f"{k:<20} {a:>12.6f} {b:>12.6f} {diff:>+12.2e}")
    lines.append("identical" if same else "not identical")
    return "\n".join(lines), same


ALLOW_CHANGED = "--allow-changed-data"


def changed_data(cfg, tags: dict) -> str | None:
    """What differs between the data a run trained on and the data its logged config reads now: None when the
    fingerprints agree (or the run logged none); else a line naming both.

    Raises:
        DataError: the config's data files cannot be found.
    """
    from src.data.cache import cache_key, source_files

    logged = tags.get("data.fingerprint")
    if not logged:
        return None
    now = cache_key(cfg.data, source_files(cfg.data))
    if now == logged:
        return None
    where = cfg.data.get("path") or "the generated data's config"
    return (f"the data changed since the run: its fingerprint was {logged}, the data at {where} gives {now} "
            f"(a file or the data format differs)")


def main(argv=None) -> int:
    from omegaconf import OmegaConf

    from src.data import DataError
    from src.run.logger import AccessError, FetchError, check_access, fetch_run, resolve_uri, run_metrics
    from src.train import run_cli

    argv = list(sys.argv[1:] if argv is None else argv)
    allow_changed = ALLOW_CHANGED in argv
    argv = [a for a in argv if a != ALLOW_CHANGED]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    run_id, overrides = argv[0], argv[1:]
    uri = next((o.split("=", 1)[1] for o in overrides if o.startswith("tracking.uri=")), None)
    try:
        check_access(resolve_uri(uri))
        cfg, original, tags = fetch_run(run_id, uri)
    except AccessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except FetchError as e:  # unknown run id, unreachable store: say so plainly
        print(f"error: cannot fetch run {run_id}: {e}", file=sys.stderr)
        return 2
    bad = [o for o in overrides if "=" not in o or o.startswith(("+", "~")) or "/" in o.split("=")[0]]
    if bad:
        print(f"error: reproduce takes key=value overrides of the logged config, got {bad}", file=sys.stderr)
        return 2
    try:
        changed = changed_data(cfg, tags)  # the logged data config, before any override: the files decide
    except DataError as e:
        print(f"error: run {run_id}'s data cannot be read: {e}", file=sys.stderr)
        return 2
    if changed and not allow_changed:
        print(f"error: {changed}; nothing was trained. To train on the data as it is now, run again with "
              f"{ALLOW_CHANGED}", file=sys.stderr)
        return 2
    if changed:
        print(f"warning: {changed}; going on ({ALLOW_CHANGED}): the metrics will not be comparable",
              file=sys.stderr)
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    OmegaConf.set_struct(cfg, True)
    results = {}

    def capture(line):
        print(line, flush=True)

    code = run_cli(cfg, [f"reproduce {run_id}", *overrides], tags={"reproduces": run_id}, log=capture,
                   result=results)
    if code:
        return code
    table, _ = compare(original, run_metrics(results["run_id"]))
    print(f"original {run_id} vs reproduced {results['run_id']}:\n{table}")
    return 0


if __name__ == "__main__":
    from src.run.runtime import entry_point

    entry_point()
    sys.exit(main())
