"""The runtime reads its own typed rule objects, never the language's syntax tree: no module under
runtime/ imports `opl.lang.ast`, `opl.lang.parser` or `opl.lang.conditions` (the file's conditions are lowered by
`opl.simulation.conditionforms`, the experiment's target judged by `opl.simulation.rules.target_verdict`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
FORBIDDEN = ("opl.lang.ast", "opl.lang.parser", "opl.lang.conditions")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(RUNTIME.rglob("*.py")), ids=lambda p: str(p.relative_to(RUNTIME)))
def test_no_runtime_module_reads_the_syntax_tree(path):
    bad = sorted(name for name in _imports(path) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN))
    assert not bad, f"runtime/{path.relative_to(RUNTIME)} imports {bad}"
