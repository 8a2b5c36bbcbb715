"""Generated sections of the language reference (grammar/README.md).

The vocabularies, the template library, the code table and the input limits live in
code; their tables in the README are generated from it between markers
``<!-- generated:NAME -->`` and ``<!-- /generated -->``. ``python -m opl.lang.reference
--write`` refreshes them; a test fails when they are stale.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

from opl.lang import limits
from opl.lang import vocabulary as vocab
from opl.lang.codes import CODES


def _signature(name: str, sig: vocab.Signature) -> str:
    return f"`{name}({', '.join(p for p, _ in sig.params)})`"


def _triggers() -> str:
    rows = ["| trigger | meaning |", "|---|---|"]
    rows += [f"| {_signature(n, s)} | {s.doc} |" for n, s in vocab.TRIGGERS.items()]
    return "\n".join(rows)


def _variables() -> str:
    rows = ["| variable | meaning |", "|---|---|"]
    rows += [f"| `{n}` | {doc} |" for n, doc in vocab.VARIABLES.items()]
    return "\n".join(rows)


def _actions() -> str:
    rows = ["| action | effect |", "|---|---|"]
    rows += [f"| {_signature(n, s)} | {s.doc} |" for n, s in vocab.ACTIONS.items()]
    return "\n".join(rows)


def _scenarios() -> str:
    rows = ["| scenario | effect |", "|---|---|"]
    rows += [f"| `{n}(value)` | {doc} |" for n, doc in vocab.SCENARIOS.items()]
    return "\n".join(rows)


def _stops() -> str:
    rows = ["| stop condition | meaning |", "|---|---|"]
    rows += [f"| {_signature(n, s)} | {s.doc} |" for n, s in vocab.STOP_CONDITIONS.items()]
    return "\n".join(rows)


def _metrics() -> str:
    return ", ".join(f"`{m}`" for m in vocab.TARGET_METRICS)


def _templates() -> str:
    from opl.lang.templates import template_reference

    return template_reference().strip()


def _codes() -> str:
    rows = ["| code | severity | meaning |", "|---|---|---|"]
    rows += [f"| `{c.code}` | {c.severity} | {c.title} |" for c in CODES.values()]
    return "\n".join(rows)


def _limits() -> str:
    rows = [
        ("file size", f"{limits.MAX_BYTES:,} bytes", "E008"),
        ("lines", f"{limits.MAX_LINES:,}", "E008"),
        ("line length", f"{limits.MAX_LINE_LENGTH:,} characters", "E008"),
        ("nesting depth of an expression", f"{limits.MAX_DEPTH}", "E009"),
        ("terms in one operator chain (`A + B + …`; a chain is one level of nesting)", f"{limits.MAX_CHAIN}",
         "E009"),
        ("legs after expansion", f"{limits.MAX_LEGS}", "E010"),
        ("identifier length", f"{limits.MAX_IDENTIFIER} characters", "E011"),
        ("absolute value of a number", f"{limits.MAX_NUMBER:g}", "E012"),
        ("lots per leg", f"{limits.MAX_QTY:,}", "E012"),
        ("a position size (`sizes`, `--set size`)", f"{limits.MAX_SIZE:,.0f}", "E207"),
        ("dates", f"years {limits.MIN_YEAR}–{limits.MAX_YEAR}", "E012"),
        ("header position", f"first {limits.HEADER_WINDOW} bytes", "E005"),
        ("estimated cost of the experiment: paths × months × 21 days × `steps_per_day` × (1 + scenarios) × sizes",
         f"{limits.MAX_PATH_STEPS:,} path-steps", "E207"),
        ("a file the `.opl` names (`calibration file(\"…\")`): a regular file of at most",
         f"{limits.MAX_NAMED_FILE_BYTES:,} bytes", "E015"),
    ]
    out = ["| bound | limit | code |", "|---|---|---|"]
    out += [f"| {a} | {b} | `{c}` |" for a, b, c in rows]
    return "\n".join(out)


SECTIONS = {
    "triggers": _triggers, "variables": _variables, "actions": _actions, "scenarios": _scenarios,
    "stops": _stops, "metrics": _metrics, "templates": _templates, "codes": _codes, "limits": _limits,
}

_BLOCK = re.compile(r"(<!-- generated:(\w+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def refresh(text: str) -> str:
    """The README text with every generated section replaced by its current content."""
    def replace(match: re.Match) -> str:
        return match.group(1) + SECTIONS[match.group(2)]() + "\n" + match.group(4)

    return _BLOCK.sub(replace, text)


def reference_text() -> str:
    """The language reference as shipped (used in LLM prompts)."""
    return resources.files("opl.grammar").joinpath("README.md").read_text(encoding="utf-8")


def main(argv: list[str]) -> int:
    path = Path(__file__).resolve().parents[2] / "grammar" / "README.md"
    text = path.read_text(encoding="utf-8")
    fresh = refresh(text)
    if "--write" in argv:
        path.write_text(fresh, encoding="utf-8")
        return 0
    if fresh != text:
        print(f"{path} is stale: run `python -m opl.lang.reference --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
