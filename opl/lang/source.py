"""Source text and spans: where every node and diagnostic points.

Lines and columns are 1-based; ``end_column`` is exclusive (the column after the last
character), as in lark's ``propagate_positions`` metadata and in SARIF regions.
Offsets are character offsets into the decoded text.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open region of one source file."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0
    end: int = 0

    def merge(self, other: "Span") -> "Span":
        """The smallest span covering ``self`` and ``other``."""
        first, last = (self, other) if self.start <= other.start else (other, self)
        tail = last if last.end >= first.end else first
        return Span(first.line, first.column, tail.end_line, tail.end_column, first.start, tail.end)


UNKNOWN_SPAN = Span(1, 1, 1, 1, 0, 0)


@dataclass(frozen=True)
class SourceFile:
    """A decoded source file with fast offset → (line, column) lookup."""

    path: str
    text: str

    @property
    def line_starts(self) -> tuple[int, ...]:
        starts = self.__dict__.get("_line_starts")
        if starts is None:
            acc = [0]
            for i, ch in enumerate(self.text):
                if ch == "\n":
                    acc.append(i + 1)
            starts = tuple(acc)
            object.__setattr__(self, "_line_starts", starts)
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        """The span of ``text[start:end]``."""
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(line, column, end_line, end_column, start, end)

    def excerpt(self, span: Span | None) -> str:
        """The text under ``span`` ('' for no span or an empty one)."""
        return self.text[span.start:span.end] if span is not None and span.end > span.start else ""

    def line_text(self, line: int) -> str:
        """The text of a 1-based line without its newline ('' past the end)."""
        starts = self.line_starts
        if line < 1 or line > len(starts):
            return ""
        begin = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[begin:end].rstrip("\r")
