"""The layers keep their import rules (DESIGN.md, "Parts"), read from the source with ast.

Entry points (web, workers, CLI) call use cases and never storage; domain packages import no
Flask, RQ, Redis or SQL; the web layer never imports workers; no two modules or packages
import each other, directly or around a longer circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRY_POINTS = ("service.web", "service.cli", "workers")
DOMAIN = ("service.evidence", "service.timestamping", "service.webhooks")
# Third-party packages a domain package must not import, and our own layers above it.
NOT_IN_DOMAIN = ("flask", "werkzeug", "rq", "redis", "sqlalchemy", "alembic", "service.storage",
                 "service.usecases", "service.web", "service.cli",
                 "service.wiring", "workers")
# Entry-point modules allowed to import a storage module, with the reason: none today.
STORAGE_EXCEPTIONS: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("service", "workers"):
        for path in sorted((REPO / top).rglob("*.py")):
            if "migrations" in path.parts or "templates" in path.parts:
                continue  # Alembic scripts and verify.py (shipped in bundles) are not layered
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module `name` imports, at any depth (function-level imports count too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in MODULES else base


def _is(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


IMPORTS = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def test_the_tree_was_read() -> None:
    assert "service.usecases.register" in MODULES and "workers.jobs" in MODULES
    assert "service.usecases.register" in IMPORTS["service.web.stamps"]


@pytest.mark.parametrize("layer", ENTRY_POINTS)
def test_entry_points_never_touch_storage(layer: str) -> None:
    offending = [
        f"{name} imports {target}"
        for name, targets in IMPORTS.items() if _is(name, layer)
        for target in targets
        if _is(target, "service.storage") and STORAGE_EXCEPTIONS.get(name) != target
    ]
    assert offending == []


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_packages_import_no_framework_and_no_layer_above(package: str) -> None:
    offending = [
        f"{name} imports {target}"
        for name, targets in IMPORTS.items() if _is(name, package)
        for target in targets if any(_is(target, banned) for banned in NOT_IN_DOMAIN)
    ]
    assert offending == []


def test_web_imports_nothing_from_workers() -> None:
    assert [f"{name} imports {t}" for name, targets in IMPORTS.items()
            if _is(name, "service.web") for t in targets if _is(t, "workers")] == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_of(name: str) -> str:
    """Top modules (service.errors) stand alone; otherwise the sub-package (service.web)."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "service" else parts[0]


def test_no_import_circles_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for name, targets in IMPORTS.items():
        for target in targets:
            if target in MODULES and _package_of(target) != _package_of(name):
                graph.setdefault(_package_of(name), set()).add(_package_of(target))
    assert _cycles(graph) == []


def test_no_import_circles_between_modules() -> None:
    graph = {name: {t for t in targets if t in MODULES and t != name}
             for name, targets in IMPORTS.items()}
    # A package's __init__ that re-exports its own modules is not a circle of code.
    for name in graph:
        graph[name] = {t for t in graph[name] if not (MODULES[t].name == "__init__.py"
                                                      and _is(name, t))}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
