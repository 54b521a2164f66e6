"""The package's shape: modules import each other without cycles, and every error hookline
defines derives from HooklineError (so callers can catch one root and check `retryable`)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

from fastapi import HTTPException

import hookline
from hookline.errors import HooklineError

PACKAGE = Path(hookline.__file__).parent


def _module_names() -> list[str]:
    return [info.name for info in pkgutil.walk_packages([str(PACKAGE)], "hookline.")]


def _imports_at_load(name: str, modules: set[str]) -> set[str]:
    """The hookline modules (of `modules`) that `name` imports when it is loaded or when its
    functions run, leaving out imports for type checking only."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node):
            if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("hookline"):
                module = child.module or ""
                # `from package import submodule` loads the submodule, as `package.submodule`
                # would; a package's own names come from its __init__.
                for alias in child.names:
                    submodule = f"{module}.{alias.name}"
                    found.add(submodule if submodule in modules else module)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("hookline"))
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, or None."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (cycle := visit(imported, [*path, imported])):
                return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_no_module_imports_itself_back() -> None:
    names = set(_module_names())
    graph = {name: (_imports_at_load(name, names) & names) - {name} for name in names}

    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_every_error_hookline_defines_derives_from_hookline_error() -> None:
    strays = [
        f"{name}.{cls.__name__}"
        for name in _module_names()
        for cls in vars(importlib.import_module(name)).values()
        if inspect.isclass(cls)
        and issubclass(cls, Exception)
        and cls.__module__ == name
        and not issubclass(cls, (HooklineError, HTTPException))
    ]

    assert strays == []


def test_no_assert_in_the_package() -> None:
    # `python -O` strips asserts: nothing the package does may depend on one.
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]

    assert found == []
