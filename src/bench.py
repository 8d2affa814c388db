"""Benchmarks: `python -m src.bench [what] ...` (the commands are in src/tools/bench.py)."""

import sys

if __name__ == "__main__":
    from src.run.runtime import entry_point
    from src.tools.bench import main

    entry_point()
    sys.exit(0 if main() is not None else 1)
