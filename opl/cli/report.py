"""Exit codes, owned by one object (black/pip-tools style): commands report into it."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, NoReturn

from opl.lang.diagnostics import FileReport

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


@dataclass
class CheckOutcome:
    """Accumulates what a command found and decides the exit code."""

    strict: bool = False
    errors: int = 0
    warnings: int = 0
    io_errors: list[str] = field(default_factory=list)

    def add(self, report: FileReport) -> None:
        self.errors += report.count("error")
        self.warnings += report.count("warning")

    def io_error(self, message: str) -> None:
        self.io_errors.append(message)

    @property
    def exit_code(self) -> int:
        if self.io_errors:
            return EXIT_USAGE
        if self.errors or (self.strict and self.warnings):
            return EXIT_FINDINGS
        return EXIT_OK


@dataclass
class FormatOutcome:
    """What ``opl fmt`` did to its files, and the exit code that follows.

    ``changed`` lists the files that were (or, with ``--check``, would be) reformatted;
    ``failed`` those left alone because of syntax errors or a failed self-check.
    """

    check: bool = False
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    io_errors: list[str] = field(default_factory=list)

    def io_error(self, message: str) -> None:
        self.io_errors.append(message)

    def summary(self) -> str:
        """``reformatted 2 files, 1 unchanged`` (``2 files would be reformatted, ...`` with --check)."""
        n = len(self.changed)
        files = f"{n} file" if n == 1 else f"{n} files"
        head = f"{files} would be reformatted" if self.check else f"reformatted {files}"
        tail = f", {len(self.failed)} not formatted (errors)" if self.failed else ""
        return f"{head}, {self.unchanged} unchanged{tail}"

    @property
    def exit_code(self) -> int:
        if self.io_errors:
            return EXIT_USAGE
        if self.failed or (self.check and self.changed):
            return EXIT_FINDINGS
        return EXIT_OK


# --------------------------------------------------------------------------- the run commands' shared exits


def fail_with_diagnostics(source, diagnostics) -> NoReturn:
    """Print located diagnostics of one file (full form) and exit 1."""
    import click

    from opl.lang.render import render

    click.echo(render([FileReport(source, diagnostics)], "full"), err=True, nl=False)
    sys.exit(EXIT_FINDINGS)


def fail_with_problems(problems) -> NoReturn:
    """Problems found in the input data (`opl.data.loaders.Problem`, or error messages): ``error: …`` each, exit 1."""
    import click

    from opl.data.loaders import shown

    for line in shown(list(problems)):
        click.echo(f"error: {line}", err=True)
    sys.exit(EXIT_FINDINGS)


def fail_with_io(error: OSError, path=None) -> NoReturn:
    """A file that cannot be read or written: ``error: PATH: reason`` and exit 2 (``path`` defaults to the error's)."""
    import click

    click.echo(f"error: {path if path is not None else (error.filename or '')}: {error.strerror or error}", err=True)
    sys.exit(EXIT_USAGE)


def fail_with_setting(error) -> NoReturn:
    """A bad ``--set`` (a `opl.lang.experiment.settings.SettingsError`): print it with its help and exit 2."""
    import click

    where = f"--set {error.key}: " if error.key else ""
    click.echo(f"error: {where}{error}", err=True)
    if error.help:
        click.echo(f"  = help: {error.help}", err=True)
    sys.exit(EXIT_USAGE)


def write_result(result, *, json_out: str | None, report_dir: str | None,
                 write_report: Callable[[object, str], object]) -> None:
    """Write ``--json`` (``-`` is stdout) and ``--report``; an unwritable path exits 2."""
    import click

    try:
        if json_out == "-":
            click.echo(result.to_json())
        elif json_out:
            with open(json_out, "w", encoding="utf-8") as handle:
                handle.write(result.to_json() + "\n")
        if report_dir:
            write_report(result, report_dir)
    except OSError as error:
        fail_with_io(error)
