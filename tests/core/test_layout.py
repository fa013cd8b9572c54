"""The package layout is the architecture: each package of ``wmkit/`` imports only the packages
below it, no modules import each other in a circle, and nothing but the package's face sits
at the top level. The graph is read from the source with ``ast`` (imports at module level and
inside functions alike), so the check needs nothing imported.

``python tests/core/test_layout.py`` prints the figures that docs/index.md opens with.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "wmkit"

# The one table of floors: a package may import its own modules and those of lower floors.
FLOORS: dict[str, int] = {
    "core": 0,
    "nn": 1,
    "storage": 2,
    "rollouts": 3,
    "dreams": 4,
    "record": 5,
    "pipelines": 6,
    "results": 7,
    "devkit": 8,
    "cli": 9,
}
# The package's face: ``import wmkit`` (the hook marker, the 0.1 paths) and ``python -m wmkit``.
FACE = {"__init__.py", "__main__.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the wmkit modules it imports, anywhere in its body."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
                targets = [t for t in targets if t in mods] or [base]
            else:
                continue
            for target in targets:
                if target == "wmkit" or target.startswith("wmkit."):
                    resolved = resolve(target)
                    if resolved and resolved != name:
                        found.add(resolved)
        graph[name] = found
    return graph


def package_of(module: str) -> str | None:
    """``wmkit.storage.store`` -> ``storage``; the face (``wmkit``) is None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOORS) else None


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a package into one of a higher floor."""
    bad = []
    for src, targets in sorted(graph.items()):
        if src == "wmkit.__main__":
            continue  # ``python -m wmkit`` is the command: it may reach anything
        floor = FLOORS.get(package_of(src) or "core", 0)
        for dst in sorted(targets):
            package = package_of(dst)
            if package is not None and FLOORS[package] > floor:
                bad.append(f"{src} ({package_of(src) or 'face'}) imports {dst} ({package})")
    return bad


def figures() -> dict[str, int]:
    mods = modules()
    graph = imports(mods)
    return {
        "modules": len(mods),
        "packages": len(FLOORS),
        "imports": sum(len(t) for t in graph.values()),
        "floors": len(set(FLOORS.values())),
        "circles": len(circles(graph)),
    }


def test_no_import_circles():
    assert circles(imports(modules())) == []


def test_no_package_imports_one_above_it():
    assert upward(imports(modules())) == []


def test_only_the_face_at_the_top_level():
    top = {p.name for p in PACKAGE.iterdir() if p.suffix == ".py"}
    assert top == FACE
    folders = {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))
    }  # a new package needs a floor in the table
    assert folders == set(FLOORS)


def test_the_check_catches_a_circle_and_an_upward_import():
    graph = {"wmkit.core.a": {"wmkit.storage.b"}, "wmkit.storage.b": {"wmkit.core.a"}}
    assert circles(graph) == [["wmkit.core.a", "wmkit.storage.b"]]
    assert upward(graph) == ["wmkit.core.a (core) imports wmkit.storage.b (storage)"]


def test_docs_index_opens_with_the_package_map():
    text = (ROOT / "docs" / "index.md").read_text()
    head = text.split("\n## ")[1]
    assert head.startswith("The package map")
    for package in FLOORS:
        assert f"`{package}/`" in head, f"docs/index.md: no line for {package}/ in the map"
    assert "circles: 0" in head


if __name__ == "__main__":
    print(", ".join(f"{k}: {v}" for k, v in figures().items()))
    for line in circles(imports(modules())) + upward(imports(modules())):
        print(line)
