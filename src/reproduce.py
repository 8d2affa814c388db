"""Rerun a logged run from its config and compare.

    python -m src.reproduce RUN_ID [key=value ...]

Fetches the run's logged `config.yaml`, applies any `key=value` overrides to it,
trains again through the same code path, logs a new run tagged
`reproduces=RUN_ID`, and prints the original and reproduced metrics side by
side. On CPU, with the logged seed and deterministic ops, they match exactly.
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


def main(argv=None) -> int:
    from omegaconf import OmegaConf

    from src.run.logger import AccessError, FetchError, check_access, fetch_run, resolve_uri, run_metrics
    from src.train import run_cli

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    run_id, overrides = argv[0], argv[1:]
    uri = next((o.split("=", 1)[1] for o in overrides if o.startswith("tracking.uri=")), None)
    try:
        check_access(resolve_uri(uri))
        cfg, original = fetch_run(run_id, uri)
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
