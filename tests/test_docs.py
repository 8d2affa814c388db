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


def code_lines(page):
    """The lines of the code blocks (fenced or indented) of a page, continuation lines joined and trailing
    comments dropped, in order."""
    out = []
    fenced, lines = False, page.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or line.startswith("    "):
            text = line.strip()
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            out.append(re.sub(r"\s+#.*$", "", text))
        i += 1
    return out


def shown_commands():
    """(page, command) of every `python -m ...` and `make ...` line in the code blocks of the README and docs/,
    environment assignments and `.venv/bin/` dropped."""
    import shlex

    out = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for text in code_lines(page):
            try:
                words = shlex.split(text.replace(".venv/bin/", ""))
            except ValueError:
                words = []
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words[:2] == ["python", "-m"] or (words[:1] == ["make"] and len(words) > 1):
                out.append((page.name, words))
    return out


PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{2,}\b|\.\.\.|/path/to|<")


def test_every_command_shown_in_the_readme_and_docs_names_what_exists_and_composes():
    """A `make` verb is in the Makefile; a `python -m` module exists; the overrides of a train, describe or
    sweep command compose and pass the schema (a sweep's every dimension, as the sweep checks it before its
    first trial). Commands with placeholders (RUN_ID, NAME, ...) are checked for their module only."""
    import importlib.util

    from src.config import compose
    from src.config.validate import validate
    from src.sweep import definition, space

    commands = shown_commands()
    assert len(commands) > 20, commands
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    checked = 0
    for page, words in commands:
        what = f"{page}: {' '.join(words)}"
        if words[0] == "make":
            assert words[1].split("=")[0] in targets or "=" in words[1], what
            continue
        module = words[2]
        assert importlib.util.find_spec(module) is not None, what
        args = [w for w in words[3:] if not w.startswith("-")]
        if module not in ("src.train", "src.sweep", "src.data.describe") or PLACEHOLDER.search(" ".join(words)):
            continue
        if module == "src.sweep":
            d = definition.load(args)
            space.check(list(d.base), d.params, compose, validate)
        else:
            validate(compose(args))
        checked += 1
    assert checked >= 8, checked


def test_the_readme_is_short_and_opens_with_what_you_run_and_what_you_get():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    assert any("make sweep" in line for line in lines[:30])
    image = re.search(r"!\[[^\]]*\]\((docs/images/[\w.-]+\.png)\)", "\n".join(lines)).group(1)
    assert (ROOT / image).is_file() and (ROOT / image).stat().st_size > 1000


def test_the_sweep_files_describe_the_procedure_the_answer_uses():
    """The shipped sweep files' comments name no error-control procedure the answer no longer uses."""
    from src.config.paths import ROOT

    for path in sorted((ROOT / "sweeps").glob("*.yaml")):
        text = path.read_text()
        for stale in ("O'Brien", "information fraction", "spending"):
            assert stale not in text, f"{path.name} still describes {stale!r}"
        if "\n  plan:" in text:  # a planned boundary (src/answer/boundary.py) is said where it is used
            assert "group-sequential" in text and "anytime-valid" in text, path.name
