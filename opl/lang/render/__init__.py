"""Renderers: turn `FileReport`s into the output formats of ``opl check --format``.

Each format lives in its own module and is imported only when asked for, so that the
common ``full`` path never loads JSON or SARIF machinery. The formats are a contract
(DESIGN.md, "Contracts other tools rely on"); the snapshot tests in
tests/front/test_render.py pin them.
"""

from __future__ import annotations

import importlib

from opl.lang.diagnostics import FileReport

FORMATS: dict[str, str] = {
    "full": "opl.lang.render.full",
    "concise": "opl.lang.render.concise",
    "json": "opl.lang.render.json_format",
    "sarif": "opl.lang.render.sarif",
}


def render(reports: list[FileReport], fmt: str, *, color: bool = False) -> str:
    """Render every diagnostic of ``reports`` in one format.

    Parameters
    ----------
    reports
        One report per checked file, in the order the files were given.
    fmt
        ``"full"``, ``"concise"``, ``"json"`` or ``"sarif"``.
    color
        Use ANSI colours; only the ``full`` format has any. With ``False`` the output
        is plain text, byte for byte what the snapshot files hold.

    Returns
    -------
    str
        The rendered text, ending in a newline unless it is empty. The ``full`` and
        ``concise`` formats are empty when nothing was found; ``json`` and ``sarif``
        always produce a document.

    Raises
    ------
    ValueError
        If ``fmt`` is not one of `FORMATS`.
    """
    module_name = FORMATS.get(fmt)
    if module_name is None:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return importlib.import_module(module_name).render(reports, color=color)


def _counted(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_line(reports: list[FileReport]) -> str:
    """The closing line of ``opl check``: what was found in how many files.

    The wording is stable, since scripts and people grep for it::

        error: 2 errors and 1 warning in 1 file
        1 warning in 3 files
        2 errors, 1 warning and 1 note in 2 files

    The ``error:`` prefix appears exactly when the check fails on errors. The file
    count is the number of files checked, not the number with findings.

    Parameters
    ----------
    reports
        The reports of every checked file.

    Returns
    -------
    str
        The line without a trailing newline, or ``""`` when nothing was found.
    """
    errors = sum(r.count("error") for r in reports)
    warnings = sum(r.count("warning") for r in reports)
    notes = sum(r.count("note") for r in reports)
    parts = [_counted(n, word) for n, word in ((errors, "error"), (warnings, "warning"), (notes, "note")) if n]
    if not parts:
        return ""
    found = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    line = f"{found} in {_counted(len(reports), 'file')}"
    return f"error: {line}" if errors else line
