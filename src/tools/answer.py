"""A finished sweep's answer, from its MLflow parent run, as a table for a paper or a notebook.

    python -m src.tools.answer RUN_ID [--latex | --markdown | --csv] [--uri URI]

The verdict table (each question's effect, the interval its verdict uses, the verdict, the trainings at
which it was decided) as LaTeX (booktabs), Markdown, or every field as CSV, followed (LaTeX, Markdown) by the
best configuration's confidence set. In Python: `src.sweep.tracking.answer_frame(RUN_ID)` and
`best_frame(RUN_ID)` give pandas DataFrames.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from src.answer import records
    from src.sweep import SweepError
    from src.sweep.tracking import answer_best, answer_questions

    p = argparse.ArgumentParser(prog="python -m src.tools.answer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_id", help="the sweep's parent run (the address the sweep prints at its end names it)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--latex", action="store_const", dest="fmt", const="latex", help="a LaTeX table (booktabs)")
    fmt.add_argument("--markdown", action="store_const", dest="fmt", const="markdown", help="a Markdown table")
    fmt.add_argument("--csv", action="store_const", dest="fmt", const="csv", help="every field, as CSV")
    p.add_argument("--uri", help="the tracking store (default: the project's, mlruns/mlflow.db)")
    a = p.parse_args(argv)
    try:
        questions = answer_questions(a.run_id, a.uri)
        sets = answer_best(a.run_id, a.uri)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.fmt == "latex":
        print(records.latex(questions))
        if sets:
            print("\n" + records.best_latex(sets))
    elif a.fmt == "csv":
        print(records.frame(questions).to_csv(index=False), end="")
    else:
        print(records.markdown(questions))
        if sets:
            print("\n" + records.best_markdown(sets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
