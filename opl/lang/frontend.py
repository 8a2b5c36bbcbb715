"""The front end as one call: text → syntax tree → Document → normalised legs → checks.

``check_source`` never raises for bad input: every problem is a diagnostic in the
returned `FileReport`. The stages are the functions of opl/lang/parser.py, opl/lang/lower.py,
opl/lang/normalise.py and opl/lang/checks/; this module only runs them in order and stops early
when a stage's output cannot be trusted (no semantic checks on a file whose legs did
not lower).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from opl.lang import ast, limits

from opl.lang.checks import CheckContext, CheckOptions, run_checks
from opl.lang.diagnostics import DiagnosticSink, FileReport
from opl.lang.document import Document, Underlying
from opl.lang.legs import Leg
from opl.lang.lower import lower
from opl.lang.normalise import normalise
from opl.lang.parser import decode, parse_source
from opl.lang.source import SourceFile


@dataclass
class CheckResult:
    """The outcome of checking one file."""

    report: FileReport
    document: Document | None = None
    legs: tuple[Leg, ...] = ()
    cancelled: tuple[Leg, ...] = ()
    module: "ast.Module | None" = None  # the syntax tree (None for the JSON leg form): editors' outline, hover

    @property
    def ok(self) -> bool:
        return not self.report.has_errors


def check_source(source: SourceFile, options: CheckOptions | None = None) -> CheckResult:
    """Check a decoded `.opl` (or JSON leg form, by extension) source file."""
    if source.path.endswith(".json"):
        from opl.lang.jsonlegs import load_json_legs

        document, diagnostics = load_json_legs(source)
        if any(d.severity == "error" for d in diagnostics):
            # a leg that did not load leaves no strategy: checking the rest would only add a spurious E203
            return CheckResult(FileReport(source, diagnostics), document)
    else:
        parsed = parse_source(source)
        diagnostics = list(parsed.diagnostics)
        if any(d.code == "E008" for d in diagnostics):
            return CheckResult(FileReport(source, diagnostics))
        document, lowered = lower(parsed.module, source)
        diagnostics.extend(lowered)
    _apply_defaults(document, options or CheckOptions())
    report = FileReport(source, diagnostics)
    result = CheckResult(report, document, module=None if source.path.endswith(".json") else parsed.module)
    if any(d.severity == "error" and d.code[:2] in ("E1", "E0") and d.code not in ("E004", "E005", "E006", "E014")
           for d in diagnostics):
        return result  # semantic checks on half-understood legs would only add noise
    if any(d.code == "E006" for d in diagnostics):
        return result  # an unknown major version: nothing else can be trusted
    sink = DiagnosticSink()
    legs: tuple[Leg, ...] = ()
    cancelled: tuple[Leg, ...] = ()
    if document.strategy is not None:
        linear = document.underlying.kind if document.underlying is not None else "stock"
        normalised = normalise(document.strategy.expr, {n: d.expr for n, d in document.definitions.items()},
                               sink, linear_kind=linear)
        legs, cancelled = normalised.legs, normalised.cancelled
    context = CheckContext(source, document, legs, cancelled, sink, options or CheckOptions())
    if not sink.has_errors:
        run_checks(context)
    report.diagnostics.extend(sink.items)
    result.legs, result.cancelled = legs, cancelled
    return result


def _apply_defaults(document: Document, options: CheckOptions) -> None:
    """Fill what the file leaves unsaid from the project's defaults (`opl.lang.configuration`: exchange, market)."""
    for name, value in options.market:
        if getattr(document.market, name) is None:
            setattr(document.market, name, value)
    if options.exchange is not None:
        if document.underlying is None:
            document.underlying = Underlying(exchange=options.exchange)
        elif document.underlying.exchange is None:
            document.underlying.exchange = options.exchange


def check_text(text: str, path: str = "<string>", options: CheckOptions | None = None) -> CheckResult:
    """Check OPL-Lang text given as a string."""
    return check_source(SourceFile(path, text), options)


def check_path(path: str | Path, options: CheckOptions | None = None) -> CheckResult:
    """Read and check a file. Raises OSError for I/O problems (the CLI reports them)."""
    path = Path(path)
    with open(path, "rb") as handle:
        # At most one byte past the bound: `/dev/zero` or a huge file is E008, not all of memory.
        data = handle.read(limits.MAX_BYTES + 1)
        size = os.fstat(handle.fileno()).st_size if len(data) > limits.MAX_BYTES else None
    source, problems = decode(data, str(path), size=size)
    if source is None:
        return CheckResult(FileReport(SourceFile(str(path), ""), problems))
    return check_source(source, options)
