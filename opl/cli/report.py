"""Exit codes, owned by one object (black/pip-tools style): commands report into it."""

from __future__ import annotations

from dataclasses import dataclass, field

from opl.diagnostics import FileReport

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
