"""The outline of a file (document symbols) and where its names are bound (go-to-definition).

Symbols follow the language's modules (grammar/README.md §4–§10): the header, each
binding with the legs it expands to, one group per field family (market, underlying,
intent, constraints, adjustment, exit, guards, hedging and risk) and the experiment
block with its settings. Spans are the syntax tree's, so the outline of a half-typed
file shows what did parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from opl.lang import ast
from opl.lang import vocabulary as vocab
from opl.lsp.analysis import Analysis
from opl.lang.source import Span

SymbolKind = Literal["file", "module", "namespace", "function", "variable", "property", "struct", "key"]

# Field family → the group the outline shows it in, in reading order.
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("market", vocab.MARKET_FIELDS),
    ("underlying", vocab.UNDERLYING_FIELDS),
    ("intent", vocab.INTENT_FIELDS),
    ("constraints", vocab.CONSTRAINT_FIELDS),
    ("adjustment module", vocab.ADJUST_FIELDS),
    ("exit module", vocab.EXIT_FIELDS),
    ("guards", vocab.GUARD_FIELDS),
    ("hedging and risk", vocab.EXTENSION_FIELDS),
)
_FAMILY = {name: family for family, names in FAMILIES for name in names}


@dataclass
class Symbol:
    """One outline entry; ``selection`` is the name's span, ``span`` the whole statement's."""

    name: str
    kind: SymbolKind
    span: Span
    selection: Span
    detail: str = ""
    children: list["Symbol"] = field(default_factory=list)


def bindings(analysis: Analysis) -> dict[str, ast.Binding]:
    """The names bound in the file (``S = …``, ``wings = …``), first binding of each; fields written
    ``name = value`` (rc6) are not names."""
    module = analysis.result.module
    found: dict[str, ast.Binding] = {}
    for statement in module.statements if module is not None else ():
        if isinstance(statement, ast.Binding) and statement.name not in vocab.ALL_FIELDS:
            found.setdefault(statement.name, statement)
    return found


def _text(analysis: Analysis, span: Span) -> str:
    return " ".join(analysis.text[span.start:span.end].split())


def _binding(analysis: Analysis, statement: ast.Binding) -> Symbol:
    strategy = analysis.result.document.strategy if analysis.result.document else None
    is_strategy = strategy is not None and strategy.name == statement.name
    symbol = Symbol(statement.name, "function", statement.span, statement.name_span,
                    "strategy" if is_strategy else "leg expression")
    if is_strategy:
        for leg in analysis.result.legs:
            symbol.children.append(Symbol(str(leg), "variable", leg.span, leg.span, leg.origin or ""))
    return symbol


def _field(analysis: Analysis, statement: ast.Field | ast.Append | ast.Binding) -> Symbol:
    value = _text(analysis, statement.value.span) if statement.value is not None else ""
    return Symbol(statement.name, "property", statement.span, statement.name_span, value[:60])


def _group(name: str, children: list[Symbol]) -> Symbol:
    span = children[0].span
    for child in children[1:]:
        span = span.merge(child.span)
    return Symbol(name, "namespace", span, children[0].selection, children=children)


def symbols(analysis: Analysis) -> list[Symbol]:
    """The outline, in the order of the file for statements and of `FAMILIES` within groups."""
    module = analysis.result.module
    if module is None:
        return []
    out: list[Symbol] = []
    groups: dict[str, list[Symbol]] = {}
    for statement in module.statements:
        if isinstance(statement, ast.Header):
            out.append(Symbol(f"opl-lang {statement.version or ''}".strip(), "file", statement.span,
                              statement.span))
        elif isinstance(statement, ast.Binding) and statement.name not in vocab.ALL_FIELDS:
            out.append(_binding(analysis, statement))
        elif isinstance(statement, ast.Block):
            block = Symbol(statement.name, "struct", statement.span, statement.name_span)
            for inner in statement.body:
                if isinstance(inner, (ast.Field, ast.Binding)):
                    block.children.append(Symbol(inner.name, "key", inner.span, inner.name_span,
                                                 _text(analysis, inner.value.span)[:60] if inner.value else ""))
            out.append(block)
        elif isinstance(statement, (ast.Field, ast.Append, ast.Binding)):
            groups.setdefault(_FAMILY.get(statement.name, "other fields"), []).append(_field(analysis, statement))
    order = [family for family, _ in FAMILIES] + ["other fields"]
    out.extend(_group(family, groups[family]) for family in order if family in groups)
    return sorted(out, key=lambda s: s.span.start)


def definition(analysis: Analysis, offset: int) -> Span | None:
    """The span of the name bound where the word at ``offset`` is used (None when it is not a bound name)."""
    word = analysis.word_at(offset)
    if word is None:
        return None
    bound = bindings(analysis).get(word[0])
    return None if bound is None else bound.name_span
