"""The concise format: one ``path:line:col: CODE message`` line a finding.

The shape is a contract (DESIGN.md) that editors' problem matchers and ``grep`` rely
on, so nothing else goes on the line; help and notes are left to the other formats.
"""

from __future__ import annotations

from opl.lang.diagnostics import FileReport
from opl.lang.render.full import printable


def render(reports: list[FileReport], *, color: bool = False) -> str:
    """One line per diagnostic, in file order and source order within a file.

    Parameters
    ----------
    reports
        The reports to list.
    color
        Ignored: the concise format is meant for tools and is always plain.

    Returns
    -------
    str
        The lines, each ending in a newline, or ``""`` when nothing was found.
    """
    return "".join(
        f"{printable(str(report.path))}:{d.span.line}:{d.span.column}: {d.code} {printable(d.message)}\n"
        for report in reports
        for d in report.sorted()
    )
