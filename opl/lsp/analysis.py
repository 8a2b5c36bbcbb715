"""One open document as the server sees it: its text, the check of it, and positions in it.

The check is `opl.lang.frontend.check_source`, the function behind `opl check`, with the same
settings (`opl.lang.configuration`: the nearest opl.toml or ``[tool.opl]``, inline
``# opl: ignore[...]``), so the diagnostics an editor shows are the command's (same
codes, spans, severities, help).
Positions here are code-point offsets and 0-based (line, column) pairs in code points;
the server converts them to the client's encoding (UTF-16 by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from opl.lang.diagnostics import Diagnostic, FileReport
from opl.lang.frontend import CheckResult, check_source
from opl.lang.source import SourceFile, Span

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Analysis:
    """A checked snapshot of one document."""

    source: SourceFile
    result: CheckResult
    report: FileReport  # what is published: the check minus what the settings suppress
    suppressed: list = field(default_factory=list)
    settings_error: str | None = None  # a configuration file that could not be read (defaults used)
    cache: dict = field(default_factory=dict)  # per-snapshot results of slow queries (the compiled legs)

    @property
    def text(self) -> str:
        return self.source.text

    def offset(self, line: int, column: int) -> int:
        """The offset of a 0-based (line, code-point column), clamped to the text."""
        starts = self.source.line_starts
        if line >= len(starts):
            return len(self.text)
        end = starts[line + 1] - 1 if line + 1 < len(starts) else len(self.text)
        return min(starts[line] + max(column, 0), end)

    def word_at(self, offset: int) -> tuple[str, Span] | None:
        """The identifier under (or just before) ``offset``, with its span."""
        line, _ = self.source.position(offset)
        begin = self.source.line_starts[line - 1]
        for match in _WORD.finditer(self.source.line_text(line)):
            if begin + match.start() <= offset <= begin + match.end():
                return match.group(), self.source.span(begin + match.start(), begin + match.end())
        return None

    def diagnostics_at(self, start: int, end: int) -> list[Diagnostic]:
        """The published diagnostics whose span meets [start, end] (a point range included)."""
        return [d for d in self.report.sorted() if d.span.start <= end and start <= max(d.span.end, d.span.start)]


def analyse(path: str, text: str) -> Analysis:
    """Check ``text`` as the file at ``path`` (``.json`` selects the JSON leg form, as `opl check` does),
    under the settings `opl check` would read for that file."""
    from opl.lang.configuration import ConfigError, Settings, apply_settings, check_options, settings_for

    error = None
    try:
        settings = settings_for(path) if not path.startswith(("untitled:", "<")) else Settings()
    except (ConfigError, OSError) as problem:
        settings, error = Settings(), str(problem)
    source = SourceFile(path, text)
    result = check_source(source, check_options(settings))
    report, suppressed = apply_settings(result.report, settings)
    return Analysis(source, result, report, suppressed, error)
