"""One family of errors for every stage: `OplError`, the base of every error opl raises on purpose.

A stage that cannot go on raises a subclass of `OplError` (a file with errors, a bad setting,
data that break their contract, a run folder that cannot be resumed...). Every one of them

- carries what the user needs to find the problem: located `Diagnostic` objects with the
  `FileReport` of the file they point into (``report`` and ``diagnostics``) when the problem is
  in an OPL-Lang file; otherwise a message that names the place (a data file's path and row, a
  ``--set`` key, a run folder), with ``help`` when there is a concrete fix;
- renders the way ``opl check`` renders findings (`OplError.render`), and as JSON
  (`OplError.to_dict`, the findings in the ``opl check --format json`` contract);
- says which exit code the command line ends with (``exit_code``: 1 the input has
  problems, 2 a usage error), so one handler (`opl.cli.report.handled`) serves every command.

Subclasses keep their own constructors and extra attributes (``problems`` of a data error,
``key`` of a setting) and the built-in base they always had (``ValueError``, ``ImportError``),
so ``except ValueError`` keeps working. This module is numpy-free, as the front end is.
"""

from __future__ import annotations

from typing import Any, ClassVar

from opl.lang.diagnostics import Diagnostic, FileReport

__all__ = ["OplError", "EXIT_FINDINGS", "EXIT_USAGE"]

#: The input has problems (a file with errors, data breaking their contract).
EXIT_FINDINGS = 1
#: A usage error (a bad option or ``--set``, a folder that cannot be used).
EXIT_USAGE = 2


class OplError(Exception):
    """The base of every error opl raises on purpose (module docstring).

    Parameters
    ----------
    message
        One sentence: what is wrong and where.
    report
        The file the ``diagnostics`` point into, when the problem is in an OPL-Lang file.
    diagnostics
        Located findings in ``report``'s source (each a `opl.lang.diagnostics.Diagnostic`).
    help
        How to fix it, when there is a concrete fix.
    """

    #: The command line's exit code for this error (an instance may override it).
    exit_code: ClassVar[int] = EXIT_FINDINGS
    report: FileReport | None = None
    diagnostics: tuple[Diagnostic, ...] = ()
    help: str | None = None

    def __init__(self, message: str = "", *, report: FileReport | None = None, diagnostics=(),
                 help: str | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.diagnostics = tuple(diagnostics)
        self.help = help

    @property
    def located(self) -> bool:
        """True when the error is a set of diagnostics located in an OPL-Lang file."""
        return self.report is not None and bool(self.diagnostics)

    def lines(self) -> list[str]:
        """The error as ``error: …`` lines (and ``= help: …``), for an error not located in a file."""
        text = str(self) or type(self).__name__
        out = [f"error: {line}" for line in text.splitlines() or [text]]
        if self.help:
            out.append(f"  = help: {self.help}")
        return out

    def render(self, fmt: str = "full", *, color: bool = False) -> str:
        """The error as ``opl check`` prints findings (``fmt``: full, concise, json, sarif for a located
        error; an error not located in a file is its `lines`), ending in a newline."""
        if self.located:
            from opl.lang.render import render

            return render([FileReport(self.report.source, list(self.diagnostics))], fmt, color=color)
        return "\n".join(self.lines()) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON: its kind, message, exit code and located findings (``opl check --format json``'s
        objects; empty for an error not located in a file)."""
        from opl.lang.render.json_format import finding

        path = self.report.path if self.report is not None else None
        return {"error": type(self).__name__, "message": str(self), "exit_code": self.exit_code,
                "help": self.help, "diagnostics": [finding(path, d) for d in self.diagnostics]}
