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
