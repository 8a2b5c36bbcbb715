"""`opl fmt`: print an OPL-Lang file in the canonical form of grammar/README.md.

The formatter prints the syntax tree, never the lowered document, so it needs only a
file that parses; a file with syntax errors is returned unchanged with its
diagnostics. Literals (numbers, percentages, durations, dates, strings) are copied
from the source, so no float is ever re-rendered; everything between them is
canonical.

Two guarantees, both checked on every call and tested over every shipped file and
over generated files:

* idempotence: ``format_text(format_text(x).text).text == format_text(x).text``;
* tree preservation: the formatted text parses to ``canonical(parse(x).module)``,
  which is the input's tree up to the two documented rewrites (rc6 ``field = value``
  read as ``field value``; experiment settings sharing a line split one per line),
  and it keeps every comment's text in order.

When the check fails (a formatter bug, never expected) the text is returned unchanged
with `FormatResult.error` set, rather than risking a change of meaning.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal

from opl.lang import ast
from opl.lang import vocabulary as vocab
from opl.lang.diagnostics import Diagnostic
from opl.lang.parser import WHITESPACE, parse, scan_comments
from opl.lang.source import Span

MAX_WIDTH = 100
INDENT = "  "

# Parser errors that still leave a complete tree (a long name, a huge number, 30 February):
# `opl check` reports them; the formatter can print such a file faithfully.
_COMPLETE_TREE = frozenset({"E011", "E012", "E109"})

# Boolean spellings: the spec writes guard rules with symbols (§3.3) and conditions
# elsewhere with words (§5 adjust_when, the experiment target). It never writes `!`, and
# `!days_left > 30d` reads as `(!days_left) > 30d` to a C eye, so negation is `not`.
_WORDS = {"and": "and", "or": "or"}
_SYMBOLS = {"and": "&&", "or": "||"}
_ANCHORS = frozenset({"ATM", "atm", "support", "resistance"})
_VOLDIR = {"up": "↑IV", "down": "↓IV", "flat": "=IV"}
# The digits the FACTOR token takes after `x` (grammar/opl.lark): no exponent, no `_`.
_FACTOR_DIGITS = re.compile(r"[0-9]+(\.[0-9]+)?")


@dataclass
class FormatResult:
    """What `format_text` made of one text.

    Attributes
    ----------
    text
        The canonical text, or the input unchanged when it could not be formatted.
    changed
        Whether ``text`` differs from the input.
    diagnostics
        The parser's diagnostics when a syntax error stopped formatting, else empty.
    error
        Set when the formatted text failed the self-check (a formatter bug); the
        input is returned unchanged.
    module
        The syntax tree of the formatted ``text`` (its self-check's parse, under the path given), when
        formatting succeeded: a caller that wants the tree does not parse the text a third time.
    """

    text: str
    changed: bool
    diagnostics: list[Diagnostic] = field(default_factory=list)
    error: str | None = None
    module: ast.Module | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.diagnostics and self.error is None


# --------------------------------------------------------------------------- the tree rewrites


def canonical(module: ast.Module) -> ast.Module:
    """The tree `format_text` prints: ``module`` with the two canonical rewrites.

    rc6 ``name = value`` for a field of §4–§9 becomes ``name value``, and inside an
    ``experiment`` block ``name = value`` becomes ``name value`` and settings written
    on one line (``paths 50000  steps_per_day 1  seed 7``) are split exactly as the
    lowerer splits them. Neither changes what the file means.

    Parameters
    ----------
    module
        A parsed module.

    Returns
    -------
    ast.Module
        The rewritten module; untouched statements are the same objects.
    """
    statements = []
    for statement in module.statements:
        if isinstance(statement, ast.Binding) and statement.name in vocab.ALL_FIELDS:
            statement = ast.Field(statement.name, statement.value, statement.span, statement.name_span)
        elif isinstance(statement, ast.Block) and statement.name == "experiment":
            body = tuple(s for inner in statement.body for s in _split_settings(inner))
            statement = ast.Block(statement.name, body, statement.span, statement.name_span)
        statements.append(statement)
    return ast.Module(tuple(statements), module.comments)


def _split_settings(statement: ast.Statement) -> list[ast.Statement]:
    """One field per setting, cut where opl.lang.fields cuts (a setting's name starts the next)."""
    if isinstance(statement, ast.Binding):
        statement = ast.Field(statement.name, statement.value, statement.span, statement.name_span)
    if not isinstance(statement, ast.Field) or statement.value is None:
        return [statement]
    value = statement.value
    items = list(value.items) if isinstance(value, ast.Seq) else [value]
    groups: list[tuple[str, Span, list]] = [(statement.name, statement.name_span, [])]
    for item in items:
        if isinstance(item, ast.Name) and item.id in vocab.EXPERIMENT_SETTINGS and item.id != groups[-1][0]:
            groups.append((item.id, item.span, []))
        else:
            groups[-1][2].append(item)
    if len(groups) == 1:
        return [statement]
    fields: list[ast.Statement] = []
    for name, name_span, values in groups:
        if not values:
            fields.append(ast.Field(name, None, name_span, name_span))
            continue
        joined = values[0] if len(values) == 1 else ast.Seq(tuple(values), values[0].span.merge(values[-1].span))
        fields.append(ast.Field(name, joined, name_span.merge(values[-1].span), name_span))
    return fields


# --------------------------------------------------------------------------- comments


@dataclass
class _ListNotes:
    """Comments written inside a list, by where they go when it is printed broken."""

    open: str | None = None  # after `[`
    leading: dict[int, list[str]] = field(default_factory=dict)  # above item i
    trailing: dict[int, str] = field(default_factory=dict)  # after item i
    dangling: list[str] = field(default_factory=list)  # after the last item, above `]`


def _attach(lst: ast.ListValue, comment: ast.Comment, notes: _ListNotes) -> None:
    line, items = comment.line, lst.items
    ending = [i for i, item in enumerate(items) if item.span.end_line == line]
    if comment.trailing and ending:
        notes.trailing[ending[-1]] = comment.text
    elif line == lst.span.line and notes.open is None:
        notes.open = comment.text
    else:
        # inside a multi-line item it moves above that item; between items, above the next
        target = next((i for i, item in enumerate(items) if line <= item.span.end_line), None)
        if target is None:
            notes.dangling.append(comment.text)
        else:
            notes.leading.setdefault(target, []).append(comment.text)


def _factor(value: float, written: str) -> str:
    """A factor as ``x`` and digits, which lex back as one FACTOR token.

    ``x3.50`` keeps its digits. ``×1e1`` and ``*1_000`` (a ``×`` and a NUMBER) cannot
    keep theirs — ``x1e1`` lexes as a name — so they are written positionally from
    their value (``x10``, ``x1000``), which parses to the same float. A number the parser
    rejected as out of range (its value is not the text's) stays as written after ``×``.
    """
    if _FACTOR_DIGITS.fullmatch(written):
        return "x" + written
    if float(written.replace("_", "")) != value:
        return "×" + written
    digits = format(Decimal(repr(value)), "f")
    return "x" + (digits.rstrip("0").rstrip(".") if "." in digits else digits)


def _glue(left: str, right: str) -> str:
    """``left + right``, unless they would lex as one token (`<` `=IV` is not `<=` `IV`)."""
    if left and right and left[-1] in "+-<>!=" and right[0] == "=":
        return f"{left} {right}"
    return left + right


def _children(node) -> tuple:
    if isinstance(node, (ast.Kwarg, ast.Braced, ast.Paren)):
        return (node.value,)
    if isinstance(node, ast.Call):
        return node.args
    if isinstance(node, (ast.ListValue, ast.Seq)):
        return node.items
    if isinstance(node, (ast.Unary, ast.Polarity, ast.Not)):
        return (node.operand,)
    if isinstance(node, (ast.Binary, ast.BoolOp)):
        return (node.left, node.right)
    if isinstance(node, ast.Compare):
        return (node.right,) if node.left is None else (node.left, node.right)
    return ()


def _outermost_lists(node) -> list[ast.ListValue]:
    if isinstance(node, ast.ListValue):
        return [node]
    return [lst for child in _children(node) for lst in _outermost_lists(child)]


# --------------------------------------------------------------------------- printing


class _Printer:
    """Prints a canonical module; one instance a file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.notes: dict[int, _ListNotes] = {}  # id(ListValue) → its comments, per statement
        self.symbolic = False  # spell and/or as && || (guard rules)

    def module(self, module: ast.Module, comments: list[ast.Comment]) -> str:
        lines = self.sequence(module.statements, comments, "")
        return "\n".join(lines) + "\n" if lines else ""

    # -- statements ---------------------------------------------------------------------------
    def sequence(self, statements, comments, indent: str) -> list[str]:
        """Statements with the comments around and inside them; one blank line where there were some."""
        owned: dict[int, list] = {i: [] for i in range(len(statements))}
        leading: dict[int, list] = {i: [] for i in range(len(statements))}
        tail = []
        starts = [s.span.line for s in statements]  # in order; split settings may share a line
        for comment in comments:
            last = bisect_right(starts, comment.line) - 1  # the last statement starting at or before it
            if last >= 0 and statements[last].span.end_line >= comment.line:
                owned[last].append(comment)
            elif last + 1 < len(statements):
                leading[last + 1].append(comment)
            else:
                tail.append(comment)
        lines: list[str] = []
        previous_end: int | None = None

        def place(start: int, end: int, new: list[str]) -> None:
            nonlocal previous_end
            if previous_end is not None and start > previous_end + 1:
                lines.append("")
            lines.extend(new)
            previous_end = end if previous_end is None else max(previous_end, end)

        for i, statement in enumerate(statements):
            for comment in leading[i]:
                place(comment.line, comment.line, [indent + comment.text])
            place(statement.span.line, statement.span.end_line, self.statement(statement, owned[i], indent))
        for comment in tail:
            place(comment.line, comment.line, [indent + comment.text])
        return lines

    def statement(self, statement, comments, indent: str) -> list[str]:
        end = statement.span.end_line
        trailing = next((c for c in comments if c.trailing and c.line == end), None)
        rest = [c for c in comments if c is not trailing]
        suffix = f"  {trailing.text}" if trailing else ""
        if isinstance(statement, ast.Block):
            lines = self.block(statement, rest, indent)
            lines[-1] += suffix
            return lines
        value = getattr(statement, "value", None)
        self.notes = {}
        hoisted = []
        lists = [n for n in ast.walk(value) if isinstance(n, ast.ListValue)] if value is not None else []
        for comment in rest:
            hosts = [x for x in lists if x.span.line <= comment.line < x.span.end_line]
            if hosts:
                host = max(hosts, key=lambda x: x.span.start)  # the innermost
                _attach(host, comment, self.notes.setdefault(id(host), _ListNotes()))
            else:
                hoisted.append(comment)  # a comment inside a joined line moves above it
        self.symbolic = isinstance(statement, ast.Append) or (
            isinstance(statement, (ast.Field, ast.Binding)) and statement.name in vocab.GUARD_FIELDS)
        if isinstance(statement, ast.Header):
            text = indent + "opl-lang" + (f" {statement.version}" if statement.version else "")
        elif value is None:
            text = indent + statement.name
        else:
            operator = {ast.Binding: " = ", ast.Append: " += "}.get(type(statement), " ")
            head = indent + statement.name + operator
            breaks: set[int] = set()
            self.plan(value, len(head) + len(self.flat(value)), len(indent), breaks)
            text = head + self.value(value, len(indent), breaks)
        lines = [indent + c.text for c in hoisted] + text.split("\n")
        lines[-1] += suffix
        return lines

    def block(self, block: ast.Block, comments, indent: str) -> list[str]:
        opening = None
        body_comments = []
        for comment in comments:
            inside = any(s.span.line <= comment.line <= s.span.end_line for s in block.body)
            if not inside and comment.line == block.span.line and opening is None:
                opening = comment
            else:
                body_comments.append(comment)
        body = self.sequence(block.body, body_comments, indent + INDENT)
        head = f"{indent}{block.name} {{" + (f"  {opening.text}" if opening else "")
        if not body and opening is None:
            return [head + "}"]
        return [head, *body, indent + "}"]

    # -- breaking lists ---------------------------------------------------------------------
    def forced(self, node) -> bool:
        """Whether ``node`` holds a list with comments, which only a broken list can keep."""
        return any(isinstance(n, ast.ListValue) and id(n) in self.notes for n in ast.walk(node))

    def plan(self, node, width: int, indent: int, breaks: set[int]) -> None:
        """Choose the lists to break: outermost first, then inside items that still do not fit."""
        too_long = width > MAX_WIDTH
        for lst in _outermost_lists(node):
            if not (too_long or self.forced(lst)):
                continue
            breaks.add(id(lst))
            last = len(lst.items) - 1
            for i, item in enumerate(lst.items):
                item_width = indent + len(INDENT) + len(self.flat(item)) + (i < last)
                if item_width > MAX_WIDTH or self.forced(item):
                    self.plan(item, item_width, indent + len(INDENT), breaks)

    def flat(self, node) -> str:
        return self.value(node, 0, set())

    # -- values ---------------------------------------------------------------------------------
    def value(self, node, indent: int, breaks: set[int]) -> str:  # noqa: C901 - one case a node type
        def sub(child) -> str:
            return self.value(child, indent, breaks)

        if isinstance(node, (ast.Number, ast.Percent)):
            return node.text or self.slice(node)
        if isinstance(node, (ast.Duration, ast.Date, ast.String)):
            return self.slice(node)
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Factor):
            return _factor(node.value, self.slice(node).lstrip("x×*" + WHITESPACE))
        if isinstance(node, ast.VolDir):
            return _VOLDIR[node.direction]
        if isinstance(node, ast.UnitPlaceholder):
            return "%"
        if isinstance(node, ast.Call):
            return f"{node.func}({', '.join(sub(a) for a in node.args)})"
        if isinstance(node, ast.Kwarg):
            return _glue(f"{node.name}=", sub(node.value))
        if isinstance(node, ast.Braced):
            return f"{node.name}{{{sub(node.value)}}}"
        if isinstance(node, ast.ListValue):
            return self.list(node, indent, breaks)
        if isinstance(node, ast.Paren):
            return f"({sub(node.value)})"
        if isinstance(node, ast.Unary):
            return _glue(node.op, sub(node.operand))
        if isinstance(node, ast.Polarity):
            return f"{node.side} {sub(node.operand)}"
        if isinstance(node, ast.Binary):
            left, right = sub(node.left), sub(node.right)
            tight = node.op in ("×", "/") or (
                isinstance(node.left, ast.Name) and node.left.id in _ANCHORS
                and isinstance(node.right, (ast.Number, ast.Percent)))  # a strike offset: ATM-5%
            return f"{left}{node.op}{right}" if tight else f"{left} {node.op} {right}"
        spelling = _SYMBOLS if self.symbolic else _WORDS
        if isinstance(node, ast.BoolOp):
            return f"{sub(node.left)} {spelling[node.op]} {sub(node.right)}"
        if isinstance(node, ast.Not):
            return f"not {sub(node.operand)}"
        if isinstance(node, ast.Compare):
            if node.left is None:
                return _glue(node.op, sub(node.right))  # open comparison: pnl_percent(<-25%)
            return f"{sub(node.left)} {node.op} {sub(node.right)}"
        if isinstance(node, ast.Seq):
            return " ".join(sub(i) for i in node.items)
        raise TypeError(f"cannot format {type(node).__name__}")  # pragma: no cover - every node is above

    def list(self, node: ast.ListValue, indent: int, breaks: set[int]) -> str:
        if id(node) not in breaks:
            return "[ " + ", ".join(self.value(i, indent, breaks) for i in node.items) + " ]" if node.items else "[]"
        notes = self.notes.get(id(node), _ListNotes())
        pad = " " * (indent + len(INDENT))
        lines = ["[" + (f"  {notes.open}" if notes.open else "")]
        last = len(node.items) - 1
        for i, item in enumerate(node.items):
            lines += [pad + text for text in notes.leading.get(i, [])]
            line = pad + self.value(item, indent + len(INDENT), breaks) + ("," if i < last else "")
            lines.append(line + (f"  {notes.trailing[i]}" if i in notes.trailing else ""))
        lines += [pad + text for text in notes.dangling]
        lines.append(" " * indent + "]")
        return "\n".join(lines)

    def slice(self, node) -> str:
        return self.source[node.span.start:node.span.end]


# --------------------------------------------------------------------------- entry point


def format_text(text: str, path: str = "<string>") -> FormatResult:
    """Format OPL-Lang text in the canonical form (grammar/README.md, "Canonical form").

    Parameters
    ----------
    text
        The file's text (decoded; see `opl.lang.parser.decode`).
    path
        The name diagnostics point at.

    Returns
    -------
    FormatResult
        The canonical text; or the input unchanged with the parser's diagnostics when
        it has a syntax error, or with ``error`` set when the self-check failed.
        Never raises for any input.
    """
    parsed = parse(text, path)
    if any(d.severity == "error" and d.code not in _COMPLETE_TREE for d in parsed.diagnostics):
        return FormatResult(text, False, sorted(parsed.diagnostics, key=Diagnostic.sort_key))
    module = canonical(parsed.module)
    comments = scan_comments(text)
    formatted = _Printer(text).module(module, comments)
    again = parse(formatted, path)
    same_errors = [d.code for d in again.diagnostics] == [d.code for d in parsed.diagnostics]
    if not same_errors or again.module.statements != module.statements or (
            [c.text for c in scan_comments(formatted)] != [c.text for c in comments]):
        return FormatResult(text, False, error="the formatted text does not parse to the same tree; "
                                                "left unchanged (please report this file)")
    return FormatResult(formatted, formatted != text, module=again.module)
