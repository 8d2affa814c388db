"""The layout the README promises, checked on the source: one-way imports, one tracking seam,
functions that fit on a screen, named packages, and a package root that installs nothing."""

import ast
import re

import pytest

from src.config.paths import ROOT

SRC = ROOT / "src"
LAYERS = ["tools", "sweep", "run", "models", "layers"]  # each may import those to its right (and config)
TRACKING_MODULES = {"src.run.logger", "src.sweep.tracking", "src.tools.ui"}


def modules() -> dict:
    out = {}
    for f in sorted(SRC.rglob("*.py")):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = ast.parse(f.read_text())
    return out


def imports(tree) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count); a name imported from
    a module of the project counts as that module."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if (SRC.parent / f"{node.module}.{a.name}"
                                                                          .replace(".", "/")).is_dir()
                       or (SRC.parent / (f"{node.module}.{a.name}".replace(".", "/") + ".py")).is_file())
    return out


def package(module: str) -> str:
    """The package under src/ a module belongs to ("(top)" for the loose modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (SRC / parts[1]).is_dir()) else "(top)"


@pytest.fixture(scope="module")
def mods():
    return modules()


def test_imports_point_one_way(mods):
    wrong = []
    for name, tree in mods.items():
        here = package(name)
        for target in imports(tree):
            if not target.startswith("src.") or target.startswith(name):
                continue
            there = package(target)
            if here in LAYERS and there in LAYERS and LAYERS.index(there) < LAYERS.index(here):
                wrong.append(f"{name} imports {target}")
            if here == "config" and there not in ("config", "(top)"):
                wrong.append(f"{name} imports {target} (config imports nothing of the rest)")
    assert not wrong, "\n".join(sorted(wrong))


def test_data_models_and_layers_know_no_tracker_and_a_run_knows_no_sweep(mods):
    banned = {"data": r"(mlflow|optuna|src\.run|src\.sweep|src\.tools)\b",
              "models": r"(mlflow|optuna|src\.run|src\.sweep)\b",
              "layers": r"(mlflow|optuna|src\.run|src\.sweep|src\.models)\b",
              "run": r"(optuna|src\.sweep|src\.tools)\b",
              # the answer's statistics know no tracker, no study and no model: the sweep hands them its cells
              "answer": r"(mlflow|optuna|src\.(run|sweep|tools|models|layers|data))\b"}
    wrong = [f"{name} imports {t}" for name, tree in mods.items() for t in imports(tree)
             if package(name) in banned and re.match(banned[package(name)], t)]
    assert not wrong, "\n".join(wrong)


def test_the_product_imports_no_test_tooling(mods):
    wrong = [f"{name} imports {t}" for name, tree in mods.items() for t in imports(tree) if re.match(r"tests\b", t)]
    assert not wrong, "\n".join(wrong)


def test_mlflow_is_imported_by_the_tracking_modules_alone(mods):
    users = {name for name, tree in mods.items() if any(re.match(r"mlflow\b", t) for t in imports(tree))}
    assert users == TRACKING_MODULES


def test_no_function_needs_scrolling(mods):
    long = [f"{name}.{n.name} ({n.end_lineno - n.lineno + 1} lines)" for name, tree in mods.items()
            for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno - n.lineno + 1 > 60]
    assert not long, long


def test_few_loose_modules_and_a_package_root_without_side_effects(mods):
    loose = sorted(p.name for p in SRC.glob("*.py"))
    assert len(loose) <= 6, loose
    root = mods["src"]
    assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in root.body), \
        "src/__init__.py holds only its docstring"


def test_the_readme_layout_names_every_package():
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    layout = layout[: layout.index("\n## ", 4)]
    packages = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))
    missing = [p for p in packages if f"`src/{p}/`" not in layout]
    assert not missing, missing
    loose = [p.name for p in SRC.glob("*.py") if p.name != "__init__.py"]
    assert all(f"src/{name}" in layout for name in loose), loose


def _attribute_uses(mods, names: set[str], under: str = "src", of=lambda value: True) -> list[str]:
    return [f"{name}:{n.lineno} .{n.attr}" for name, tree in mods.items() if name.startswith(under)
            for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in names and of(n.value)]


def test_what_the_study_remembers_is_read_and_written_through_one_module(mods):
    uses = _attribute_uses(mods, {"user_attrs", "set_user_attr", "system_attrs", "set_system_attr"})
    assert uses and {u.split(":")[0] for u in uses} == {"src.sweep.attrs"}, uses


def test_a_sweep_tells_the_study_once_per_trial(mods):
    tells = _attribute_uses(mods, {"tell"}, "src.sweep", lambda v: not (isinstance(v, ast.Name) and v.id == "outcome"))
    assert len(tells) == 1 and tells[0].startswith("src.sweep.worker:"), tells
