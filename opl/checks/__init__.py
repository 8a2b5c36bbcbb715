"""Semantic checks: pure functions over a `CheckContext`, run in the order of `PASSES`.

Each pass reads the lowered `Document` and the normalised legs and emits diagnostics
into the context's sink; none raises for a user error and none imports numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from opl.diagnostics import DiagnosticSink
from opl.document import Document
from opl.fileaccess import FileAccess
from opl.legs import Leg
from opl.source import SourceFile


# The default guards of spec §3.4 a user may switch off (`opl check --no-guard W401`).
DEFAULT_GUARD_CODES = ("W401", "W402")


@dataclass(frozen=True)
class CheckOptions:
    """How a file is checked, beyond its text.

    ``no_guards``: codes of the default guards switched off (spec §3.4: "disabling any
    requires --no-guard XYZ"); the file's own ``avoid_leg_if``/``warn_if`` rules still apply.
    ``files``: the folders the files the `.opl` names must be in — a confined check (`opl loop`'s
    candidates, ``opl check --confine DIR``; E015, `opl.fileaccess`); None for a user's own file.
    """

    no_guards: frozenset[str] = frozenset()
    files: FileAccess | None = None


@dataclass
class CheckContext:
    """What every pass sees."""

    source: SourceFile
    document: Document
    legs: tuple[Leg, ...] = ()
    cancelled: tuple[Leg, ...] = ()
    sink: DiagnosticSink = field(default_factory=DiagnosticSink)
    options: CheckOptions = field(default_factory=CheckOptions)


Pass = Callable[[CheckContext], None]


def _passes() -> tuple[Pass, ...]:
    from opl.checks import budget, guards, intent, legs, namedfiles, playbook, resources

    return (namedfiles.PASSES + budget.PASSES + legs.PASSES + resources.PASSES + playbook.PASSES + guards.PASSES
            + intent.PASSES)


def run_checks(context: CheckContext) -> None:
    """Run every pass in order."""
    for check in _passes():
        check(context)
