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
