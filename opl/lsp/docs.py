"""Documentation of a word of OPL-Lang, read from the language reference.

The reference is grammar/README.md as shipped (`opl.lang.reference.reference_text`) and the
vocabularies its generated tables come from (`opl.lang.vocabulary`, `opl.lang.templates`,
`opl.lang.codes`). Nothing here restates the reference: a field's hover is its README row (or
the paragraphs that name it), a trigger's its signature and its vocabulary entry, a
diagnostic code's `opl explain` text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from opl.lang import vocabulary as vocab

_CODE = re.compile(r"[EWI]\d{3}")
_HEADING = re.compile(r"^(#{2,4}) (.*)$")
_FIRST_CELL_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?: [^`(]*)?`")
MAX_MENTIONS = 3


@dataclass(frozen=True)
class Section:
    """One section of the reference: its heading and its body's blocks (paragraphs, bullets, table rows)."""

    title: str
    blocks: tuple[str, ...]
    tables: tuple[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]], ...]  # (header cells, rows)


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def _blocks(lines: list[str]) -> tuple[list[str], list]:
    """Split a section body into prose blocks (paragraphs, list items, code blocks) and tables."""
    blocks: list[str] = []
    tables: list = []
    current: list[str] = []
    table: list[str] = []
    fenced = False

    def flush() -> None:
        if current:
            blocks.append("\n".join(current).strip())
            current.clear()
        if table:
            header, rows = _cells(table[0]), tuple(_cells(r) for r in table[2:])
            tables.append((header, rows))
            blocks.extend(" | ".join(r) for r in rows)
            table.clear()

    for line in lines:
        if line.startswith("```"):
            if fenced:
                current.append(line)
                flush()
                fenced = False
                continue
            flush()
            fenced = True
        if fenced:
            current.append(line)
        elif line.startswith("|"):
            if current:
                blocks.append("\n".join(current).strip())
                current.clear()
            table.append(line)
        elif not line.strip() or line.startswith(("* ", "- ")):
            flush()
            if line.strip():
                current.append(line)
        else:
            if table:
                flush()
            current.append(line)
    flush()
    return [b for b in blocks if b], tables


@lru_cache(maxsize=1)
def sections() -> tuple[Section, ...]:
    """The reference's sections, parsed once per process."""
    from opl.lang.reference import reference_text

    out: list[Section] = []
    title, body = "", []
    for line in reference_text().splitlines() + ["## end"]:
        heading = _HEADING.match(line)
        if heading:
            if title:
                blocks, tables = _blocks(body)
                out.append(Section(title, tuple(blocks), tuple(tables)))
            title, body = heading.group(2), []
        else:
            body.append(line)
    return tuple(out)


def _row_entry(name: str) -> str | None:
    """The table rows whose first cell names ``name`` (`price`, `stop_loss 25%`), as a definition list."""
    found = []
    for section in sections():
        for header, rows in section.tables:
            for row in rows:
                if name in _FIRST_CELL_NAME.findall(row[0]):
                    pairs = [f"*{h}*: {c}" for h, c in zip(header[1:], row[1:]) if c and h]
                    found.append(f"{row[0]} — " + "; ".join(pairs) + f"\n\n*grammar/README.md § {section.title}*")
    return "\n\n---\n\n".join(found[:MAX_MENTIONS]) or None


def _mentions(name: str) -> str | None:
    """The reference's prose on ``name``: the first section that quotes it (`name`, or 'name' in the
    EBNF), after the first whose example block opens with it; with the example block before the prose."""
    quoted = re.compile(r"`" + re.escape(name) + r"[` ]|'" + re.escape(name) + "'")
    opens = re.compile(r"^```[a-z]*\n\s*" + re.escape(name) + r"\b")
    for matches in (opens.search, quoted.search):
        for section in sections():
            hits = [i for i, block in enumerate(section.blocks) if matches(block)]
            if not hits:
                continue
            first = hits[0]
            if first > 0 and section.blocks[first - 1].startswith("```") and not section.blocks[first].startswith("```"):
                hits.insert(0, first - 1)  # the example the prose explains
            elif section.blocks[first].startswith("```") and first + 1 < len(section.blocks):
                hits.insert(1, first + 1)  # the prose under the example
            chosen = [section.blocks[i] for i in dict.fromkeys(hits)][:MAX_MENTIONS]
            return "\n\n".join(chosen) + f"\n\n*grammar/README.md § {section.title}*"
    return None


def reference_entry(name: str) -> str | None:
    """What the language reference says about a field, setting, primitive or value."""
    return _row_entry(name) or _mentions(name)


def _signature(name: str, signature: vocab.Signature) -> str:
    params = ", ".join(p for p, _ in signature.params)
    return f"```opl\n{name}({params})\n```\n{signature.doc}"


def _code(word: str) -> str | None:
    from opl.lang.codes import CODES, explain

    if not _CODE.fullmatch(word) or word not in CODES:
        return None
    entry = CODES[word]
    return f"**{word}** ({entry.severity}): {entry.title}\n\n{explain(word)}"


def _table(kind: str, table: dict) -> Callable[[str], str | None]:
    def lookup(word: str) -> str | None:
        signature = table.get(word)
        return None if signature is None else f"**{kind}** `{word}`\n\n" + _signature(word, signature)
    return lookup


def _template(word: str) -> str | None:
    from opl.lang.templates import TEMPLATES

    template = TEMPLATES.get(word)
    if template is None:
        return None
    forms = "\n".join(f"{s.text(word)}    # {s.expansion}" for s in template.signatures)
    return f"**template** {template.summary}\n```opl\n{forms}\n```\n*grammar/README.md § Template library*"


def _plain(kind: str, table: dict[str, str]) -> Callable[[str], str | None]:
    def lookup(word: str) -> str | None:
        doc = table.get(word)
        return None if doc is None else f"**{kind}** `{word}`: {doc}"
    return lookup


def _reference(kind: str, names: tuple[str, ...]) -> Callable[[str], str | None]:
    def lookup(word: str) -> str | None:
        if word not in names:
            return None
        entry = reference_entry(word)
        return None if entry is None else f"**{kind}** `{word}`\n\n{entry}"
    return lookup


# The lookups in order: the first that knows a word documents it. Fields before actions,
# so `hedge` at a line's start is the hedge rule, not the playbook action.
LOOKUPS: tuple[Callable[[str], str | None], ...] = (
    _code,
    _reference("field", vocab.ALL_FIELDS + vocab.BLOCKS),
    _reference("experiment setting", vocab.EXPERIMENT_SETTINGS),
    _table("trigger", vocab.TRIGGERS),
    _table("action", vocab.ACTIONS),
    _table("stop condition", vocab.STOP_CONDITIONS),
    _template,
    _reference("primitive", vocab.PRIMITIVES),
    _plain("scenario", vocab.SCENARIOS),
    _plain("variable", vocab.VARIABLES),
    _plain("score function", vocab.SCORE_FUNCTIONS),
    _reference("value", vocab.DIRECTIONS + vocab.VEGA_STYLES + vocab.EXIT_MODES + vocab.EXCHANGES
               + vocab.PRICE_MODELS + vocab.CALIBRATIONS + vocab.HORIZON_LABELS
               + ("American", "European", "ATM", "long", "short", "Call", "Put")),
)


SETTING_LOOKUP = LOOKUPS[2]


def documentation(word: str, *, in_experiment: bool = False) -> str | None:
    """Markdown documentation of one word, or None when the reference does not know it.

    ``in_experiment``: the word is inside ``experiment { … }``, where ``iv`` is the simulator's
    implied-volatility rule rather than the market input.
    """
    for lookup in ((SETTING_LOOKUP,) if in_experiment else ()) + LOOKUPS:
        text = lookup(word)
        if text:
            return text
    return None
