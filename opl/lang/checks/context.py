"""What every check pass sees: the file, its lowered `Document`, its normalised legs, the options.

Its own module so the passes (`opl.lang.checks.*`) import it without importing the package
that lists them (no import cycle; tests/front/test_import_graph.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from opl.lang.diagnostics import DiagnosticSink
from opl.lang.document import Document
from opl.lang.fileaccess import FileAccess
from opl.lang.legs import Leg
from opl.lang.source import SourceFile


# The default guards of spec §3.4 a user may switch off (`opl check --no-guard W401`).
DEFAULT_GUARD_CODES = ("W401", "W402")


@dataclass(frozen=True)
class CheckOptions:
    """How a file is checked, beyond its text.

    ``no_guards``: codes of the default guards switched off (spec §3.4: "disabling any
    requires --no-guard XYZ"); the file's own ``avoid_leg_if``/``warn_if`` rules still apply.
    ``files``: the folders the files the `.opl` names must be in — a confined check (`opl loop`'s
    candidates, ``opl check --confine DIR``; E015, `opl.lang.fileaccess`); None for a user's own file.
    ``exchange``, ``market``: the project's defaults for what the file does not say (`opl.lang.configuration`,
    ``exchange = "CZCE"``, ``[market] rate = 0.02``); the file's own fields win.
    """

    no_guards: frozenset[str] = frozenset()
    files: FileAccess | None = None
    exchange: str | None = None
    market: tuple[tuple[str, object], ...] = ()


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
