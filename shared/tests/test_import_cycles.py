"""No import cycles, in the shared package or in any service (its app and its `config`).

Two modules that import each other are one unit in disguise, and which of them loads first decides
whether the other finds its names. An import inside a function counts as much as one at the top: it
only postpones the cycle. The graph is read from the source with `ast`, nothing is imported; imports
under `if TYPE_CHECKING:` are left out, as they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.paths import REPO_ROOT

SERVICES = sorted(path.parent.name for path in (REPO_ROOT / "services").glob("*/manage.py"))


def module_files(root: Path, packages: list[str]) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of `packages` (directories under `root`)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runs(node: ast.AST) -> bool:
    """False for an `if TYPE_CHECKING:` block (or `typing.TYPE_CHECKING`)."""
    return not (isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"))


def _imported_names(module: str, path: Path):
    """Every dotted name `module` imports; `from a import b` yields `a.b` (a module or not) and `a`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    pending = [ast.parse(path.read_text())]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, node.module] if node.module else base)
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)
        pending.extend(child for child in ast.iter_child_nodes(node) if _runs(child))


def import_graph(root: Path, packages: list[str]) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports. `from a import b` is an edge to the package `a`
    (importing runs its `__init__`) and, when `b` is a module, to `a.b` as well."""
    modules = module_files(root, packages)
    return {
        module: {name for name in _imported_names(module, path) if name in modules and name != module}
        for module, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (`[a, b, a]`), or None. Depth first, in sorted order, so stable."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph[module]):
            if cycle := visit(imported):
                return cycle
        path.pop()
        done.add(module)
        return None

    return next((cycle for module in sorted(graph) if (cycle := visit(module))), None)


@pytest.mark.parametrize(
    ("root", "packages"),
    [(REPO_ROOT / "shared", ["shared"])]
    + [(REPO_ROOT / "services" / name, ["config", name]) for name in SERVICES],
    ids=["shared", *SERVICES],
)
def test_no_import_cycle(root, packages):
    graph = import_graph(root, packages)
    assert len(graph) > 10, f"too few modules found under {root}: is the layout the one this test knows?"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_graph_sees_imports_inside_functions_and_finds_a_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "services.py").write_text("def queue():\n    from pkg import tasks\n")
    (package / "tasks.py").write_text("from pkg import services\n")
    (package / "typing_only.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import services\n"
    )
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.tasks"] == {"pkg", "pkg.services"}
    assert graph["pkg.typing_only"] == set()
    assert find_cycle(graph) == ["pkg.services", "pkg.tasks", "pkg.services"]
