"""Concrete fixes of diagnostics: the replacements an editor's code action and SARIF's ``fixes`` apply.

A fix is offered only when the diagnostic names one exact replacement: the help's
``did you mean `x`?`` on a misspelt word, the missing ``opl-lang 1.0`` header, or a fix
the emitting pass attached itself (a swapped strike and tenor, `opl.lang.lower`). Both the
language server (opl/lsp/) and the SARIF renderer read `concrete_fixes`, so they always
offer the same edits.
"""

from __future__ import annotations

import re
from typing import Callable

from opl.lang.diagnostics import Diagnostic, Edit, Fix
from opl.lang.source import SourceFile, Span

_SUGGESTION = re.compile(r"did you mean `([^`]+)`\?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
HEADER = "opl-lang 1.0"


def _did_you_mean(diagnostic: Diagnostic, source: SourceFile) -> Fix | None:
    """Replace the misspelt word under the caret by the suggestion."""
    match = _SUGGESTION.search(diagnostic.help or "")
    span = diagnostic.span
    if match is None or span.end <= span.start:
        return None
    written = source.text[span.start:span.end]
    suggestion = match.group(1)
    if not _WORD.fullmatch(written) or written == suggestion:
        return None  # the caret is not on one word: no safe single replacement
    return Fix(f"replace `{written}` with `{suggestion}`", (Edit(span, suggestion),))


def _missing_header(diagnostic: Diagnostic, source: SourceFile) -> Fix | None:
    if diagnostic.code != "E004":
        return None
    return Fix(f"add `{HEADER}` as the first line", (Edit(Span(1, 1, 1, 1, 0, 0), HEADER + "\n"),))


# Each rule reads one diagnostic and returns its fix or None; the order is the order offered.
RULES: tuple[Callable[[Diagnostic, SourceFile], Fix | None], ...] = (_missing_header, _did_you_mean)


def concrete_fixes(diagnostic: Diagnostic, source: SourceFile) -> tuple[Fix, ...]:
    """Every concrete fix of one diagnostic: the emitting pass's own, then those its help names.

    Parameters
    ----------
    diagnostic
        A diagnostic of ``source``.
    source
        The text the diagnostic's span points into.

    Returns
    -------
    tuple of Fix
        Possibly empty; each fix's edits do not overlap and apply to ``source`` as it is.
    """
    derived = tuple(fix for rule in RULES if (fix := rule(diagnostic, source)) is not None)
    return diagnostic.fixes + derived


def apply_fix(text: str, fix: Fix) -> str:
    """``text`` with the fix's edits applied (last edit first, so offsets stay valid)."""
    for edit in sorted(fix.edits, key=lambda e: e.span.start, reverse=True):
        text = text[:edit.span.start] + edit.text + text[edit.span.end:]
    return text
