"""Bounds on untrusted input (LLM-written files): each breach is a coded error.

The values are documented in grammar/README.md (Untrusted input); tests cover each.
"""

from __future__ import annotations

from opl.lang.diagnostics import Diagnostic
from opl.lang.source import SourceFile

MAX_BYTES = 256 * 1024          # E008: a strategy file is a page, not a data set
MAX_LINES = 5_000               # E008
MAX_LINE_LENGTH = 4_000         # E008: minified or binary-like input
MAX_DEPTH = 48                  # E009: syntax-tree depth (brackets, unary chains, templates)
MAX_LEGS = 64                   # E010: legs after template expansion and merging
MAX_CHAIN = 4 * MAX_LEGS        # E009: terms in one operator chain (`A + B + …`, `a and b and …`)
MAX_IDENTIFIER = 64             # E011
MAX_NUMBER = 1e12               # E012: absolute value of any literal
MAX_QTY = 100_000               # E012: lots per leg
MIN_YEAR, MAX_YEAR = 1900, 2200  # E012: dates
MAX_SIZE = 1e6                  # E207: a position size (`sizes`, --set size / experiment.sizes)
HEADER_WINDOW = 256             # E005: the header must start within these bytes (rc6 §13)
MAX_PATH_STEPS = 10**10         # E207: estimated path-steps (opl.lang.experiment.cost): ~1 h at today's engine; 50,000 paths × 5 sizes × 17 scenarios fit
MAX_NAMED_FILE_BYTES = 8 * 1024 * 1024  # E015: a file the .opl names (`calibration file`): a calibration JSON


def check_text(source: SourceFile) -> list[Diagnostic]:
    """Size bounds checked before any parsing."""
    text = source.text
    lines = text.split("\n")
    if len(lines) > MAX_LINES:
        at = source.span(source.line_starts[MAX_LINES], source.line_starts[MAX_LINES])
        return [Diagnostic("E008", f"file has {len(lines)} lines, above the limit of {MAX_LINES}", at,
                           "limit reached here", "split the file")]
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_LENGTH:
            start = source.line_starts[number - 1]
            at = source.span(start + MAX_LINE_LENGTH, start + MAX_LINE_LENGTH)
            return [Diagnostic("E008", f"line {number} is {len(line)} characters long, above the limit of "
                               f"{MAX_LINE_LENGTH}", at, "limit reached here", "break the line")]
    return []
