"""Exit codes, owned by one object (black/pip-tools style): commands report into it."""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, NoReturn

from opl.lang.diagnostics import FileReport
from opl.errors import EXIT_FINDINGS, EXIT_USAGE, OplError

EXIT_OK = 0
__all__ = ["EXIT_OK", "EXIT_FINDINGS", "EXIT_USAGE", "CheckOutcome", "FormatOutcome", "fail_with_error",
           "reported", "handled", "fail_with_io", "write_result"]


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


# --------------------------------------------------------------------------- the one error handler


def fail_with_error(error: OplError, hints: Mapping[str, str] | None = None) -> NoReturn:
    """Print an `opl.errors.OplError` as it renders itself (located diagnostics, or ``error: …`` lines) on
    stderr, then a ``= help:`` line when ``hints`` has one for its class (by class name, any base), and exit
    with the error's exit code."""
    import click

    click.echo(error.render(), err=True, nl=False)
    hint = next((hints[c.__name__] for c in type(error).__mro__ if hints and c.__name__ in hints), None)
    if hint:
        click.echo(f"  = help: {hint}", err=True)
    sys.exit(error.exit_code)


@contextmanager
def reported(path=None, *, hints: Mapping[str, str] | None = None) -> Iterator[None]:
    """The one place where a command's errors become output and an exit code: an `OplError` prints itself
    and exits with its ``exit_code``; an `OSError` is ``error: PATH: reason``, exit 2 (``path`` when the
    error names no file). ``hints``: extra help by error class name (e.g. ``{"DataError": "--repair …"}``)."""
    try:
        yield
    except OplError as error:
        fail_with_error(error, hints)
    except OSError as error:
        fail_with_io(error, error.filename or path)


def handled(function: Callable | None = None, *, hints: Mapping[str, str] | None = None):
    """Decorate a command with `reported` (its ``file`` argument, when it has one, names a failed read).

    Put it directly above the ``def``, below the click decorators.
    """
    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with reported(kwargs.get("file"), hints=hints):
                return func(*args, **kwargs)
        return wrapper

    return decorate(function) if function is not None else decorate


def fail_with_io(error: OSError, path=None) -> NoReturn:
    """A file that cannot be read or written: ``error: PATH: reason`` and exit 2 (``path`` defaults to the error's)."""
    import click

    click.echo(f"error: {path if path is not None else (error.filename or '')}: {error.strerror or error}", err=True)
    sys.exit(EXIT_USAGE)


def write_result(result, *, json_out: str | None, report_dir: str | None,
                 write_report: Callable[[object, str], object]) -> None:
    """Write ``--json`` (``-`` is stdout) and ``--report``; an unwritable path exits 2 (`reported`)."""
    import click

    with reported():
        if json_out == "-":
            click.echo(result.to_json())
        elif json_out:
            with open(json_out, "w", encoding="utf-8") as handle:
                handle.write(result.to_json() + "\n")
        if report_dir:
            write_report(result, report_dir)
