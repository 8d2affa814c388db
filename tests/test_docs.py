"""The repository explains itself: what the code cites is in the repository."""

import re

from src.config.paths import ROOT

SOURCES = [p for d in ("src", "conf", "tests", "sweeps") for p in (ROOT / d).rglob("*")
           if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts and p.name != "test_docs.py"]
SOURCES.append(ROOT / "README.md")


def test_every_cited_doc_exists():
    cited = {m for p in SOURCES for m in re.findall(r"docs/[\w.-]+\.md", p.read_text())}
    assert cited, "the code cites its docs"
    assert all((ROOT / c).is_file() for c in cited), cited


def test_nothing_cites_documents_outside_the_repository():
    for p in SOURCES:
        text = p.read_text()
        assert "REFERENCE.md" not in text and "seed notebook" not in text, p


# a duration (12 s, 3.3-3.5 s, 4 min, 239 CPU-s) near a comparison, a ratio called faster or slower, or two
# durations side by side: a measurement, which belongs in docs/benchmarks.md and the commit message
DURATION = r"\d[\d.,]*\s?(?:-\s?\d[\d.,]*\s?)?(?:s|ms|min|minutes?|seconds?|hours?|CPU-s)\b"
COMPARE = r"\b(?:against|instead of|vs\.?|versus|faster|slower|longer|shorter|than|saved|saves|measured)\b"
TIMING = re.compile(rf"{DURATION}[^.;]{{0,80}}{COMPARE}|{COMPARE}[^.;]{{0,80}}{DURATION}"
                    rf"|\b\d+(?:\.\d+)?x\b[^.;]{{0,40}}(?:faster|slower)|{DURATION}[^.;]{{0,60}}{DURATION}")


def comments_and_docstrings(path):
    """(line, text) of each comment and docstring of a Python file, or each comment of a YAML file or Makefile."""
    import ast
    import io
    import tokenize

    src = path.read_text()
    if path.suffix != ".py":
        return [(i, line[line.index("#"):]) for i, line in enumerate(src.splitlines(), 1) if "#" in line]
    out = [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(src).readline)
           if t.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append((node.body[0].lineno, doc))
    return out


def test_no_comment_or_docstring_carries_a_timing_comparison():
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "conf").rglob("*.yaml"), ROOT / "Makefile"]
    found = [f"{p.relative_to(ROOT)}:{line}: {m.group(0)}" for p in files for line, text in comments_and_docstrings(p)
             for m in TIMING.finditer(" ".join(text.split()))]
    assert not found, "measurements go to docs/benchmarks.md:\n" + "\n".join(found)


def test_the_timing_check_finds_what_it_looks_for():
    for text in ("took 63 s instead of 27 s", "2.2 s to exit, 0.4 s as the entry points set it",
                 "in 45 s against 94 s for pip", "1.4x faster than the baseline"):
        assert TIMING.search(text), text
    for text in ("heartbeat every `sweep.heartbeat` seconds", "a 2^(4-1) fractional factorial", "within 60 s"):
        assert not TIMING.search(text), text
