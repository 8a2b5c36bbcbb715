"""The language reference a model reads before it writes a `.opl` file.

Built from the language reference itself (``grammar/README.md``, package data ``opl.grammar``) so the
prompt never drifts from the language: the sections a writer needs (syntax, fields, legs and strikes,
hedge/assignment/exit/adjust/guards, the experiment block, templates, the diagnostic codes) are kept
verbatim; the sections about tooling rather than writing (normalisation, the formatter's canonical form)
are left out, generated-table markers are stripped, and one complete, checked file from the strategy
library (package data ``opl.strategies``) is appended as a worked example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

#: Upper bound on the reference's size in characters (about 9k tokens), so the prompt leaves room for the
#: candidate, its results, the diagnosis and the history within a 16k-token context window.
MAX_REFERENCE_CHARS = 32_000

#: Sections left out, by the start of their title: they describe what tools do to a file, not how to
#: write one (the input bounds of "Untrusted input" reach a model as E0xx diagnostics when it breaks one).
OMITTED_SECTIONS: tuple[str, ...] = ("Normalisation", "Canonical form", "Untrusted input")

#: Sections a writer cannot do without; building the reference fails loudly if the language reference
#: loses one of them (a renamed heading must be renamed here too, never silently dropped from prompts).
REQUIRED_SECTIONS: tuple[str, ...] = (
    "File structure", "Lexical elements", "Legs and strategies", "Fields", "Adjustment module",
    "Exit module", "Conditions and guard rules", "Triggers", "Variables", "Actions",
    "Hedging, assignment and risk controls", "The hedge rule", "Assignment", "Risk controls",
    "The experiment block", "Scenarios", "Target metrics", "Template library", "Diagnostics",
)

#: The complete file shown as a worked example (a strategy of the library, checked clean by the tests).
EXAMPLE_STRATEGY = "jujube_sr_strangle.opl"

_HEADING = re.compile(r"^(#{2,4})\s+(?:\d+(?:\.\d+)*\.?\s+)?(.+?)\s*$")
_MARKER = re.compile(r"^<!--.*-->\s*$")


@dataclass(frozen=True)
class Section:
    """One heading of the language reference with the lines under it (up to the next heading)."""

    level: int
    title: str
    lines: tuple[str, ...]


def split_sections(markdown: str) -> list[Section]:
    """Split Markdown into sections at ``##``–``####`` headings, ignoring ``#`` lines inside code fences.

    The text before the first such heading (the document title and preface) is returned as a section of
    level 1 titled by the first line.
    """
    sections: list[Section] = []
    level, title, lines = 1, "", []
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            sections.append(Section(level, title, tuple(lines)))
            level, title, lines = len(match.group(1)), match.group(2).replace("**[ext]**", "").strip(), [line]
        else:
            if not sections and not title:
                title = line.lstrip("# ").strip()
            lines.append(line)
    sections.append(Section(level, title, tuple(lines)))
    return sections


def compact_reference(markdown: str) -> str:
    """The writer's part of a language reference (see the module docstring).

    An omitted section takes its subsections with it. Raises ValueError when a required section is
    missing, so a restructured reference is noticed rather than shipped to models incomplete.
    """
    sections = split_sections(markdown)
    kept: list[str] = []
    skip_below: int | None = None
    for section in sections[1:]:
        if skip_below is not None and section.level > skip_below:
            continue
        skip_below = None
        if section.title.startswith(OMITTED_SECTIONS):
            skip_below = section.level
            continue
        body = [line for line in section.lines if not _MARKER.match(line)]
        kept.append("\n".join(body).strip("\n"))
    titles = {s.title for s in sections}
    missing = [name for name in REQUIRED_SECTIONS if not any(t.startswith(name) for t in titles)]
    if missing:
        raise ValueError(f"the language reference has no section {', '.join(repr(m) for m in missing)}")
    return "\n\n".join(kept)


def example_file() -> str:
    """The text of the worked example (`EXAMPLE_STRATEGY` from the strategy library)."""
    return resources.files("opl.strategies").joinpath(EXAMPLE_STRATEGY).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def language_reference() -> str:
    """The compact language reference plus one complete example, as sent to a model.

    Raises ValueError if it would exceed `MAX_REFERENCE_CHARS` (the language reference grew: tighten
    `OMITTED_SECTIONS` or raise the bound deliberately).
    """
    markdown = resources.files("opl.grammar").joinpath("README.md").read_text(encoding="utf-8")
    text = (
        "# OPL-Lang reference (compact)\n\n"
        "Sections marked [ext] are extensions of this implementation; files using them still start "
        "with `opl-lang 1.0`.\n\n"
        + compact_reference(markdown)
        + "\n\n## A complete file\n\n```opl\n" + example_file().strip("\n") + "\n```\n"
    )
    if len(text) > MAX_REFERENCE_CHARS:
        raise ValueError(f"the compact language reference has {len(text):,} characters, "
                         f"more than the bound of {MAX_REFERENCE_CHARS:,}")
    return text
