"""Completion: what may be written at the cursor, from the same vocabularies the checker reads.

The context is read from the text before the cursor, not from the syntax tree, so it
works on a half-typed line: the statement's leading name (a statement spans lines while
a ``(`` or ``[`` is open), whether the cursor is inside ``experiment { … }``, and the
innermost open call. Each field with a closed set of values has a handler in
`VALUES`; a leg expression gets primitives, templates with their parameters, ``long``
and ``short`` and the names bound in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal

from opl.lang import vocabulary as vocab

ItemKind = Literal["field", "setting", "primitive", "template", "trigger", "action", "value", "keyword",
                   "snippet", "variable", "reference", "function"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Item:
    """One completion: ``insert`` is plain text, or an LSP snippet (``$1``, ``${2:K}``) when ``snippet``."""

    label: str
    kind: ItemKind
    detail: str = ""
    insert: str | None = None
    snippet: bool = False


@dataclass(frozen=True)
class Context:
    """Where the cursor is: the statement's text up to the cursor and what encloses it."""

    statement: str  # the current statement's text before the cursor (lines joined)
    head: str | None  # the statement's leading name, once a space or `=` follows it
    in_block: bool  # inside `experiment { … }`
    call: str | None  # the innermost open call: `Option`, `machine_decide`, …
    argument: int  # the argument index inside that call


def context(text: str, offset: int) -> Context:
    """Scan ``text[:offset]`` once, tracking brackets, comments and strings."""
    calls: list[tuple[str | None, int]] = []  # open ( and [ with the call name and the argument index
    braces = 0
    start = 0
    i = 0
    before = text[:offset]
    while i < len(before):
        ch = before[i]
        if ch == "#":
            newline = before.find("\n", i)
            i = len(before) if newline < 0 else newline
            continue
        if ch == '"':
            close = before.find('"', i + 1)
            i = len(before) if close < 0 else close + 1
            continue
        if ch in "([":
            preceding = re.search(r"([A-Za-z_][A-Za-z0-9_]*)$", before[start:i])
            calls.append((preceding.group(1) if ch == "(" and preceding else None, 0))
        elif ch in ")]" and calls:
            calls.pop()
        elif ch == "," and calls:
            calls[-1] = (calls[-1][0], calls[-1][1] + 1)
        elif ch == "{":
            braces += 1
            start = i + 1
        elif ch == "}":
            braces = max(0, braces - 1)
            start = i + 1
        elif ch == "\n" and not calls:
            start = i + 1
        i += 1
    statement = before[start:].lstrip()
    head_match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(\s*\+?=\s*|\s+)", statement)
    call, argument = calls[-1] if calls else (None, 0)
    return Context(statement, head_match.group(1) if head_match else None, braces > 0, call, argument)


# --------------------------------------------------------------------------- item tables


def _signature_snippet(name: str, params: tuple[str, ...]) -> str:
    return f"{name}(" + ", ".join(f"${{{i}:{p}}}" for i, p in enumerate(params, 1)) + ")"


def _calls(kind: ItemKind, table: dict[str, vocab.Signature]) -> list[Item]:
    return [Item(name, kind, sig.doc, _signature_snippet(name, tuple(p for p, _ in sig.params[:max(sig.required, 1)]
                                                                      if sig.params)), True)
            for name, sig in table.items()]


def _values(names: tuple[str, ...] | list[str], detail: str) -> Callable[[], list[Item]]:
    return lambda: [Item(name, "value", detail) for name in names]


def _exit_modes() -> list[Item]:
    items = [Item(mode, "value", "exit mode") for mode in vocab.EXIT_MODES if mode != "machine_decide"]
    items.append(Item("machine_decide", "value", "exit mode: close when a score function's score is reached",
                      "machine_decide(${1|" + ",".join(vocab.SCORE_FUNCTIONS) + "|})", True))
    return items


def _conditions() -> list[Item]:
    return _calls("trigger", vocab.TRIGGERS) + [Item(n, "variable", doc) for n, doc in vocab.VARIABLES.items()]


def _scenarios() -> list[Item]:
    return [Item(name, "function", doc, f"{name}(${{1:value}})", True) for name, doc in vocab.SCENARIOS.items()]


def _assignment() -> list[Item]:
    return [Item("hedge_and_close", "value", "close an assigned position at the next step (default)",
                 "hedge_and_close()", True),
            Item("take_delivery", "value", "hold the assigned futures to delivery and the goods after",
                 "take_delivery(storage=${1:2/day}, funding=${2:3%})", True)]


def _underlyings() -> list[Item]:
    return [Item("Stock", "primitive", "a stock"), Item("ETF", "primitive", "an ETF"),
            Item("Future", "primitive", "a futures contract expiring on a date", "Future(${1:2026-05-15})", True),
            Item("LeveragedETF", "primitive", "a leveraged ETF with beta β", "LeveragedETF{${1:2}}", True)]


def _models() -> list[Item]:
    return [Item(model, "value", "price model") for model in vocab.PRICE_MODELS]


def _calibrations() -> list[Item]:
    items = [Item(c, "value", "calibration method") for c in vocab.CALIBRATIONS if c != "file"]
    items.append(Item("file", "value", "the parameters of an `opl calibrate --json` file", 'file("${1:calib.json}")',
                      True))
    return items


def _metrics() -> list[Item]:
    return [Item(m, "variable", vocab.VARIABLES[m]) for m in vocab.TARGET_METRICS]


# A field (or experiment setting) → the values that may follow it.
VALUES: dict[str, Callable[[], list[Item]]] = {
    "exit_mode": _exit_modes,
    "direction_intent": _values(vocab.DIRECTIONS, "direction intent"),
    "intent": _values(vocab.DIRECTIONS, "direction intent"),
    "vega_style": _values(vocab.VEGA_STYLES, "vega style"),
    "vol_intent": _values(("↑IV", "↓IV", "=IV", "up", "down", "flat"), "volatility intent"),
    "holding_horizon": _values(vocab.HORIZON_LABELS, "holding horizon"),
    "exchange": _values(vocab.EXCHANGES, "exchange"),
    "exercise": _values(("American", "European"), "exercise style"),
    "ban_leveraged_longdated": _values(("TRUE", "FALSE"), "boolean"),
    "underlying": _underlyings,
    "on_assignment": _assignment,
    "exit_triggers": _conditions,
    "adjust_when": _conditions,
    "abort_if": _conditions,
    "avoid_leg_if": _conditions,
    "warn_if": _conditions,
    "adjust_playbook": lambda: _calls("action", vocab.ACTIONS),
    "hedge": _values(("delta", "none", "with", "every", "band", "keep", "along", "direction"), "hedge rule"),
}
SETTING_VALUES: dict[str, Callable[[], list[Item]]] = {
    "model": _models,
    "calibration": _calibrations,
    "stress": _scenarios,
    "sensitivity": _scenarios,
    "target": _metrics,
    "metrics": _metrics,
    "stop": lambda: _calls("function", vocab.STOP_CONDITIONS),
    "signal": _values(("direction", "hit_rate"), "signal"),
}
# Call name → the values of its arguments.
CALL_ARGUMENTS: dict[str, Callable[[int], list[Item]]] = {
    "Option": lambda index: _values(("Call", "Put"), "option type")() if index == 0 else (
        _strikes() if index == 1 else []),
    "machine_decide": lambda index: [Item(n, "value", doc) for n, doc in vocab.SCORE_FUNCTIONS.items()],
}


def _strikes() -> list[Item]:
    return [Item("ATM", "value", "the price"), Item("support", "value", "the support level"),
            Item("resistance", "value", "the resistance level"),
            Item("delta", "function", "the strike of a given absolute delta", "delta(${1:0.25})", True)]


LEG_SNIPPET = "${1|long,short|} Option(${2|Put,Call|}, ${3:ATM}, ${4:30d})"
EXPERIMENT_SNIPPET = ("experiment {\n  model ${1|" + ",".join(vocab.PRICE_MODELS) + "|}\n  paths ${2:20000}\n"
                      "  seed ${3:7}\n  target median_monthly_return >= ${4:1%}\n}")


def _statement_starts(analysis_names: list[str]) -> list[Item]:
    items = [Item(name, "field", "field", f"{name} ") for name in vocab.ALL_FIELDS]
    items.append(Item("experiment", "snippet", "the experiment block", EXPERIMENT_SNIPPET, True))
    items.append(Item("S = leg", "snippet", "a strategy of one leg", "S = " + LEG_SNIPPET, True))
    items.append(Item("opl-lang 1.0", "keyword", "the version header"))
    return items


def _leg_expression(names: list[str]) -> list[Item]:
    from opl.lang.templates import TEMPLATES

    items = [Item("Option", "primitive", "an option: type, strike, tenor", "Option(${1|Put,Call|}, ${2:ATM}, "
                  "${3:30d})", True)]
    items += [item for item in _underlyings()] + [Item("Cash", "primitive", "cash")]
    for template in TEMPLATES.values():
        for signature in template.signatures:
            params = tuple(p.name for p in signature.params if p.default is None)
            items.append(Item(template.name, "template", f"{signature.text(template.name)}: {template.summary}",
                              _signature_snippet(template.name, params), True))
    items += [Item("long", "keyword", "buy"), Item("short", "keyword", "sell")]
    items.append(Item("leg", "snippet", "one option leg", LEG_SNIPPET, True))
    items += [Item(name, "reference", "a leg expression bound in this file") for name in names]
    return items


def completions(text: str, offset: int, bound_names: list[str]) -> list[Item]:
    """The items that may be written at ``offset`` of ``text``.

    Parameters
    ----------
    text
        The document's text.
    offset
        The cursor, a code-point offset.
    bound_names
        Names bound in the file (``S``, ``wings``), offered inside leg expressions.
    """
    where = context(text, offset)
    if where.call in CALL_ARGUMENTS:
        return CALL_ARGUMENTS[where.call](where.argument)
    if where.in_block:
        words = _NAME.findall(where.statement)
        settings = [w for w in words if w in vocab.EXPERIMENT_SETTINGS]
        last = settings[-1] if settings else None
        typing_value = last is not None and not (where.statement.rstrip() == where.statement
                                                 and words and words[-1] == last)
        if last in SETTING_VALUES and typing_value:
            return SETTING_VALUES[last]()
        return [Item(s, "setting", "experiment setting", f"{s} ") for s in vocab.EXPERIMENT_SETTINGS]
    if where.head is None:
        return _statement_starts(bound_names)
    if where.head in VALUES:
        return VALUES[where.head]()
    if re.match(r"[A-Za-z_][A-Za-z0-9_]*\s*=", where.statement) and where.head not in vocab.ALL_FIELDS:
        return _leg_expression([n for n in bound_names if n != where.head])
    return []
