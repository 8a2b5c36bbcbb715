"""No import cycle among the modules of opl/ and runtime/ (issue 15 item 1).

The graph is read statically: every ``import`` and ``from ... import`` statement of every
module, resolved to the module it names (``from opl import ast`` is an edge to ``opl.lang.ast``;
``from opl.lang.lower import Lowerer`` to ``opl.lang.lower``; relative imports against the module's
package). Function-level imports count: a lazy import only hides a cycle until the function
runs, and hiding one was how ``lower`` ↔ ``fields`` ↔ ``templates`` lived. Imports under
``if TYPE_CHECKING:`` do not count: they never run. The implicit import of a module's parent
packages is not an edge (every module would otherwise "import" ``opl/__init__.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"opl": ROOT / "opl", "opl.runtime": ROOT / "runtime"}


def modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under each package folder."""
    found = {}
    for package, folder in packages.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING"):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def _known(name: str, known) -> str | None:
    """The longest prefix of ``name`` that is a module of the graph (None for third-party names)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, known) -> set[str]:
    """The modules of the graph that the module ``name`` (its file ``path``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped = _type_checking_nodes(tree)
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(filter(None, (_known(alias.name, known) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else _known(base, known)
                if target:
                    out.add(target)
    out.discard(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def import_graph(packages: dict[str, Path]) -> dict[str, set[str]]:
    known = modules(packages)
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycle_in_opl_or_runtime():
    graph = import_graph(PACKAGES)
    assert len(graph) > 100 and "opl.runtime.engine.triggers" in graph and "opl.lang.lower" in graph
    assert not cycles(graph), "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles(graph))


def test_the_walker_sees_lazy_relative_and_package_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
                              "def f():\n    from . import b\n")
    (pkg / "b.py").write_text("from pkg.sub import d\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "d.py").write_text("import pkg.a as again\n")
    (pkg / "c.py").write_text("from .a import f\n")
    graph = import_graph({"pkg": pkg})
    assert graph["pkg.a"] == {"pkg.b"}  # the TYPE_CHECKING import of c is no edge
    assert graph["pkg.sub.d"] == {"pkg.a"} and graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.d"]]


# The pipeline, lowest first (README "Layout"): a module may import its own stage and the
# stages before it, never one after it. The tools on top (the facade, the CLI, the servers)
# may import every stage. A module is in the stage of the longest prefix it has here.
STAGES = [
    # located diagnostics, their renderers and the one error family every stage raises
    ("opl.errors", "opl.lang.diagnostics", "opl.lang.render", "opl.lang.codes", "opl.lang.source", "opl.lang.fixes"),
    ("opl.runtime", "opl.runtime.pricing"),
    ("opl.runtime.market",),
    ("opl.runtime.engine",),
    ("opl.runtime.results",),
    ("opl.lang",),
    ("opl.compiler",),
    ("opl.data",),
    ("opl.calibration",),
    ("opl.simulation",),
    ("opl.hypotheses",),
    ("opl.backtesting",),
    ("opl.closedloop",),
    ("opl",),  # the facade and the tools: opl/__init__.py, cli, lsp, editors, schemas, the MCP server
]


def stage_of(module: str) -> int:
    best, rank = "", len(STAGES) - 1
    for i, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, i
    return rank


def test_imports_point_only_down_the_pipeline():
    graph = import_graph(PACKAGES)
    upward = sorted(f"{a} (stage {STAGES[stage_of(a)][0]}) imports {b} (stage {STAGES[stage_of(b)][0]})"
                    for a, targets in graph.items() for b in targets if stage_of(b) > stage_of(a))
    assert not upward, "imports against the pipeline:\n" + "\n".join(upward)


def test_every_stage_exists_and_the_order_is_seen():
    graph = import_graph(PACKAGES)
    for prefixes in STAGES:
        assert any(stage_of(m) == STAGES.index(prefixes) for m in graph), prefixes
    assert stage_of("opl.lang.diagnostics") < stage_of("opl.runtime.engine.triggers") < stage_of("opl.lang.lower")
    assert stage_of("opl.lang.checks.playbook") == STAGES.index(("opl.lang",))
    assert stage_of("opl.runtime.engine.replay") > stage_of("opl.runtime.pricing.black")
    assert stage_of("opl.cli.check") == len(STAGES) - 1
