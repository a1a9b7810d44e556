"""The package's layout: subpackages that show the book's layers, no import circles, short modules.

Imports are read from the source (``ast``), those inside functions included: Python does
not see a circle there, but a reader does.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

import ift_tutorial
from ift_tutorial.paths import CONFIGS_DIR, DATA_DIR, PROJECT_ROOT, shipped_dir

PACKAGE = Path(ift_tutorial.__file__).parent
ROOT = PACKAGE.parent
MAX_LINES = 450
SUBPACKAGES = {"book", "evaluation", "inference", "instructions", "planning", "rehearsal",
               "scratch", "tinyworld", "training"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in the file."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = ".".join(base[: len(base) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module or ""
            targets = [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from .a import b`: b may be a name in a
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_the_subpackages_are_the_documented_ones_and_the_wheel_lists_them_all():
    on_disk = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert on_disk == SUBPACKAGES
    nested = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    assert set(listed) == nested | {"ift_tutorial.configs", "ift_tutorial.data"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for sub in SUBPACKAGES:  # the README's layout table and the package docstring name each
        assert f"`{sub}/`" in readme and f"``{sub}``" in ift_tutorial.__doc__, sub


def test_no_import_circles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                circles.append(sorted([v, *comp]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert circles == []


def test_no_module_is_long():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_pipeline_never_imports_the_teaching_code():
    users = {m for m, deps in _graph().items() if any(d.startswith("ift_tutorial.scratch") for d in deps)}
    assert {m for m in users if not m.startswith(("ift_tutorial.scratch", "ift_tutorial.book"))} == set()


def test_only_the_edge_knows_about_rehearsal():
    """Rehearsal is applied where a run's config is made; nothing below asks for it."""
    users = {m for m, deps in _graph().items() if "ift_tutorial.rehearsal.preset" in deps}
    assert users <= {"ift_tutorial.config", "ift_tutorial.cli", "ift_tutorial.rehearsal"}
    assert "ift_tutorial.config" in users


@pytest.mark.skipif(PROJECT_ROOT is None, reason="an installed wheel has no checkout")
def test_data_and_configs_sit_at_the_root_of_the_checkout():
    assert DATA_DIR == shipped_dir("data") == PROJECT_ROOT / "data"
    assert CONFIGS_DIR == shipped_dir("configs") == PROJECT_ROOT / "configs"
    assert not (PACKAGE / "data").exists() and not (PACKAGE / "configs").exists()
    # The presets name data as ../data/...: siblings in the checkout and in the wheel alike.
    assert (CONFIGS_DIR / "../data/tiny-llama/config.json").resolve().is_file()
    with pytest.raises(ValueError, match="ships 'data' and 'configs'"):
        shipped_dir("tests")
