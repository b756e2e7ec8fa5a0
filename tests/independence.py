"""Generated truth must not be built from the agent's own model: one check for every generator."""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def assert_imports_nothing_from_the_agent(source: Path) -> None:
    """``source`` imports only the standard library and numpy, and loads nothing by name.

    A simulator or corpus whose truth came from ``agent/`` (its catalog, playbook or
    priors) would prove only that the agent recovers its own assumptions.
    """
    tree = ast.parse(source.read_text())
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            modules.add((node.module or "").split(".")[0])
    assert not modules & {"agent", "protocols", "scripts", "tests"}
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    assert modules <= allowed, modules - allowed
    assert "importlib" not in modules
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & {"__import__", "exec", "eval"}
