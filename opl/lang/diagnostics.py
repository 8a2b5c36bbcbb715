"""Diagnostics as structured data: every finding of every stage is one `Diagnostic`.

Renderers (opl/lang/render/) turn a `FileReport` into text, JSON or SARIF; tests assert on
the fields, not on rendered text, except in the snapshot tests of the renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from opl.lang.codes import CODES
from opl.lang.source import SourceFile, Span

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Edit:
    """Replace ``span`` of the source with ``text`` (an insertion when the span is empty)."""

    span: Span
    text: str


@dataclass(frozen=True)
class Fix:
    """A concrete fix: what an editor's code action and SARIF's ``fixes`` apply."""

    title: str
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Diagnostic:
    """One located finding.

    Parameters
    ----------
    code
        A code of the table in ``opl.lang.codes`` (and grammar/README.md).
    message
        One sentence, lower-case start, no trailing period; names in backticks.
    span
        The smallest region the finding is about; the caret goes under it.
    label
        A few words printed beside the caret.
    help
        How to fix it, when there is a concrete fix.
    notes
        Further context lines (``= note: ...``).
    fixes
        Concrete fixes the emitting pass knows (a swapped strike and tenor); the fixes that follow
        from the help alone (``did you mean `x`?``) are derived by `opl.lang.fixes.concrete_fixes`.
    """

    code: str
    message: str
    span: Span
    label: str = ""
    help: str | None = None
    notes: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = ()

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity

    def sort_key(self) -> tuple[int, int, str]:
        return (self.span.start, self.span.end, self.code)


@dataclass
class FileReport:
    """All diagnostics of one file, with the source they point into."""

    source: SourceFile
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.source.path

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.diagnostics, key=Diagnostic.sort_key)

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)

    @property
    def has_errors(self) -> bool:
        return self.count("error") > 0


class DiagnosticSink:
    """Collects diagnostics from passes; passes never raise for user errors."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def emit(
        self,
        code: str,
        message: str,
        span: Span,
        label: str = "",
        *,
        help: str | None = None,
        notes: tuple[str, ...] | list[str] = (),
        fixes: tuple[Fix, ...] = (),
    ) -> None:
        if code not in CODES:  # a programming error, not a user error
            raise KeyError(f"undeclared diagnostic code {code}")
        self.items.append(Diagnostic(code, message, span, label, help, tuple(notes), tuple(fixes)))

    def extend(self, diagnostics: list[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest candidate to a misspelt name, or None when nothing is close."""
    import difflib

    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None
