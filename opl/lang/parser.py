"""From OPL-Lang text to the syntax tree of opl/lang/ast.py, with located syntax errors.

The whole file is parsed at once with the LALR grammar of grammar/opl.lark. When that
fails, the file is cut into statements (a small bracket-aware scanner) and each is
parsed on its own, so one syntax error reports itself without hiding the rest of the
file; statements that parse are kept and checked as usual.

Nothing here evaluates the input: it is tokenised and parsed, and bounded first
(opl/lang/limits.py).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive, v_args

from opl.lang import ast
from opl.lang import limits
from opl.lang.diagnostics import Diagnostic
from opl.lang.source import SourceFile, Span

# Tokens after which a newline does not end the statement.
_CONTINUATION = frozenset(
    {"PLUS", "MINUS", "TIMES", "X", "SLASH", "AND", "AND_SYM", "OR", "OR_SYM", "NOT",
     "NOT_SYM", "CMP", "COMMA", "EQUAL", "__ANON_0", "LONG", "SHORT"}
)
_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB"}

_READABLE = {
    "NAME": "a name", "NUMBER": "a number", "PERCENT": "a percentage", "DURATION": "a tenor like `30d`",
    "DATE": "a date", "STRING": "a string", "FACTOR": "a factor like `x3`", "VOLDIR": "`↑IV`/`↓IV`/`=IV`",
    "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "LBRACE": "`{`", "RBRACE": "`}`",
    "COMMA": "`,`", "EQUAL": "`=`", "__ANON_0": "`+=`", "PLUS": "`+`", "MINUS": "`-`", "TIMES": "`×`",
    "X": "`x`", "SLASH": "`/`", "CMP": "a comparison", "LONG": "`long`", "SHORT": "`short`",
    "AND": "`and`", "OR": "`or`", "AND_SYM": "`&&`", "OR_SYM": "`||`", "NOT": "`not`",
    "NOT_SYM": "`!`", "PERCENT_SIGN": "`%`", "_NL": "end of line", "$END": "end of file",
    "OPL_LANG": "`opl-lang`", "VERSION": "a version number",
}


# Words after which `long`/`short` are a value, not a position's polarity (`keep 10% along long`).
_SIDE_AFTER = frozenset({"along"})


class _LineJoiner:
    """Post-lexer: newlines inside ( ) and [ ], or after an operator, do not end a statement; `long` and
    `short` after `along` are names (the exposure's fixed side), so the next word is not their operand."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        previous = None
        previous_word = None
        for token in stream:
            kind = token.type
            if kind in ("LONG", "SHORT") and previous == "NAME" and previous_word in _SIDE_AFTER:
                token = Token.new_borrow_pos("NAME", str(token), token)
                kind = "NAME"
            previous_word = str(token).lower() if kind == "NAME" else None
            if kind == "_NL":
                if depth > 0 or previous in _CONTINUATION:
                    continue
            elif kind in _OPENERS:
                depth += 1
            elif kind in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            previous = kind
            yield token


#: The parser's options; with the grammar's text, lark's version and Python's they name its cached tables.
_OPTIONS = dict(parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False,
                start=["start", "statement"])


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """The LALR parser of ``opl.lark``, its tables read from the cache beside this module when one was saved
    for this grammar, lark and Python (`_cached_lark`), else built (~0.25 s, paid by every `opl` process
    that parses: `opl check`, each simulate, the language server's start) and saved there."""
    grammar = resources.files("opl.grammar").joinpath("opl.lark").read_text(encoding="utf-8")
    return _cached_lark(grammar, _cache_path(grammar))


def _cache_path(grammar: str) -> Path:
    """Where the parser built from ``grammar`` is cached: this package's ``__pycache__``, beside the compiled
    modules Python already trusts there (the file is a pickle: a folder anyone may write, as lark's default
    of the system's temporary folder, would let them run code in every `opl` process)."""
    import hashlib
    import lark
    import sys

    key = hashlib.sha256("\0".join((grammar, repr(sorted(_OPTIONS.items())), lark.__version__,
                                     sys.version)).encode()).hexdigest()[:24]
    return Path(__file__).with_name("__pycache__") / f"opl-lark-{key}.pickle"


def _cached_lark(grammar: str, path: Path) -> Lark:
    """The parser of ``grammar``, its tables loaded from ``path`` (lark checks them against the grammar, its
    options and its version) or built and saved there; a cache that cannot be read or written (a read-only
    install, another process writing it at that moment) only costs the build."""
    try:
        path.parent.mkdir(exist_ok=True)
        cache: str | bool = str(path)
    except OSError:
        cache = False
    return Lark(grammar, postlex=_LineJoiner(), cache=cache, **_OPTIONS)


@dataclass
class ParseResult:
    """A module (possibly partial, when there were syntax errors) and its diagnostics."""

    module: ast.Module
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: SourceFile | None = None

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


# --------------------------------------------------------------------------- transformer


class _Builder(Transformer_NonRecursive):
    """lark tree → opl.lang.ast nodes. Positions are shifted when parsing one chunk of a file."""

    def __init__(self, line_offset: int = 0, pos_offset: int = 0) -> None:
        super().__init__()
        self.line_offset = line_offset
        self.pos_offset = pos_offset
        self.diagnostics: list[Diagnostic] = []

    # positions -------------------------------------------------------------------
    def _span(self, item) -> Span:
        if isinstance(item, Token):
            return Span(item.line + self.line_offset, item.column, item.end_line + self.line_offset,
                        item.end_column, item.start_pos + self.pos_offset, item.end_pos + self.pos_offset)
        meta = item
        if getattr(meta, "empty", True):
            return Span(1 + self.line_offset, 1, 1 + self.line_offset, 1, self.pos_offset, self.pos_offset)
        return Span(meta.line + self.line_offset, meta.column, meta.end_line + self.line_offset,
                    meta.end_column, meta.start_pos + self.pos_offset, meta.end_pos + self.pos_offset)

    def _error(self, code: str, message: str, span: Span, label: str = "", help: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, label, help))

    def _name(self, token: Token) -> str:
        if len(token) > limits.MAX_IDENTIFIER:
            self._error("E011", f"identifier is {len(token)} characters long", self._span(token),
                        f"longer than {limits.MAX_IDENTIFIER}")
        return str(token)

    def _number(self, token: Token, text: str) -> float:
        value = float(text.replace("_", ""))
        if not math.isfinite(value) or abs(value) > limits.MAX_NUMBER:
            self._error("E012", f"number `{token}` is out of range", self._span(token),
                        f"beyond ±{limits.MAX_NUMBER:g}")
            return 0.0
        return value

    # statements --------------------------------------------------------------------
    def start(self, children):
        return [c for c in children if c is not None]

    def statement(self, children):
        return children[0] if children else None

    @v_args(meta=True)
    def header(self, meta, children):
        version = str(children[1]) if len(children) > 1 else None
        return ast.Header(version, self._span(meta))

    @v_args(meta=True)
    def binding(self, meta, children):
        name, value = children
        return ast.Binding(self._name(name), value, self._span(meta), self._span(name))

    @v_args(meta=True)
    def append(self, meta, children):
        name, value = children
        return ast.Append(self._name(name), value, self._span(meta), self._span(name))

    @v_args(meta=True)
    def field(self, meta, children):
        name = children[0]
        value = children[1] if len(children) > 1 else None
        return ast.Field(self._name(name), value, self._span(meta), self._span(name))

    @v_args(meta=True)
    def block(self, meta, children):
        name, *body = children
        return ast.Block(self._name(name), tuple(body), self._span(meta), self._span(name))

    # values ------------------------------------------------------------------------------
    @v_args(meta=True)
    def seq(self, meta, children):
        if len(children) == 1:
            return children[0]
        return ast.Seq(tuple(children), self._span(meta))

    @v_args(meta=True)
    def boolop(self, meta, children):
        left, op, right = children
        return ast.BoolOp("and" if op.type in ("AND", "AND_SYM") else "or", left, right, self._span(meta))

    @v_args(meta=True)
    def notop(self, meta, children):
        return ast.Not(children[1], self._span(meta))

    @v_args(meta=True)
    def compare(self, meta, children):
        left, op, right = children
        return ast.Compare(str(op), left, right, self._span(meta))

    @v_args(meta=True)
    def compare_open(self, meta, children):
        op, right = children
        return ast.Compare(str(op), None, right, self._span(meta))

    @v_args(meta=True)
    def binop(self, meta, children):
        left, op, right = children
        symbol = {"PLUS": "+", "MINUS": "-", "TIMES": "×", "X": "×", "SLASH": "/"}[op.type]
        return ast.Binary(symbol, left, right, self._span(meta), self._span(op))

    @v_args(meta=True)
    def sign(self, meta, children):
        op, operand = children
        return ast.Unary("+" if op.type == "PLUS" else "-", operand, self._span(meta))

    @v_args(meta=True)
    def polarity(self, meta, children):
        side, operand = children
        return ast.Polarity(str(side), operand, self._span(meta), self._span(side))

    @v_args(meta=True)
    def factor(self, meta, children):
        token = children[-1]
        text = str(token).lstrip("x")
        return ast.Factor(self._number(token, text), self._span(meta))

    def number(self, children):
        (token,) = children
        return ast.Number(self._number(token, str(token)), str(token), self._span(token))

    def percent(self, children):
        (token,) = children
        return ast.Percent(self._number(token, str(token)[:-1]), str(token), self._span(token))

    def duration(self, children):
        (token,) = children
        match = re.fullmatch(r"([0-9.]+)(bd|d|w|y)", str(token))
        assert match is not None  # the terminal's own pattern
        return ast.Duration(self._number(token, match.group(1)), match.group(2), self._span(token))

    def date(self, children):
        (token,) = children
        try:
            value = _dt.date.fromisoformat(str(token))
        except ValueError:
            self._error("E109", f"`{token}` is not a calendar date", self._span(token), "no such day")
            value = None
        else:
            if not (limits.MIN_YEAR <= value.year <= limits.MAX_YEAR):
                self._error("E012", f"date `{token}` is out of range", self._span(token),
                            f"outside {limits.MIN_YEAR}–{limits.MAX_YEAR}")
        return ast.Date(value, self._span(token))

    def string(self, children):
        (token,) = children
        try:
            value = json.loads(str(token))
        except ValueError:
            value = str(token)[1:-1]
        return ast.String(value, self._span(token))

    def voldir(self, children):
        (token,) = children
        direction = {"↑": "up", "↓": "down", "=": "flat"}[str(token)[0]]
        return ast.VolDir(direction, self._span(token))

    def unit_placeholder(self, children):
        return ast.UnitPlaceholder(self._span(children[0]))

    def name(self, children):
        (token,) = children
        return ast.Name(self._name(token), self._span(token))

    @v_args(meta=True)
    def call(self, meta, children):
        func, *args = children
        return ast.Call(self._name(func), tuple(args), self._span(meta), self._span(func))

    @v_args(meta=True)
    def kwarg(self, meta, children):
        name, value = children
        return ast.Kwarg(self._name(name), value, self._span(meta), self._span(name))

    @v_args(meta=True)
    def braced(self, meta, children):
        name, value = children
        return ast.Braced(self._name(name), value, self._span(meta), self._span(name))

    @v_args(meta=True)
    def list(self, meta, children):
        return ast.ListValue(tuple(children), self._span(meta))

    @v_args(meta=True)
    def paren(self, meta, children):
        return ast.Paren(children[0], self._span(meta))


def _tree_depth(tree: Tree) -> int:
    """Nesting depth of a lark tree, iteratively (deep input must not exhaust the C stack).

    An operator chain (``A + B + C``, ``a and b and c``) is one level however long it is: lark
    builds it as a left spine, and a child with its parent's rule in first place continues
    the chain rather than nesting. A chain longer than ``limits.MAX_CHAIN`` counts as too deep.
    """
    deepest = 0
    stack = [(tree, 1, 1)]
    while stack:
        node, depth, chain = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limits.MAX_DEPTH or chain > limits.MAX_CHAIN:
            return max(deepest, limits.MAX_DEPTH + 1)
        for index, child in enumerate(node.children):
            if isinstance(child, Tree):
                if index == 0 and child.data == node.data and node.data in ("binop", "boolop"):
                    stack.append((child, depth, chain + 1))
                else:
                    stack.append((child, depth + 1, 1))
    return deepest


# --------------------------------------------------------------------------- errors


def _readable(expected) -> str:
    names = sorted({_READABLE.get(e, e) for e in expected if e not in ("WS", "COMMENT")})
    if not names:
        return ""
    if len(names) > 8:
        names = names[:8] + ["…"]
    return ", ".join(names)


_GROUPED_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _digit_grouping(text: str, comma: int) -> str | None:
    """The thousands-grouped number (``20,000``) around the comma at ``comma``, if it is one."""
    start = comma
    while start > 0 and (text[start - 1].isdigit() or text[start - 1] == ","):
        start -= 1
    match = _GROUPED_NUMBER.match(text, start)
    if match is None or not match.start() <= comma < match.end():
        return None
    return match.group(0)


def _syntax_diagnostic(error: UnexpectedInput, source: SourceFile, pos_offset: int, line_offset: int) -> Diagnostic:
    if isinstance(error, UnexpectedCharacters):
        start = error.pos_in_stream + pos_offset
        char = source.text[start] if start < len(source.text) else ""
        return Diagnostic("E002", f"unexpected character `{char}`", source.span(start, start + 1),
                          "not part of any token", _char_help(char))
    # the LALR parser reports the end of input as the token `$END`; lark raises UnexpectedEOF
    # only from its Earley parser, which opl does not use
    assert isinstance(error, UnexpectedToken), type(error)
    token = error.token
    if token.type == "$END":
        end = len(source.text)
        return Diagnostic("E001", "unexpected end of file", source.span(end, end), "statement is incomplete",
                          f"expected {_readable(error.expected)}" if error.expected else None)
    start = token.start_pos + pos_offset if token.start_pos is not None else pos_offset
    end = token.end_pos + pos_offset if token.end_pos is not None else start
    shown = "end of line" if token.type == "_NL" else f"`{token}`"
    if token.type == "_NL":
        end = start  # point at the end of the line, not at the newline character
    grouped = _digit_grouping(source.text, start) if str(token) == "," else None
    if grouped is not None:
        return Diagnostic("E001", f"unexpected {shown} inside the number `{grouped}`", source.span(start, end),
                          "digit separator", f"numbers are written without separators: "
                          f"`{grouped.replace(',', '')}`")
    expected = _readable(error.expected)
    return Diagnostic("E001", f"unexpected {shown}", source.span(start, end),
                      "unexpected here", f"expected {expected}" if expected else None)


def _char_help(char: str) -> str | None:
    replacements = {"，": ",", "（": "(", "）": ")", "：": ":", "＝": "=", "–": "-", "—": "-", "‘": '"',
                    "’": '"', "“": '"', "”": '"', "；": "", ";": ""}
    if char in replacements:
        fix = replacements[char]
        return f"replace it with `{fix}`" if fix else "statements end at the end of the line; remove it"
    if char == "$":
        return "write amounts as plain numbers, optionally followed by a currency: `1500 USD`"
    return None


def _unclosed(text: str, start: int, end: int) -> tuple[int, str] | None:
    """The first bracket in ``text[start:end]`` left open, ignoring strings and comments."""
    stack: list[tuple[int, str]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    i = start
    while i < end:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i, end)
            i = end if nl < 0 else nl
            continue
        if ch == '"':
            close = text.find('"', i + 1, end)
            i = end if close < 0 else close + 1
            continue
        if ch in "([{":
            stack.append((i, ch))
        elif ch in pairs and stack and stack[-1][1] == pairs[ch]:
            stack.pop()
        i += 1
    return stack[0] if stack else None


# --------------------------------------------------------------------------- recovery


@dataclass(frozen=True)
class _Chunk:
    start: int
    end: int
    line: int  # 1-based line of ``start``


_MATCHING = {")": "(", "]": "[", "}": "{"}
_CONTINUES_LINE = re.compile(r"(?:[-+×*/,=(\[{]|&&|\|\||\b(?:and|or|not|x)|[<>=!]=?)\s*$")


_STRING = re.compile(r'"([^"\\\n]|\\.)*"')  # the grammar's STRING terminal
WHITESPACE = " \t\f\r\ufeff"  # the grammar's WS terminal


def _comment_start(line: str) -> int | None:
    """Where the comment of ``line`` starts, skipping strings with their escapes; None when none."""
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == '"':
            match = _STRING.match(line, i)
            if match is None:
                return None  # an unclosed string: a syntax error, and no comment follows
            i = match.end()
            continue
        if ch == "#":
            return i
        i += 1
    return None


def _strip_comment(line: str) -> str:
    start = _comment_start(line)
    return (line if start is None else line[:start]).rstrip()


def _split_statements(text: str, start: int, end: int, first_line: int) -> list[_Chunk]:
    """Cut ``text[start:end]`` (which begins at a line start) into statement chunks.

    A line continues the current chunk while a bracket is open or the previous line
    ends with an operator; a line indented no deeper than the chunk's first line and
    starting with a name begins a new chunk even inside an open bracket, so that a
    forgotten `]` costs one statement, not the rest of the file.
    """
    chunks: list[_Chunk] = []
    lines = text[start:end].split("\n")
    offset = start
    line_no = first_line
    chunk_start: int | None = None
    chunk_line = first_line
    chunk_indent = 0
    depth = 0
    openers: list[str] = []
    previous_continues = False
    for raw in lines:
        code = _strip_comment(raw)
        stripped = code.strip()
        indent = len(code) - len(code.lstrip())
        if chunk_start is not None and stripped:
            restart = depth > 0 and not previous_continues and indent <= chunk_indent and re.match(
                r"[A-Za-z_]", stripped) and not stripped.startswith(("]", ")", "}"))
            if (depth <= 0 and not previous_continues) or restart:
                chunks.append(_Chunk(chunk_start, offset, chunk_line))
                chunk_start = None
                depth = 0
                openers.clear()
        if stripped and chunk_start is None:
            chunk_start, chunk_line, chunk_indent = offset, line_no, indent
        if stripped:
            for ch in stripped:  # a stray closer that matches no opener is ignored here
                if ch in "([{":
                    openers.append(ch)
                elif ch in ")]}" and openers and openers[-1] == _MATCHING[ch]:
                    openers.pop()
            depth = len(openers)
            previous_continues = bool(_CONTINUES_LINE.search(stripped))
        offset += len(raw) + 1
        line_no += 1
    if chunk_start is not None:
        chunks.append(_Chunk(chunk_start, min(offset, end), chunk_line))
    return chunks


def _parse_chunk(source: SourceFile, chunk: _Chunk, out: list[Diagnostic], depth: int = 0) -> list[ast.Statement]:
    text = source.text[chunk.start:chunk.end]
    builder = _Builder(line_offset=chunk.line - 1, pos_offset=chunk.start)
    try:
        tree = _lark().parse(text, start="statement")
    except UnexpectedInput as error:
        return _recover_chunk(source, chunk, error, out, depth)
    if _tree_depth(tree) > limits.MAX_DEPTH:
        out.append(Diagnostic("E009", f"expression nested deeper than {limits.MAX_DEPTH} levels or with more "
                              f"than {limits.MAX_CHAIN} terms in one chain",
                              source.span(chunk.start, chunk.start + len(text.rstrip())), "too deep"))
        return []
    node = builder.transform(tree)
    out.extend(builder.diagnostics)
    return [node] if node is not None else []


def _recover_chunk(source: SourceFile, chunk: _Chunk, error: UnexpectedInput, out: list[Diagnostic],
                   depth: int) -> list[ast.Statement]:
    """Report a chunk's syntax error; inside a block, recover the statements that parse."""
    text = source.text
    open_bracket = _unclosed(text, chunk.start, chunk.end)
    block = re.match(r"[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\{[ \t]*(#[^\n]*)?\n", text[chunk.start:chunk.end])
    if block and depth < 4:
        # Recover a multi-line block statement by statement.
        body_start = chunk.start + block.end()
        close = text.rfind("}", body_start, chunk.end)
        tail_is_close = close >= 0 and _strip_comment(text[close:chunk.end].split("\n")[0]).strip() == "}"
        body_end = close if tail_is_close else chunk.end
        # The body starts on the line after the header.
        body_line = chunk.line + text[chunk.start:body_start].count("\n")
        statements: list[ast.Statement] = []
        for inner in _split_statements(text, body_start, body_end, body_line):
            statements.extend(_parse_chunk(source, inner, out, depth + 1))
        if not tail_is_close:
            brace = chunk.start + block.start(0) + block.group(0).index("{")
            out.append(Diagnostic("E003", f"block `{block.group(1)}` is not closed", source.span(brace, brace + 1),
                                  "this `{` has no matching `}`", "add a line holding `}` after the block"))
        name_start = chunk.start + block.start(1)
        return [ast.Block(block.group(1), tuple(statements), source.span(chunk.start, chunk.end),
                          source.span(name_start, name_start + len(block.group(1))))]
    if open_bracket is not None and isinstance(error, UnexpectedToken) and error.token.type in ("$END", "_NL"):
        pos, ch = open_bracket
        closer = {"(": ")", "[": "]", "{": "}"}[ch]
        out.append(Diagnostic("E003", f"unclosed `{ch}`", source.span(pos, pos + 1),
                              f"this `{ch}` is never closed", f"add `{closer}`"))
        return []
    out.append(_syntax_diagnostic(error, source, chunk.start, chunk.line - 1))
    return []


# --------------------------------------------------------------------------- entry points


def parse_source(source: SourceFile) -> ParseResult:
    """Parse a decoded source file; never raises for bad input."""
    bounded = limits.check_text(source)
    if bounded:
        return ParseResult(ast.Module(()), bounded, source)
    text = source.text
    parsed = _parsed_whole(text)
    if parsed is not None:
        module, found = parsed
        return ParseResult(module, list(found), source)
    diagnostics: list[Diagnostic] = []
    try:
        tree = _lark().parse(text, start="start")
    except UnexpectedInput as error:
        first = _syntax_diagnostic(error, source, 0, 0)
        statements: list[ast.Statement] = []
        for chunk in _split_statements(text, 0, len(text), 1):
            statements.extend(_parse_chunk(source, chunk, diagnostics))
        if not any(d.severity == "error" for d in diagnostics):
            diagnostics.append(first)
        module = ast.Module(tuple(statements), tuple(scan_comments(text)))
        return ParseResult(module, diagnostics, source)
    if _tree_depth(tree) > limits.MAX_DEPTH:
        # Find the offending statements one by one so the rest is still usable.
        statements = []
        for chunk in _split_statements(text, 0, len(text), 1):
            statements.extend(_parse_chunk(source, chunk, diagnostics))
        return ParseResult(ast.Module(tuple(statements), tuple(scan_comments(text))), diagnostics, source)
    builder = _Builder()
    statements = builder.transform(tree)
    diagnostics.extend(builder.diagnostics)
    module = ast.Module(tuple(statements), tuple(scan_comments(text)))
    _remember(text, module, tuple(diagnostics))
    return ParseResult(module, diagnostics, source)


#: The last texts that parsed whole (no syntax error, not too deep): text -> (module, the builder's findings).
#: `opl loop` parses the same candidate text several times an evaluation (its canonical form and that form's
#: self-check, its check, each pass's check: ~50 ms each, a tenth of an evaluation's serial time); the tree is
#: frozen and its spans are offsets in the text, so a text's module is the same for every file and caller.
_WHOLE: "OrderedDict[str, tuple[ast.Module, tuple[Diagnostic, ...]]]" = OrderedDict()
_WHOLE_TEXTS = 64
_WHOLE_LOCK = threading.Lock()  # the language server parses from several threads


def _parsed_whole(text: str) -> tuple[ast.Module, tuple[Diagnostic, ...]] | None:
    with _WHOLE_LOCK:
        found = _WHOLE.get(text)
        if found is not None:
            _WHOLE.move_to_end(text)
        return found


def _remember(text: str, module: ast.Module, diagnostics: tuple[Diagnostic, ...]) -> None:
    with _WHOLE_LOCK:
        _WHOLE[text] = (module, diagnostics)
        while len(_WHOLE) > _WHOLE_TEXTS:
            _WHOLE.popitem(last=False)


def parse(text: str, path: str = "<string>") -> ParseResult:
    """Parse OPL-Lang text. See `parse_source`."""
    return parse_source(SourceFile(path, text))


def decode(data: bytes, path: str, *, size: int | None = None) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Decode file bytes as UTF-8 text, or explain why they are not.

    ``size``: the file's whole size when only its first bytes were read (a bounded read of a large file).
    """
    from opl.lang.source import UNKNOWN_SPAN

    if len(data) > limits.MAX_BYTES:
        shown = str(max(size or 0, len(data))) if size else f"more than {limits.MAX_BYTES}"
        return None, [Diagnostic("E008", f"file is {shown} bytes, above the limit of {limits.MAX_BYTES}",
                                 UNKNOWN_SPAN, "", "split the file or remove unrelated content")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        prefix = data[: error.start].decode("utf-8", errors="replace")
        source = SourceFile(path, prefix)
        at = source.span(len(prefix), len(prefix))
        return None, [Diagnostic("E007", f"invalid UTF-8 byte 0x{data[error.start]:02x}", at, "not UTF-8",
                                 "save the file as UTF-8")]
    if "\x00" in text:
        source = SourceFile(path, text)
        at = text.index("\x00")
        return None, [Diagnostic("E007", "file contains a NUL byte", source.span(at, at + 1), "binary data",
                                 "OPL-Lang files are text")]
    if text.startswith("\ufeff"):
        text = " " + text[1:]  # keep offsets and columns stable while dropping the BOM
    return SourceFile(path, text), []


_COMMENT = re.compile(r"#[^\n]*")


def scan_comments(text: str) -> list[ast.Comment]:
    """Every comment of ``text`` with its line, its text without trailing whitespace.

    Parameters
    ----------
    text
        Source text.

    Returns
    -------
    list of ast.Comment
        In source order; ``trailing`` when code precedes the comment on its line.
    """
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        start = _comment_start(line)
        if start is not None:
            found.append(ast.Comment(line[start:].rstrip(), number,
                                     trailing=bool(line[:start].strip(WHITESPACE))))
    return found
