"""`opl fmt`: print a file in the canonical form of grammar/README.md ("Canonical form").

The formatter prints the syntax tree, never the lowered document, so it only needs a
file that parses: a file with syntax errors is returned unchanged with its
diagnostics. Literals (numbers, percentages, dates, durations, strings) are printed
exactly as written, so no float is ever re-rendered; everything between them is
canonical. Formatting is idempotent and preserves the syntax tree (both tested over
every shipped file and over generated files).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opl import ast
from opl.diagnostics import Diagnostic
from opl.parser import parse
from opl.vocabulary import ALL_FIELDS

MAX_WIDTH = 100
INDENT = "  "
LIST_INDENT = "    "


@dataclass
class FormatResult:
    text: str
    changed: bool
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.diagnostics


class _Printer:
    def __init__(self, source: str) -> None:
        self.source = source

    def slice(self, node) -> str:
        return self.source[node.span.start:node.span.end]

    def between(self, left, right) -> str:
        """The operator as written between two operands (``and`` or ``&&``; ``not`` or ``!``)."""
        return self.source[left.span.end:right.span.start].strip()

    def value(self, node) -> str:  # noqa: C901 - one case per node type reads best
        if isinstance(node, (ast.Number, ast.Percent, ast.Duration, ast.Date, ast.String, ast.Factor, ast.VolDir,
                             ast.UnitPlaceholder)):
            return self.slice(node).strip()
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Kwarg):
            return f"{node.name}={self.value(node.value)}"
        if isinstance(node, ast.Call):
            return f"{node.func}({', '.join(self.value(a) for a in node.args)})"
        if isinstance(node, ast.Braced):
            return f"{node.name}{{{self.value(node.value)}}}"
        if isinstance(node, ast.ListValue):
            return "[ " + ", ".join(self.value(i) for i in node.items) + " ]" if node.items else "[]"
        if isinstance(node, ast.Paren):
            return f"({self.value(node.value)})"
        if isinstance(node, ast.Unary):
            return f"{node.op}{self.value(node.operand)}"
        if isinstance(node, ast.Polarity):
            return f"{node.side} {self.value(node.operand)}"
        if isinstance(node, ast.Binary):
            if node.op == "×" or node.op == "/":
                return f"{self.value(node.left)}{node.op}{self.value(node.right)}"
            if isinstance(node.left, ast.Name) and isinstance(node.right, (ast.Number, ast.Percent)):
                return f"{node.left.id}{node.op}{self.value(node.right)}"  # an anchored strike: support-100
            return f"{self.value(node.left)} {node.op} {self.value(node.right)}"
        if isinstance(node, ast.BoolOp):
            return f"{self.value(node.left)} {self.between(node.left, node.right)} {self.value(node.right)}"
        if isinstance(node, ast.Not):
            word = self.source[node.span.start:node.operand.span.start].strip()
            return f"{word}{self.value(node.operand)}" if word == "!" else f"{word} {self.value(node.operand)}"
        if isinstance(node, ast.Compare):
            if node.left is None:
                return f"{node.op}{self.value(node.right)}"
            return f"{self.value(node.left)} {node.op} {self.value(node.right)}"
        if isinstance(node, ast.Seq):
            return self._seq(node)
        raise TypeError(f"cannot format {type(node).__name__}")  # pragma: no cover

    def _seq(self, node: ast.Seq) -> str:
        parts = [self.value(i) for i in node.items]
        # `3 Option(...)` is the EBNF's multiplier without `×`: print it as the spec does
        if len(node.items) == 2 and isinstance(node.items[0], ast.Number) and isinstance(
                node.items[1], (ast.Call, ast.Polarity, ast.Name, ast.Paren, ast.Braced)):
            return " ".join(parts)
        return " ".join(parts)

    def statement(self, node, indent: str = "") -> list[str]:
        if isinstance(node, ast.Header):
            return [indent + " ".join(self.slice(node).split())]
        if isinstance(node, ast.Block):
            lines = [f"{indent}{node.name} {{"]
            lines += self.body(node.body, indent + INDENT, node.span.line)
            return lines + [indent + "}"]
        if isinstance(node, ast.Append):
            return self._wrap(f"{indent}{node.name} += ", node.value, indent)
        if isinstance(node, ast.Binding):
            head = f"{indent}{node.name} " if node.name in ALL_FIELDS else f"{indent}{node.name} = "
            return self._wrap(head, node.value, indent)
        if node.value is None:
            return [indent + node.name]
        return self._wrap(f"{indent}{node.name} ", node.value, indent)

    def _wrap(self, head: str, value, indent: str) -> list[str]:
        line = head + self.value(value)
        if len(line) <= MAX_WIDTH or not isinstance(value, ast.ListValue) or not value.items:
            return [line]
        items = [f"{indent}{LIST_INDENT}{self.value(i)}," for i in value.items]
        items[-1] = items[-1][:-1]
        return [head + "["] + items + [indent + "]"]

    def body(self, statements, indent: str, after_line: int) -> list[str]:
        out: list[str] = []
        for node in statements:
            out += self.statement(node, indent)
        return out


def _comment_text(comment: ast.Comment) -> str:
    return comment.text.rstrip()


def format_text(text: str, path: str = "<string>") -> FormatResult:
    """The canonical form of ``text``; unchanged with diagnostics when it does not parse."""
    parsed = parse(text, path)
    if parsed.diagnostics:
        return FormatResult(text, False, list(parsed.diagnostics))
    printer = _Printer(text)
    source_lines = text.split("\n")
    comments = sorted(parsed.module.comments, key=lambda c: c.line)
    out: list[str] = []
    last_line = 0  # last source line already accounted for

    def blank_between(first: int, last: int) -> bool:
        return any(not source_lines[i - 1].strip() for i in range(max(first, 1), last) if i - 1 < len(source_lines))

    def emit(lines: list[str], start: int, end: int, indent: str = "") -> None:
        nonlocal last_line
        leading = [c for c in comments if last_line < c.line < start or (
            start <= c.line < end and c.line > last_line)]  # comments inside a statement move above it
        for comment in leading:
            if out and blank_between(last_line + 1, comment.line):
                out.append("")
            out.append(indent + _comment_text(comment))
            last_line = max(last_line, comment.line) if comment.line < start else last_line
            comments.remove(comment)
        if out and blank_between(last_line + 1, start) and out[-1] != "":
            out.append("")
        trailing = [c for c in comments if c.line == end and c.trailing]
        if trailing:
            lines = lines[:-1] + [f"{lines[-1]}  {_comment_text(trailing[0])}"]
            comments.remove(trailing[0])
        out.extend(lines)
        last_line = end

    for node in parsed.module.statements:
        if isinstance(node, ast.Block):
            emit([f"{node.name} {{"], node.span.line, node.span.line)
            for inner in node.body:
                emit(printer.statement(inner, INDENT), inner.span.line, inner.span.end_line, INDENT)
            emit(["}"], node.span.end_line, node.span.end_line, INDENT)
        else:
            emit(printer.statement(node), node.span.line, node.span.end_line)
    for comment in comments:  # comments after the last statement
        if out and blank_between(last_line + 1, comment.line):
            out.append("")
        out.append(_comment_text(comment))
        last_line = comment.line
    formatted = "\n".join(line.rstrip() for line in out).strip("\n") + "\n"
    return FormatResult(formatted, formatted != text)
