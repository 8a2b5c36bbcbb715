"""Candidate texts: check them, put them in canonical form, and edit them statement by statement.

A candidate is a complete `.opl` file. In the canonical form of `opl fmt` every field is ``name value`` on
its own line and the experiment block holds one setting a line, so the loop changes a candidate by whole
statements that the parser located — replace, insert or remove one — never by a regular expression over
the text. Comments on other lines survive every edit. Whoever edits re-checks the result with
`check_candidate` before using it.

>>> c = Candidate("opl-lang 1.0\\nprice 480\\nS = short Option(Put, 450, 30d)\\n")
>>> print(c.with_field("iv", "0.3", after="price").text, end="")
opl-lang 1.0
price 480
iv 0.3
S = short Option(Put, 450, 30d)
"""

from __future__ import annotations

import functools
import hashlib

from opl.lang import ast
from opl.closedloop.proposal import CheckOutcome
from opl.errors import OplError

__all__ = ["Candidate", "CandidateError", "check_candidate", "checked", "candidate_sha", "DESIGN_SETTINGS",
           "RUN_SETTINGS"]

# Experiment settings that make up the design of the experiment (how the strategy is tested); the others
# are the strategy's own parameters (``sizes``) or belong to the run (``paths``, ``seed``, ``target``,
# ``metrics``, ``stop``: the loop fixes them for every candidate).
DESIGN_SETTINGS = ("model", "calibration", "signal", "iv", "steps_per_day", "horizon", "stress", "sensitivity",
                   "hypotheses")
RUN_SETTINGS = ("paths", "seed", "target", "metrics", "stop")


class CandidateError(OplError, ValueError):
    """The text cannot be parsed, so it cannot be edited (its located diagnostics: ``report``, ``rendered``)."""

    def __init__(self, message: str, report=None):
        super().__init__(message, report=report, diagnostics=report.sorted() if report is not None else ())

    @property
    def rendered(self) -> str:
        """The syntax errors as `opl check` prints them ('' when there are none to show)."""
        return self.render() if self.located else ""


def check_candidate(text: str, path: str = "candidate.opl", *, files=None) -> CheckOutcome:
    """Run `opl check` on ``text``: ``ok`` when it has no error; ``rendered`` is the full rustc-style output.

    ``files`` (an `opl.lang.fileaccess.FileAccess`): the folders the files a candidate names must be in (E015).
    """
    from opl.lang.frontend import check_text
    from opl.lang.checks import CheckOptions
    from opl.lang.render import render

    result = check_text(text, path, CheckOptions(files=files))
    diagnostics = result.report.sorted()
    rendered = render([result.report], "full") if diagnostics else ""
    return CheckOutcome(ok=not result.report.has_errors, rendered=rendered,
                        codes=tuple(d.code for d in diagnostics))


@functools.lru_cache(maxsize=256)
def checked(text: str):
    """`opl.lang.frontend.check_text` of ``text`` (no path, no options), kept for the texts seen last — to read,
    never to change: every caller gets the same `CheckResult`.

    The loop reads the document of the same text many times a candidate (its hit rate, its cost, the model
    change against its parent, the proposer's moves, the critic's defects and directions), each a parse and
    a check. The result depends on the text alone: without options no file is looked at (E015).
    """
    from opl.lang.frontend import check_text

    return check_text(text)


def candidate_sha(text: str) -> str:
    """A short digest of the canonical form: two texts that format alike are the same candidate."""
    try:
        return Candidate(text).sha
    except CandidateError:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@functools.lru_cache(maxsize=512)
def _canonical(text: str) -> tuple[str, ast.Module]:
    """The canonical form of ``text`` and its (frozen) syntax tree. Kept for the texts seen last: the loop makes
    a `Candidate` of the same text many times (proposing, checking, digesting, diagnosing, editing), and
    each costs two parses. A text with syntax errors raises `CandidateError` each time (never kept)."""
    from opl.lang.fmt import format_text

    formatted = format_text(text, "candidate.opl")
    if not formatted.ok:
        from opl.lang.diagnostics import FileReport
        from opl.lang.source import SourceFile

        report = FileReport(SourceFile("candidate.opl", text), list(formatted.diagnostics)) \
            if formatted.diagnostics else None
        raise CandidateError(formatted.error or "the candidate has syntax errors", report)
    return formatted.text, formatted.module  # the formatter's self-check parsed the canonical text


class Candidate:
    """A candidate in canonical form with statement-level edits; every edit returns a new `Candidate`.

    Parameters
    ----------
    text
        A complete `.opl` text that parses (checking errors are allowed; syntax errors are not).

    Raises
    ------
    CandidateError
        The text has a syntax error.
    """

    def __init__(self, text: str):
        self.text, self.module = _canonical(text)

    @property
    def sha(self) -> str:
        """`candidate_sha` of this (already canonical) text."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    # ------------------------------------------------------------------ reading

    def _body(self, block: str | None) -> tuple[ast.Statement, ...] | None:
        if block is None:
            return self.module.statements
        found = self._block(block)
        return None if found is None else found.body

    def _block(self, name: str) -> ast.Block | None:
        return next((s for s in self.module.statements if isinstance(s, ast.Block) and s.name == name), None)

    def statement(self, name: str, block: str | None = None) -> ast.Statement | None:
        """The statement ``name`` (a field, binding or append) at top level or inside ``block``."""
        body = self._body(block)
        if body is None:
            return None
        return next((s for s in body if isinstance(s, (ast.Field, ast.Binding, ast.Append)) and s.name == name),
                    None)

    def value(self, name: str, block: str | None = None) -> str | None:
        """The source text of a statement's value (None when absent; "" for a bare name)."""
        found = self.statement(name, block)
        if found is None:
            return None
        if found.value is None:
            return ""
        return self.source(found.value)

    def source(self, node) -> str:
        """The text of a node of this candidate's tree."""
        return self.text[node.span.start:node.span.end]

    def names(self, block: str | None = None) -> list[str]:
        """Statement names in order (top level, or inside ``block``)."""
        return [s.name for s in self._body(block) or () if isinstance(s, (ast.Field, ast.Binding, ast.Append))]

    def design(self) -> dict[str, str]:
        """The design settings of the experiment block (`DESIGN_SETTINGS`) as canonical source text."""
        return {name: self.value(name, "experiment") for name in DESIGN_SETTINGS
                if self.statement(name, "experiment") is not None}

    # ------------------------------------------------------------------ editing

    def _line_bounds(self, start: int, end: int) -> tuple[int, int]:
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", end)
        return line_start, len(self.text) if line_end < 0 else line_end + 1

    def _edited(self, text: str) -> "Candidate":
        return Candidate(text)

    def with_field(self, name: str, value: str, *, block: str | None = None, after: str | None = None) -> "Candidate":
        """Set ``name value`` (a binding keeps its ``name = value`` form): replace the statement, or insert it.

        A new top-level field goes after the field ``after`` when given and present, else before the
        experiment block (else at the end); a new block setting goes last in the block (the block is
        created at the end of the file when missing).
        """
        line = f"{name} {value}".rstrip()
        found = self.statement(name, block)
        if found is not None:
            if isinstance(found, ast.Binding):
                line = f"{name} = {value}"
            return self._edited(self.text[:found.span.start] + line + self.text[found.span.end:])
        if block is not None:
            target = self._block(block)
            if target is None:
                tail = "" if self.text.endswith("\n") else "\n"
                return self._edited(f"{self.text}{tail}{block} {{\n  {line}\n}}\n")
            close = target.span.end - 1  # the closing brace
            at = self.text.rfind("\n", 0, close) + 1
            return self._edited(self.text[:at] + f"  {line}\n" + self.text[at:])
        anchor = self.statement(after) if after else None
        if anchor is not None:
            _, at = self._line_bounds(anchor.span.start, anchor.span.end)
        else:
            experiment = self._block("experiment")
            at = self._line_bounds(experiment.span.start, experiment.span.start)[0] if experiment else len(self.text)
        prefix = "" if at == 0 or self.text[at - 1] == "\n" else "\n"
        return self._edited(self.text[:at] + prefix + line + "\n" + self.text[at:])

    def without(self, name: str, block: str | None = None) -> "Candidate":
        """Remove the statement ``name`` (its whole lines); unchanged when absent."""
        found = self.statement(name, block)
        if found is None:
            return self
        start, end = self._line_bounds(found.span.start, found.span.end)
        return self._edited(self.text[:start] + self.text[end:])
