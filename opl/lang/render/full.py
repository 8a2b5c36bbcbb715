"""The rustc/ruff "full" format: header, location, quoted line, carets, notes and help.

::

    error[E101]: unknown primitive `Swap`
     --> strategies/bad.opl:3:10
      |
    3 | S = long Swap
      |          ^^^^ not a primitive
      |
      = help: did you mean `Stock`?

Columns in a `Span` count characters, but a terminal counts cells: a tab is drawn as
four spaces (as rustc does, so the picture does not depend on the reader's tab stops)
and a wide CJK character takes two cells. The quoted line and the caret line are built
from the same cell widths, so the carets stay under the characters they mean.
"""

from __future__ import annotations

import unicodedata

from opl.lang.diagnostics import Diagnostic, FileReport
from opl.lang.source import SourceFile

TAB = "    "
#: U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: line breaks to str.splitlines and to editors.
_SEPARATORS = frozenset((0x2028, 0x2029))

_SEVERITY_COLOR = {"error": "31", "warning": "33", "note": "32"}
_GUTTER = ("1", "34")


def _paint(text: str, codes: tuple[str, ...], color: bool) -> str:
    # Empty text stays empty so that colour never adds trailing escape noise to blank parts.
    if not color or not text:
        return text
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def _cell(ch: str) -> str:
    """How one character is drawn: tabs expanded, control characters made visible.

    Control characters come from untrusted files; printed raw, an ESC could restyle
    or rewrite the reader's terminal, so they are shown as their Unicode pictures.
    The C1 controls (NEL, CSI, ...) and the Unicode line and paragraph separators
    have no picture; they are written as ``\\u2028``-style escapes, since any of
    them can end a line for an editor or a script and split a one-line record.
    """
    if ch == "\t":
        return TAB
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    if 0x80 <= code <= 0x9F or code in _SEPARATORS:
        return f"\\u{code:04x}"
    return ch


def _width(ch: str) -> int:
    """Terminal cells taken by one already-drawn character."""
    if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def printable(text: str) -> str:
    """``text`` with tabs expanded and control characters shown as pictures."""
    return "".join(_cell(ch) for ch in text)


def display_width(text: str) -> int:
    """Terminal cells that `printable` ``(text)`` occupies."""
    return sum(_width(ch) for ch in printable(text))


def _snippet_line(source: SourceFile, line: int) -> str | None:
    """The text of a quotable line, or None when the span points at no real line."""
    if line < 1 or line > len(source.line_starts) or not source.text:
        return None
    return source.line_text(line)


def _caret_run(text: str, diagnostic: Diagnostic) -> tuple[int, int]:
    """(cells before the carets, number of carets) for the span's first line."""
    span = diagnostic.span
    first = max(span.column - 1, 0)
    last = span.end_column - 1 if span.end_line == span.line else len(text)
    return display_width(text[:first]), max(display_width(text[first:last]), 1)


def render_diagnostic(source: SourceFile, diagnostic: Diagnostic, *, color: bool = False) -> str:
    """One diagnostic in the full format, ending with a newline.

    Parameters
    ----------
    source
        The file the span points into.
    diagnostic
        The finding to draw.
    color
        Colour with ANSI codes; without it the text is plain.

    Returns
    -------
    str
        The header, location, snippet and ``= note:``/``= help:`` lines. A span
        whose line is not in the file (line 0, or an empty file) gets no snippet.
    """
    severity = diagnostic.severity
    tone = ("1", _SEVERITY_COLOR[severity])
    span = diagnostic.span
    text = _snippet_line(source, span.line)

    header = _paint(f"{severity}[{diagnostic.code}]", tone, color) + _paint(
        f": {printable(diagnostic.message)}", ("1",), color
    )
    path = printable(str(source.path))  # a file name is untrusted too
    location = path if text is None else f"{path}:{span.line}:{span.column}"
    width = len(str(span.line)) if text is not None else 1
    margin = " " * (width + 1)
    bar = _paint("|", _GUTTER, color)

    lines = [header, " " * width + _paint("-->", _GUTTER, color) + f" {location}"]
    if text is not None:
        before, carets = _caret_run(text, diagnostic)
        label = printable(diagnostic.label)
        marks = "^" * carets + (f" {label}" if label else "")
        quoted = printable(text)
        lines.append(f"{margin}{bar}")
        lines.append(_paint(str(span.line), _GUTTER, color) + f" {bar}" + (f" {quoted}" if quoted else ""))
        lines.append(f"{margin}{bar} " + " " * before + _paint(marks, tone, color))
    tail = [("note", note) for note in diagnostic.notes]
    if diagnostic.help:
        tail.append(("help", diagnostic.help))
    if tail and text is not None:
        lines.append(f"{margin}{bar}")
    for kind, body in tail:
        lines.append(f"{margin}{_paint('=', _GUTTER, color)} {_paint(kind, ('1',), color)}: {printable(body)}")
    return "\n".join(lines) + "\n"


def render(reports: list[FileReport], *, color: bool = False) -> str:
    """Every diagnostic of every report, each followed by a blank line (as rustc does).

    Parameters
    ----------
    reports
        The reports to draw, in order; each report's diagnostics in source order.
    color
        Colour with ANSI codes.

    Returns
    -------
    str
        The text, or ``""`` when there is nothing to report.
    """
    return "".join(
        render_diagnostic(report.source, diagnostic, color=color) + "\n"
        for report in reports
        for diagnostic in report.sorted()
    )
