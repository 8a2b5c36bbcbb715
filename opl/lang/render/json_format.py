"""The JSON format: a list of findings with stable keys (DESIGN.md contract).

Each finding has, in this order: ``file, code, severity, message, line, column,
end_line, end_column, help, label, notes``. The first nine are the contract; ``label``
and ``notes`` are extras. Absent ``help`` and ``label`` are ``null``; lines and columns
are 1-based with ``end_column`` exclusive, exactly as in `opl.lang.source.Span`.
"""

from __future__ import annotations

import json
from typing import Any

from opl.lang.diagnostics import Diagnostic, FileReport


def finding(path: str, diagnostic: Diagnostic) -> dict[str, Any]:
    """The JSON object of one diagnostic (a dict in the contract's key order)."""
    span = diagnostic.span
    return {
        "file": path,
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "line": span.line,
        "column": span.column,
        "end_line": span.end_line,
        "end_column": span.end_column,
        "help": diagnostic.help or None,
        "label": diagnostic.label or None,
        "notes": list(diagnostic.notes),
    }


def render(reports: list[FileReport], *, color: bool = False) -> str:
    """All findings as one JSON array, indented by 2, with a final newline.

    Parameters
    ----------
    reports
        The reports to serialise, in order.
    color
        Ignored.

    Returns
    -------
    str
        The document; ``[]`` when nothing was found, so a consumer can always parse it.
    """
    items = [finding(report.path, d) for report in reports for d in report.sorted()]
    # Non-ASCII stays readable (messages quote 红枣 strings verbatim); JSON escapes controls.
    return json.dumps(items, indent=2, ensure_ascii=False) + "\n"
