"""Finding the `.opl` file, the change, the rationale and the risk note in a model's answer.

Models asked for a JSON object ``{"opl", "change", "rationale", "risk"}`` answer in several shapes, tried
in this order:

1. ``json`` — a JSON object with a string ``opl`` field: the whole answer, or anywhere inside it (in a
   ```json fence, after a sentence of preamble);
2. ``fenced`` — a fenced block holding an ``opl-lang`` header line (the last one tagged ``opl`` if any, else
   the last one); the prose around it is the rationale (``Change:``, ``Rationale:`` and ``Risk:`` labels
   are read);
3. ``header`` — a bare file starting at a line ``opl-lang N.M`` amid prose, up to the first line at bracket
   depth 0 that cannot start an OPL-Lang statement.

Nothing here judges the file: that is `opl check`'s job. The answer text is untrusted and only scanned as
text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Form = Literal["json", "fenced", "header", "none"]

#: Bounds on the free-text fields kept from an answer (they go to the archive and into later prompts).
MAX_CHANGE_CHARS = 300
MAX_RATIONALE_CHARS = 4000

_HEADER = re.compile(r"^[ \t]*opl-lang[ \t]+\d", re.M)
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.M | re.S)
# A line at depth 0 that may start a statement: a comment, a closing bracket, a field or binding name
# (fields are lower-case words; bindings any name followed by `=` or `+=`).
_STATEMENT = re.compile(r"^\s*(?:#|[}\])]|[a-z_][a-z0-9_]*(?:\s|$|\s*\+?=|\{)|[A-Za-z_]\w*\s*\+?=)")
_LABEL = re.compile(r"^\W*(change|rationale|risk)\W*:\s*(.*)$", re.I)


@dataclass(frozen=True)
class Answer:
    """What was found in one answer.

    ``opl`` is the file's text (None when none was found, ``problem`` then says why); ``form`` how it was
    found; ``risk`` the answer's note on what could go wrong (empty when it gave none); ``note`` anything
    the extraction left aside (several candidate blocks, prose after a file).
    """

    opl: str | None
    change: str
    rationale: str
    form: Form
    problem: str | None = None
    note: str | None = None
    risk: str = ""


def _clip(text: str, bound: int) -> str:
    text = text.strip()
    if len(text) <= bound:
        return text
    return text[: bound - 1].rstrip() + "…"


def _from_prose(prose: str) -> tuple[str, str, str]:
    """(change, rationale, risk) from the prose around a file: ``Change:`` / ``Rationale:`` / ``Risk:``
    labels where present, else the first line as the change and the whole prose as the rationale."""
    labelled: dict[str, str] = {}
    rest: list[str] = []
    for line in prose.splitlines():
        label = _LABEL.match(line)
        if label and label.group(1).lower() not in labelled:
            labelled[label.group(1).lower()] = label.group(2).strip(" *")
        else:
            rest.append(line)
    leftover = "\n".join(rest).strip()
    rationale = labelled.get("rationale") or leftover
    change = labelled.get("change") or next(
        (line.strip(" #*-") for line in leftover.splitlines() if line.strip(" #*-")), "")
    return (_clip(change, MAX_CHANGE_CHARS), _clip(rationale, MAX_RATIONALE_CHARS),
            _clip(labelled.get("risk", ""), MAX_CHANGE_CHARS))


def _json_objects(text: str):
    """Every JSON object that parses starting at some ``{`` of the text, in order, without overlaps."""
    # strict=False: models often put raw newlines inside the `opl` string, which strict JSON forbids.
    decoder = json.JSONDecoder(strict=False)
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            yield value
        position = text.find("{", end)


def from_json(text: str) -> Answer | None:
    """The answer as a JSON object with an ``opl`` field, or None when the text holds none."""
    for value in _json_objects(text):
        if "opl" not in value:
            continue
        opl = value["opl"]
        if not isinstance(opl, str) or not opl.strip():
            return Answer(None, "", "", "json", problem="the JSON object's `opl` field is not a non-empty string")
        def text(name: str, bound: int) -> str:
            field = value.get(name)
            return _clip(field if isinstance(field, str) else "", bound)

        return Answer(opl=opl.strip("\n") + "\n", change=text("change", MAX_CHANGE_CHARS),
                      rationale=text("rationale", MAX_RATIONALE_CHARS), form="json",
                      risk=text("risk", MAX_CHANGE_CHARS))
    return None


def from_fence(text: str) -> Answer | None:
    """The fenced block holding an ``opl-lang`` header line (last tagged ``opl``, else last), or None."""
    # Any tag: models mislabel OPL-Lang as text, ini or yaml; the header line is what marks a file.
    blocks = [m for m in _FENCE.finditer(text) if _HEADER.search(m.group(2))]
    if not blocks:
        return None
    tagged = [m for m in blocks if m.group(1).lower() in ("opl", "opl-lang")]
    chosen = (tagged or blocks)[-1]
    prose = text[: blocks[0].start()] + "\n" + text[chosen.end():]
    change, rationale, risk = _from_prose(prose)
    note = None
    if len(blocks) > 1:
        # A model that shows the old file before the new one puts the answer last.
        note = f"{len(blocks)} fenced blocks with an opl-lang header; the last one was taken"
    return Answer(chosen.group(2).strip("\n") + "\n", change, rationale, "fenced", note=note, risk=risk)


def _depth_change(line: str) -> int:
    code = line.split("#", 1)[0]
    code = re.sub(r'"(?:[^"\\]|\\.)*"', "", code)
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def from_header(text: str) -> Answer | None:
    """A bare file starting at the first ``opl-lang`` header line, or None."""
    header = _HEADER.search(text)
    if header is None:
        return None
    lines = text[header.start():].splitlines()
    taken = [lines[0]]
    depth = max(0, _depth_change(lines[0]))
    for line in lines[1:]:
        if depth == 0 and line.strip() and not _STATEMENT.match(line):
            break
        taken.append(line)
        depth = max(0, depth + _depth_change(line))
    opl = "\n".join(taken).strip("\n") + "\n"
    after = "\n".join(lines[len(taken):])
    change, rationale, risk = _from_prose(text[: header.start()] + "\n" + after)
    note = "prose after the file was not taken as part of it" if after.strip() else None
    return Answer(opl, change, rationale, "header", note=note, risk=risk)


def extract_answer(text: str) -> Answer:
    """Find the file, change and rationale in ``text`` (the forms of the module docstring, in order)."""
    if not text or not text.strip():
        return Answer(None, "", "", "none", problem="the answer was empty")
    found = from_json(text)
    if found is not None and found.opl is not None:
        return found
    for finder in (from_fence, from_header):
        answer = finder(text)
        if answer is not None:
            return answer
    if found is not None:
        return found
    return Answer(None, "", "", "none",
                  problem="the answer holds no OPL-Lang file (no JSON object with an `opl` field, no fenced "
                          "block and no line starting with the `opl-lang 1.0` header)")
